import { STATE_KEY } from '../pipeline/layout.js';
import type { DestinationIndex } from '../pipeline/plan.js';
import { compareKeys } from '../storage/key-order.js';
import type { Sink, SinkEntry, TextEntry } from '../storage/types.js';
import { recordedFingerprint } from './state-file.js';

/**
 * Destination keys a cursor keeps after walking past them. An output key can sort before the key the
 * cursor was last asked for although its source came later: `a.k.jpg` sorts before `a.png` as a source,
 * but its output `a.k.jpg` after `a.jpg`. Such keys are found here; one that has left the window counts
 * as missing and its source is redone, never wrongly skipped.
 */
export const PASSED_WINDOW = 1024;

/**
 * One pass over a sorted listing (a destination's `<variant>/` folder), moved forward by `seek` in step with
 * the sorted sources. It holds the listing's current page (the sink pages lazily) and a window of the last
 * `window` keys it passed, so memory does not grow with the size of the listing.
 */
export class ListingCursor {
  private head: SinkEntry | undefined;
  private started = false;
  private readonly passed = new Map<string, number>();

  constructor(
    private readonly iterator: AsyncIterator<SinkEntry>,
    private readonly window = PASSED_WINDOW,
  ) {}

  /** Reads the first entry, so that a listing that cannot even start fails before anything is written. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.advance();
  }

  /** Moves forward until the head is at or after `key` (never backward). */
  async seek(key: string): Promise<void> {
    await this.start();
    while (this.head && compareKeys(this.head.key, key) < 0) {
      this.passed.set(this.head.key, this.head.mtimeMs);
      if (this.passed.size > this.window) this.passed.delete(this.passed.keys().next().value!);
      await this.advance();
    }
  }

  /** The time of `key` if the cursor is on it or passed it recently; undefined otherwise. */
  timeOf(key: string): number | undefined {
    if (this.head?.key === key) return this.head.mtimeMs;
    return this.passed.get(key);
  }

  async close(): Promise<void> {
    this.head = undefined;
    await this.iterator.return?.();
  }

  private async advance(): Promise<void> {
    const next = await this.iterator.next();
    this.head = next.done ? undefined : next.value;
  }
}

/** What the run knows about its destination, answering the planner as the sources go by. */
export interface Destination extends DestinationIndex {
  /** Whether the recorded config fingerprint is this run's. */
  stateMatches: boolean;
  /** The state file's text as the run found it (undefined: none), whose record a new state extends. */
  stateText: string | undefined;
  /** Moves the listings up to these output keys, fetching pages as needed, so `outputs.get` can answer. */
  reach(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDestinationOptions {
  fingerprint: string;
  /** Variant names: one listing per `<variant>/` folder. */
  variants: readonly string[];
  /** False with --force: nothing can be fresh, so nothing is listed. */
  listOutputs: boolean;
  signal?: AbortSignal;
  /** Test hook: the size of each cursor's window. */
  window?: number;
}

/**
 * Reads the destination's state file once, and when its fingerprint is this config's, opens one listing per
 * variant folder (S3: ListObjectsV2 with that prefix, paged as the run goes; local: a sorted walk).
 * No request per object; no map of every output: memory is the cursors' pages and windows.
 */
export async function openDestination(sink: Sink, options: OpenDestinationOptions): Promise<Destination> {
  // The folders' first pages are asked for beside the state read, not after it: a resumed run waits one
  // round trip for both instead of two. When the state shows nothing can be fresh, they are dropped, each
  // page in flight left to finish unread (their own signal would displace the run's in the S3 sink).
  const cursors = new Map<string, ListingCursor>();
  if (options.listOutputs && sink.readTextEntry) {
    for (const variant of options.variants) {
      const listing = sink.list({ under: `${variant}/`, ...(options.signal ? { signal: options.signal } : {}) });
      cursors.set(variant, new ListingCursor(listing[Symbol.asyncIterator](), options.window));
    }
  }
  const started = Promise.all([...cursors.values()].map((c) => c.start()));
  started.catch(() => undefined); // awaited below when the state matches; otherwise its failure means nothing
  const closeAll = () => {
    const open = [...cursors.values()];
    cursors.clear();
    return Promise.allSettled(open.map((c) => c.close()));
  };
  let state: TextEntry | undefined;
  try {
    state = sink.readTextEntry ? await sink.readTextEntry(STATE_KEY) : undefined;
  } catch (error) {
    void closeAll();
    throw error;
  }
  const stateMatches = state !== undefined && recordedFingerprint(state.text) === options.fingerprint;
  const freshSince = stateMatches ? state?.mtimeMs : undefined;
  if (!stateMatches) {
    void closeAll();
  } else {
    try {
      // One page of each, now: a listing that cannot start fails before anything is written.
      await started;
    } catch (error) {
      await closeAll();
      throw error;
    }
  }
  const cursorOf = (key: string) => cursors.get(key.slice(0, key.indexOf('/')));
  return {
    stateMatches,
    stateText: state?.text,
    freshSince,
    outputs: { get: (key) => cursorOf(key)?.timeOf(key) },
    async reach(keys) {
      if (cursors.size === 0) return;
      // In order per cursor, so each only moves forward (the smaller keys of a source end up in its window);
      // the cursors side by side, so one folder waiting for its next page does not hold up the others.
      const perCursor = new Map<ListingCursor, string[]>();
      for (const key of [...keys].sort(compareKeys)) {
        const cursor = cursorOf(key);
        if (cursor) perCursor.set(cursor, [...(perCursor.get(cursor) ?? []), key]);
      }
      await Promise.all([...perCursor].map(async ([cursor, sorted]) => {
        for (const key of sorted) await cursor.seek(key);
      }));
    },
    async close() {
      await Promise.allSettled([...cursors.values()].map((c) => c.close()));
    },
  };
}
