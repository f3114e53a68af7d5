import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_KEY } from '../../../src/pipeline/layout.js';
import { acquireRunLock } from '../../../src/runner/run-lock.js';
import { LocalSink } from '../../../src/storage/local.js';
import type { IfMatch, Stored, TextEntry } from '../../../src/storage/types.js';
import { rejection } from '../../helpers/errors.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

/** The pid of a process that has exited: a lock it left is stale. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

async function sinkIn(): Promise<{ dir: string; sink: LocalSink }> {
  const dir = await makeTempDir();
  return { dir, sink: new LocalSink(dir) };
}

describe('acquireRunLock (one run per destination)', () => {
  it('refuses a second run while the first holds the lock, naming it; release frees the destination', async () => {
    const { dir, sink } = await sinkIn();
    const first = await acquireRunLock(sink, { command: 'img-pipeline "a" --out "o" --watermark A' });
    const lock = JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'));
    expect(lock).toMatchObject({ tool: 'img-pipeline', pid: process.pid, hostname: hostname(), command: 'img-pipeline "a" --out "o" --watermark A' });
    const error = await rejection(acquireRunLock(sink, { command: 'second' }), Error);
    expect(error).toMatchObject({ code: 'OUT_LOCKED' });
    expect(error.message).toBe(`another img-pipeline run is writing to ${dir} (pid ${process.pid} on this machine, started ${lock.startedAt}: img-pipeline "a" --out "o" --watermark A); wait for it to finish, or choose another --out`);
    await first!.release();
    const second = await acquireRunLock(sink, { command: 'second' });
    await second!.release();
    await expect(readFile(join(dir, LOCK_KEY))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over a lock left by a dead process on this machine', async () => {
    const { dir, sink } = await sinkIn();
    const pid = deadPid();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid, hostname: hostname(), startedAt: 'then', command: 'killed', token: 'old' }));
    const lock = await acquireRunLock(sink, { command: 'new', settleMs: 1 });
    expect(JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'))).toMatchObject({ pid: process.pid, command: 'new' });
    await lock!.release();
  });

  it('refuses a lock held on another machine (its process cannot be checked), saying which file to delete if it is gone', async () => {
    const { dir, sink } = await sinkIn();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'then', command: 'remote run', token: 't' }));
    const error = await rejection(acquireRunLock(sink, { command: 'new', isAlive: () => false }), Error);
    expect(error.message).toMatch(/\(pid 1 on host elsewhere, started then: remote run\); wait for it to finish, or choose another --out\. If that run is gone, delete .*\.img-pipeline\.lock$/);
  });

  it('of two runs racing to take over the same stale lock, only one goes on', async () => {
    const { dir, sink } = await sinkIn();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: deadPid(), hostname: hostname(), startedAt: 'then', command: 'killed', token: 'old' }));
    const confirmed = (command: string) => acquireRunLock(sink, { command, settleMs: 50 }).then((lock) => lock!.confirmed);
    const results = await Promise.allSettled([confirmed('one'), confirmed('two')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'OUT_LOCKED' } });
  });

  it('never deletes a lock that is no longer its own', async () => {
    const { dir, sink } = await sinkIn();
    const lock = await acquireRunLock(sink, { command: 'one' });
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: process.pid, hostname: hostname(), startedAt: 'now', command: 'took over', token: 'other' }));
    await lock!.release();
    expect(JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'))).toMatchObject({ token: 'other' });
  });
});

/**
 * A remote sink holding one lock in memory, recording each call in order. `atomic`: it says its create is
 * atomic (AWS S3); otherwise its create ignores If-None-Match and overwrites, as s3rver's does.
 * `versioned`: like AWS S3, it gives each write an ETag, and honours If-Match on a write and a delete
 * (412 then: false, and the lock left as it is).
 */
class RemoteLockSink {
  readonly uri = 's3://out/';
  readonly remote = true;
  readonly calls: string[] = [];
  text: string | undefined;
  etag: string | undefined;
  private writes = 0;
  constructor(private readonly atomic: boolean, private readonly versioned = false) {}
  async createIsAtomic(): Promise<boolean> {
    return this.atomic;
  }
  async *list() {}
  async readText(): Promise<string | undefined> {
    this.calls.push('read');
    return this.text;
  }
  async readTextEntry(): Promise<TextEntry | undefined> {
    this.calls.push('read');
    if (this.text === undefined) return undefined;
    return { text: this.text, mtimeMs: 0, ...(this.versioned ? { etag: this.etag } : {}) };
  }
  /** Stores a lock as another run would, with a new ETag. */
  put(text: string): void {
    this.text = text;
    this.etag = `"v${(this.writes += 1)}"`;
  }
  async write(_key: string, data: Buffer): Promise<void> {
    this.calls.push('write');
    this.put(data.toString());
  }
  async createExclusive(_key: string, data: Buffer, options?: IfMatch): Promise<Stored | false> {
    this.calls.push(options?.ifMatch ? `create If-Match ${options.ifMatch}` : 'create');
    if (options?.ifMatch ? options.ifMatch !== this.etag : this.atomic && this.text !== undefined) return false;
    this.put(data.toString());
    return this.versioned ? { etag: this.etag } : {};
  }
  async remove(_key: string, options?: IfMatch): Promise<void> {
    this.calls.push(options?.ifMatch ? `remove If-Match ${options.ifMatch}` : 'remove');
    if (options?.ifMatch !== undefined && options.ifMatch !== this.etag) return;
    this.text = undefined;
    this.etag = undefined;
  }
  uriOf(key: string): string {
    return `s3://out/${key}`;
  }
}

const held = (token: string, pid = 1, host = 'elsewhere') => JSON.stringify({ tool: 'img-pipeline', pid, hostname: host, startedAt: 'then', command: 'the other run', token });

describe('acquireRunLock on S3', () => {
  it('creates the lock first where the create is atomic (AWS), with nothing to read back; reads it only when the create is refused', async () => {
    const free = new RemoteLockSink(true);
    const started = Date.now();
    const lock = await acquireRunLock(free, { command: 'one', settleMs: 5_000 });
    await lock!.confirmed;
    // One round trip: no lookup before, no settling and read-back after.
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(free.calls).toEqual(['create']);

    const taken = new RemoteLockSink(true);
    taken.text = held('theirs');
    const error = await rejection(acquireRunLock(taken, { command: 'two' }), Error);
    expect(error).toMatchObject({ code: 'OUT_LOCKED', message: expect.stringContaining('pid 1 on host elsewhere, started then: the other run') });
    expect(taken.calls).toEqual(['create', 'read']);
    expect(JSON.parse(taken.text!).token).toBe('theirs');

    // A stale lock on this machine is taken over, and read back, since another run may take it over too.
    const stale = new RemoteLockSink(true);
    stale.text = held('old', deadPid(), hostname());
    const takeover = await acquireRunLock(stale, { command: 'three', settleMs: 1 });
    await takeover!.confirmed;
    expect(stale.calls).toEqual(['create', 'read', 'write', 'read']);
    expect(JSON.parse(stale.text!).command).toBe('three');
  });

  it('looks for the lock first where the create may overwrite (a custom endpoint), so a live run\'s lock is never replaced', async () => {
    const sink = new RemoteLockSink(false);
    sink.text = held('theirs');
    await expect(acquireRunLock(sink, { command: 'two' })).rejects.toMatchObject({ code: 'OUT_LOCKED' });
    expect(sink.calls).toEqual(['read']);
    expect(JSON.parse(sink.text!).token).toBe('theirs');
    const free = new RemoteLockSink(false);
    const lock = await acquireRunLock(free, { command: 'one', settleMs: 1 });
    await lock!.confirmed;
    expect(free.calls).toEqual(['read', 'create', 'read']);
  });

  it('reads the lock for its release while the last writes go on, and deletes it only once they are done', async () => {
    const sink = new RemoteLockSink(true);
    const lock = await acquireRunLock(sink, { command: 'one' });
    let finishWrites!: () => void;
    const writes = new Promise<void>((resolve) => (finishWrites = resolve));
    const released = lock!.release(writes);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sink.calls).toEqual(['create', 'read']);
    sink.calls.push('writes done');
    finishWrites();
    await released;
    expect(sink.calls).toEqual(['create', 'read', 'writes done', 'remove']);
    // Released once: the run's final release() is the same.
    await lock!.release();
    expect(sink.calls).toHaveLength(4);
  });

  it('takes its own lock when the create landed but its retry was refused (412 after a 5xx or a lost response), and releases it', async () => {
    // S3 may fail a request it has carried out (500/503, or a connection cut before the answer); the SDK
    // then resends the PutObject, and If-None-Match: * refuses it against the lock the first attempt wrote.
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
    for (const atomic of [true, false]) {
      const sink = new RemoteLockSink(atomic);
      sink.createExclusive = async (_key: string, data: Buffer) => {
        sink.calls.push('create');
        sink.put(data.toString());
        return false;
      };
      const lock = await acquireRunLock(sink, { command: 'one', settleMs: 1 });
      await lock!.confirmed;
      await lock!.release();
      expect(sink.text).toBeUndefined();
    }
  });

  it('creates the lock again where the create is atomic when it was refused by a holder that released meanwhile (409)', async () => {
    // 409 ConditionalRequestConflict: a delete of the key succeeded while the conditional write was in
    // progress; "On a 409 failure you should retry the upload."
    // https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-put-object-request/if-none-match.html
    const sink = new RemoteLockSink(true);
    const create = sink.createExclusive.bind(sink);
    let conflicts = 1;
    sink.createExclusive = async (key: string, data: Buffer, options?: IfMatch) => {
      if (conflicts-- > 0) {
        sink.calls.push('create');
        return false;
      }
      return create(key, data, options);
    };
    const lock = await acquireRunLock(sink, { command: 'one' });
    await lock!.confirmed;
    expect(sink.calls).toEqual(['create', 'read', 'create']);
    expect(JSON.parse(sink.text!).command).toBe('one');
  });

  it('does not read the lock for its release before its read-back: a run that lost the race leaves the winner\'s lock', async () => {
    const sink = new RemoteLockSink(false);
    const lock = await acquireRunLock(sink, { command: 'one', settleMs: 100 });
    const released = lock!.release(Promise.resolve());
    // The other run's write lands during the settling time, and wins.
    sink.text = held('winner', process.pid, hostname());
    await expect(lock!.confirmed).rejects.toMatchObject({ code: 'OUT_LOCKED' });
    await released;
    expect(JSON.parse(sink.text!).token).toBe('winner');
    expect(sink.calls).not.toContain('remove');
  });
});

describe('acquireRunLock on AWS S3: conditional takeover and release (If-Match)', () => {
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html: a PutObject with
  // If-Match fails with 412 PreconditionFailed when the ETag no longer matches.
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html: so does a DeleteObject
  // with If-Match, on general purpose buckets too.
  it('takes over a stale lock only in the version it read, with nothing to read back; elsewhere it overwrites and reads back', async () => {
    const aws = new RemoteLockSink(true, true);
    aws.put(held('old', deadPid(), hostname()));
    const lock = await acquireRunLock(aws, { command: 'new', settleMs: 1 });
    await lock!.confirmed;
    expect(aws.calls).toEqual(['create', 'read', 'create If-Match "v1"']);
    expect(JSON.parse(aws.text!).command).toBe('new');
    await lock!.release();
    expect(aws.calls.slice(3)).toEqual(['read', 'remove If-Match "v2"']);
    expect(aws.text).toBeUndefined();

    // A custom endpoint (s3rver ignores If-Match on PUT and DELETE): as before, even with ETags to hand.
    const custom = new RemoteLockSink(false, true);
    custom.put(held('old', deadPid(), hostname()));
    const other = await acquireRunLock(custom, { command: 'new', settleMs: 1 });
    await other!.confirmed;
    await other!.release();
    expect(custom.calls).toEqual(['read', 'write', 'read', 'read', 'remove']);
  });

  it('is refused, leaving the lock, when the stale lock was replaced by a fresh one between its read and its takeover', async () => {
    const sink = new RemoteLockSink(true, true);
    sink.put(held('old', deadPid(), hostname()));
    const create = sink.createExclusive.bind(sink);
    sink.createExclusive = async (key: string, data: Buffer, options?: IfMatch) => {
      // The stale lock is deleted by hand, and a run A on another host creates a fresh one.
      if (options?.ifMatch) sink.put(held('run A'));
      return create(key, data, options);
    };
    const error = await rejection(acquireRunLock(sink, { command: 'late', settleMs: 1 }), Error);
    expect(error).toMatchObject({ code: 'OUT_LOCKED', message: expect.stringContaining('pid 1 on host elsewhere') });
    expect(sink.calls).toEqual(['create', 'read', 'create If-Match "v1"', 'read']);
    expect(JSON.parse(sink.text!).token).toBe('run A');
  });

  it('creates the lock when the stale one was deleted before its takeover, and takes its own takeover whose resend was refused', async () => {
    const gone = new RemoteLockSink(true, true);
    gone.put(held('old', deadPid(), hostname()));
    const create = gone.createExclusive.bind(gone);
    gone.createExclusive = async (key: string, data: Buffer, options?: IfMatch) => {
      if (options?.ifMatch) {
        gone.text = undefined;
        gone.etag = undefined;
      }
      return create(key, data, options);
    };
    const lock = await acquireRunLock(gone, { command: 'new' });
    await lock!.confirmed;
    expect(gone.calls).toEqual(['create', 'read', 'create If-Match "v1"', 'read', 'create']);
    expect(JSON.parse(gone.text!).command).toBe('new');

    // The takeover landed, S3 failed to answer, and the SDK's resend got 412 against it.
    const resent = new RemoteLockSink(true, true);
    resent.put(held('old', deadPid(), hostname()));
    const write = resent.createExclusive.bind(resent);
    resent.createExclusive = async (key: string, data: Buffer, options?: IfMatch) => (options?.ifMatch ? (await write(key, data, options), false) : write(key, data, options));
    const own = await acquireRunLock(resent, { command: 'new' });
    await own!.confirmed;
    await own!.release();
    expect(resent.calls).toEqual(['create', 'read', 'create If-Match "v1"', 'read', 'read', 'remove If-Match "v2"']);
    expect(resent.text).toBeUndefined();
  });

  it('tries its takeover again when S3 answered 409 and the stale lock is still the version it read', async () => {
    // 409 ConditionalRequestConflict: a conflicting operation was in flight; "On a 409 failure you should
    // fetch the object's ETag and retry the upload."
    // https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-put-object-request/if-match.html
    const sink = new RemoteLockSink(true, true);
    sink.put(held('old', deadPid(), hostname()));
    const create = sink.createExclusive.bind(sink);
    let conflicts = 1;
    sink.createExclusive = async (key: string, data: Buffer, options?: IfMatch) => {
      if (options?.ifMatch && conflicts-- > 0) {
        sink.calls.push(`create If-Match ${options.ifMatch}`);
        return false;
      }
      return create(key, data, options);
    };
    const lock = await acquireRunLock(sink, { command: 'new' });
    await lock!.confirmed;
    expect(sink.calls).toEqual(['create', 'read', 'create If-Match "v1"', 'read', 'create If-Match "v1"']);
    expect(JSON.parse(sink.text!).command).toBe('new');
  });

  it('does not delete a lock that replaced its own while the last uploads ran', async () => {
    const sink = new RemoteLockSink(true, true);
    const lock = await acquireRunLock(sink, { command: 'one' });
    let finishWrites!: () => void;
    const writes = new Promise<void>((resolve) => (finishWrites = resolve));
    const released = lock!.release(writes);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Read as ours; then someone deletes it by hand and starts a new run, whose lock is "v2".
    sink.put(held('next run'));
    finishWrites();
    await released;
    expect(sink.calls).toEqual(['create', 'read', 'remove If-Match "v1"']);
    expect(JSON.parse(sink.text!).token).toBe('next run');
  });
});
