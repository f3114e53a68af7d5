import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../errors.js';
import { LOCK_KEY } from '../pipeline/layout.js';
import type { Sink } from '../storage/types.js';

/** Who holds a destination: enough for a person to find the other run, and for a run to judge it gone. */
export interface LockOwner {
  tool: 'img-pipeline';
  pid: number;
  hostname: string;
  startedAt: string;
  command: string;
  token: string;
}

/** A taken lock; `release` deletes it if it is still this run's, and never throws. */
export interface RunLock {
  /**
   * Resolves once the lock is known to be this run's; rejects with StorageError OUT_LOCKED when a racing
   * run's write won. Nothing but the lock may be written before it resolves; reading may go on meanwhile.
   */
  confirmed: Promise<void>;
  /**
   * Deletes the lock if it is still this run's, once `writes` have settled (none: now). The lock is read
   * at once, so on S3 that round trip passes while the last uploads do, and only the DELETE follows them.
   * Called again, it returns the first call's promise.
   */
  release(writes?: Promise<unknown>): Promise<void>;
}

export interface LockOptions {
  /** The command line, shown to a second run that is refused. */
  command: string;
  /** Test hooks: this machine's name, and whether a pid on it is alive. */
  hostname?: string;
  isAlive?: (pid: number) => boolean;
  /** How long a remote store is given to show a concurrent writer's lock before ours is read back (ms). */
  settleMs?: number;
}

function isAliveHere(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string | undefined): LockOwner | undefined {
  if (text === undefined) return undefined;
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.hostname === 'string' && typeof owner.token === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** The lock as read: its text, and its version where the sink names versions (S3: the ETag). */
interface LockEntry {
  text: string;
  etag?: string;
}

function refusal(sink: Sink, owner: LockOwner | undefined, here: string): StorageError {
  const lock = sink.uriOf(LOCK_KEY);
  if (!owner) {
    return new StorageError('OUT_LOCKED', `another img-pipeline run is starting on ${sink.uri} (its lock ${lock} is being written); wait for it to finish, or choose another --out. If no run is, delete ${lock}`);
  }
  const who = `pid ${owner.pid} on ${owner.hostname === here ? 'this machine' : `host ${owner.hostname}`}, started ${owner.startedAt}: ${owner.command}`;
  const gone = owner.hostname === here ? '' : `. If that run is gone, delete ${lock}`;
  return new StorageError('OUT_LOCKED', `another img-pipeline run is writing to ${sink.uri} (${who}); wait for it to finish, or choose another --out${gone}`);
}

/**
 * Takes the destination's lock (LOCK_KEY) before anything is written, so two runs never mix their outputs
 * and state file. A lock left by a dead process on this machine (kill -9, a crash) is taken over; one held
 * by a live process, or by any process on another machine (its liveness cannot be checked from here), is
 * refused with StorageError OUT_LOCKED naming it. Sinks without `createExclusive` are not locked.
 *
 * Creation is atomic where the store is (local `O_EXCL`, S3 `If-None-Match: *`). Where the sink knows it is
 * (Sink.createIsAtomic: AWS S3 itself), the lock is created first and read only when that fails: one
 * round trip, and nothing to read back, since only a takeover could replace it and nobody takes over a
 * live run's lock. Elsewhere the lock is looked for first, because a store that ignores If-None-Match
 * (s3rver, older S3-compatible stores) would let the create overwrite a live run's lock.
 * Where the create is atomic and the lock read has a version (AWS: its ETag), a takeover replaces only
 * that version (`If-Match`), so it never overwrites a lock created or taken over since it was read, and
 * the release deletes only the version this run wrote: neither needs a read-back. Elsewhere a takeover
 * overwrites the stale lock, and a remote lock is then read back after `settleMs`: of two runs racing,
 * the one whose write was overwritten sees the other's token and is refused. On a store that ignores
 * If-None-Match, two runs that both find no lock within the same few milliseconds can still both start;
 * that is the gap left open. The read-back is `confirmed`, not awaited
 * here: on S3 the settling time and its round trip then pass while the run reads its state and starts
 * its first downloads, instead of before them.
 */
export async function acquireRunLock(sink: Sink, options: LockOptions): Promise<RunLock | undefined> {
  if (!sink.createExclusive || !sink.remove) return undefined;
  const here = options.hostname ?? hostname();
  const isAlive = options.isAlive ?? isAliveHere;
  const owner: LockOwner = { tool: 'img-pipeline', pid: process.pid, hostname: here, startedAt: new Date().toISOString(), command: options.command, token: randomUUID() };
  const body = Buffer.from(`${JSON.stringify(owner, null, 2)}\n`);
  const atomic = (await sink.createIsAtomic?.()) ?? false;
  const create = sink.createExclusive.bind(sink);
  // With its version only where a conditional write can use it: elsewhere the lock is read as before.
  const read = async (): Promise<LockEntry | undefined> => {
    if (atomic && sink.readTextEntry) return sink.readTextEntry(LOCK_KEY);
    const text = await sink.readText(LOCK_KEY);
    return text === undefined ? undefined : { text };
  };
  // The version of the lock that is this run's, where the store names them: the release deletes only it.
  let mine: string | undefined;
  // Creates the lock, or with `ifMatch` replaces that version of it: undefined once it is this run's,
  // otherwise the lock that holds the destination.
  const take = async (retries: number, ifMatch?: string): Promise<LockEntry | undefined> => {
    const made = await create(LOCK_KEY, body, ifMatch === undefined ? undefined : { ifMatch });
    if (made) {
      mine = made.etag;
      return undefined;
    }
    const found = await read();
    // Our own write landed and a resend of it was refused: S3 can fail a request it carried out (a 5xx,
    // a connection cut before the answer) and the SDK then retries the conditional PUT, which gets 412.
    if (found !== undefined && parseOwner(found.text)?.token === owner.token) {
      mine = found.etag;
      return undefined;
    }
    if (found !== undefined) return found;
    // Gone already: the holder's release landed during our create (S3's 409 ConditionalRequestConflict,
    // "you should retry"). An atomic create is safe to try again; elsewhere a racing run may be writing it.
    if (retries > 0) return take(retries - 1);
    throw refusal(sink, undefined, here);
  };
  let existing = atomic ? undefined : await read();
  let verify = sink.remote === true && !atomic;
  if (existing === undefined) {
    existing = await take(atomic ? 1 : 0);
    // Looked for first and still lost: another run's create came in between. Created first and refused:
    // the holder is judged below.
    if (existing !== undefined && !atomic) throw refusal(sink, parseOwner(existing.text), here);
  }
  if (existing !== undefined) {
    const holder = parseOwner(existing.text);
    const stale = holder !== undefined && holder.hostname === here && !isAlive(holder.pid);
    if (!stale) throw refusal(sink, holder, here);
    if (atomic && existing.etag !== undefined) {
      // Refused (412): the stale lock changed since it was read, so another run took it over, or it was
      // deleted and a run created it afresh; that run holds it. Gone (404): created as usual. In contention
      // (409) with the stale lock still the version read: tried once more, as AWS advises for a 409.
      let found = await take(1, existing.etag);
      if (found !== undefined && found.etag === existing.etag) found = await take(1, existing.etag);
      if (found !== undefined) throw refusal(sink, parseOwner(found.text), here);
    } else {
      await sink.write(LOCK_KEY, body, { contentType: 'application/json', metadata: {} });
      verify = true;
    }
  }
  // s3rver and other custom endpoints ignore If-Match on DELETE: the condition is sent to AWS only.
  const ifMatch = atomic ? mine : undefined;
  const confirmed = verify
    ? (async () => {
        await sleep(options.settleMs ?? 150);
        const now = parseOwner(await sink.readText(LOCK_KEY));
        if (now?.token !== owner.token) throw refusal(sink, now, here);
      })()
    : Promise.resolve();
  // Awaited by the run before its first write; this only keeps a refusal nobody waited for from being "unhandled".
  confirmed.catch(() => undefined);
  let releasing: Promise<void> | undefined;
  return {
    confirmed,
    release(writes) {
      releasing ??= (async () => {
        // Only our own: a run that took over a lock it judged stale must keep it. A lock that cannot be
        // removed (the store went away) is left to the next run, which sees that our pid is gone.
        // Read only once the lock is confirmed: a run refused by its read-back must not find its own
        // token in an earlier read, and then delete the lock of the run that won.
        const read = confirmed.then(() => undefined, () => undefined).then(() => sink.readText(LOCK_KEY)).catch(() => undefined);
        const [text] = await Promise.all([read, writes?.catch(() => undefined)]);
        // On AWS only the version this run wrote: a lock that replaced it while the last uploads ran stays.
        if (parseOwner(text)?.token === owner.token) await sink.remove!(LOCK_KEY, ifMatch === undefined ? undefined : { ifMatch }).catch(() => undefined);
      })();
      return releasing;
    },
  };
}
