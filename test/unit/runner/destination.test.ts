import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { createPlanner, plannedOutputs } from '../../../src/pipeline/plan.js';
import { ListingCursor, openDestination, PASSED_WINDOW } from '../../../src/runner/destination.js';
import { compareKeys } from '../../../src/storage/key-order.js';
import type { Sink, SinkEntry, SinkListOptions, SourceEntry, TextEntry } from '../../../src/storage/types.js';

/** A destination that lists like S3 (sorted, by folder) and counts how far each listing was read. */
class ListedSink implements Sink {
  readonly uri = 'mem://out';
  /** Entries handed out, per folder listed. */
  readonly consumed = new Map<string, number>();
  constructor(
    private readonly times: Map<string, number>,
    private readonly state: TextEntry | undefined = { text: JSON.stringify({ fingerprint: 'f' }), mtimeMs: 1_000 },
    private readonly failAfter = Infinity,
  ) {}
  async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
    const under = options.under ?? '';
    this.consumed.set(under, 0);
    for (const key of [...this.times.keys()].filter((k) => k.startsWith(under)).sort(compareKeys)) {
      if (this.consumed.get(under)! >= this.failAfter) throw new Error('listing broke off');
      this.consumed.set(under, this.consumed.get(under)! + 1);
      yield { key, mtimeMs: this.times.get(key)!, size: 1 };
    }
  }
  async readText(): Promise<string | undefined> {
    return this.state?.text;
  }
  async readTextEntry(key: string): Promise<TextEntry | undefined> {
    return key === STATE_KEY ? this.state : undefined;
  }
  async write(): Promise<void> {}
  uriOf(key: string): string {
    return `mem://out/${key}`;
  }
}

const config = configSchema.parse({ concurrency: 1 });
const variants = Object.keys(config.sizes);
const entry = (key: string, mtimeMs = 500): SourceEntry => ({ key, uri: `s3://in/${key}`, size: 10, mtimeMs });
/** Every output of these source keys, written at `time`. */
const outputsOf = (keys: string[], time = 2_000) => new Map(keys.flatMap((k) => plannedOutputs(k, config).map((o) => [o.key, time] as const)));

/** Plans sorted source keys the way runPipeline does: move the listings to each entry's outputs, then plan. */
async function planAll(sink: Sink, keys: string[], window?: number) {
  const destination = await openDestination(sink, { fingerprint: 'f', variants, listOutputs: true, ...(window !== undefined ? { window } : {}) });
  const plan = createPlanner(config, destination, { force: false, maxFileSize: 1e9 });
  const actions: Record<string, string> = {};
  for (const key of [...keys].sort(compareKeys)) {
    await destination.reach(plannedOutputs(key, config).map((o) => o.key));
    actions[key] = plan(entry(key)).action;
  }
  await destination.close();
  return actions;
}

describe('ListingCursor', () => {
  async function* entries(keys: string[]): AsyncGenerator<SinkEntry> {
    for (const key of keys) yield { key, mtimeMs: keys.indexOf(key), size: 1 };
  }

  it('finds keys in step with a sorted stream, and keeps only a window of the keys it passed', async () => {
    const cursor = new ListingCursor(entries(['a', 'b', 'c', 'd', 'e']), 2);
    await cursor.seek('c');
    expect(cursor.timeOf('c')).toBe(2);
    expect(cursor.timeOf('b')).toBe(1); // passed, in the window
    expect(cursor.timeOf('a')).toBe(0);
    await cursor.seek('e');
    expect(cursor.timeOf('e')).toBe(4);
    expect([cursor.timeOf('d'), cursor.timeOf('c')]).toEqual([3, 2]);
    expect(cursor.timeOf('a')).toBeUndefined(); // left the window: unknown, so redone
    await cursor.seek('b'); // never backward
    expect(cursor.timeOf('e')).toBe(4);
    await cursor.seek('zz');
    expect(cursor.timeOf('zz')).toBeUndefined();
  });
});

describe('openDestination (merge-join of sources and destination listings)', () => {
  it('skips every fresh source while reading each variant folder once, only as far as the sources go', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `p${String(i).padStart(3, '0')}.jpg`);
    const sink = new ListedSink(outputsOf(keys));
    const destination = await openDestination(sink, { fingerprint: 'f', variants, listOutputs: true });
    const plan = createPlanner(config, destination, { force: false, maxFileSize: 1e9 });
    for (const key of keys.slice(0, 10)) {
      await destination.reach(plannedOutputs(key, config).map((o) => o.key));
      expect(plan(entry(key)).action).toBe('skip');
    }
    // Lazily: ten sources in, each listing has handed out about ten entries, not fifty.
    expect(sink.consumed.get('thumb/')).toBeLessThanOrEqual(11);
    expect(sink.consumed.get('medium/')).toBeLessThanOrEqual(11);
    await destination.close();
    expect(Object.values(await planAll(new ListedSink(outputsOf(keys)), keys)).every((a) => a === 'skip')).toBe(true);
  });

  it('redoes what is missing or older, and reads no folder past its first entry when the state is another config\'s, nothing with --force', async () => {
    const times = outputsOf(['a.jpg', 'b.jpg', 'd.jpg']);
    times.delete('medium/b.jpg');
    times.set('thumb/d.jpg', 100); // older than its source
    expect(await planAll(new ListedSink(times), ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'])).toEqual({ 'a.jpg': 'skip', 'b.jpg': 'process', 'c.jpg': 'process', 'd.jpg': 'process' });

    const other = new ListedSink(outputsOf(['a.jpg']), { text: JSON.stringify({ fingerprint: 'other' }), mtimeMs: 1_000 });
    expect(await planAll(other, ['a.jpg'])).toEqual({ 'a.jpg': 'process' });
    // Asked for beside the state read, then dropped unread.
    expect([...other.consumed.values()].every((n) => n <= 1)).toBe(true);
    const forced = new ListedSink(outputsOf(['a.jpg']));
    const destination = await openDestination(forced, { fingerprint: 'f', variants, listOutputs: false });
    expect(destination.stateMatches).toBe(true);
    expect(forced.consumed.size).toBe(0);
  });

  it('finds outputs that sort before the sources\' position ("." in a stem) in the window, and redoes them, never skips, past it', async () => {
    // As sources, a.k.jpg sorts before a.png; as outputs, a.jpg (from a.png) sorts before a.k.jpg.
    const keys = ['a.k.jpg', 'a.png'];
    expect([...keys].sort(compareKeys)).toEqual(keys);
    expect(compareKeys('thumb/a.jpg', 'thumb/a.k.jpg')).toBeLessThan(0);
    expect(await planAll(new ListedSink(outputsOf(keys)), keys)).toEqual({ 'a.k.jpg': 'skip', 'a.png': 'skip' });
    // With no window, thumb/a.jpg has been passed and forgotten: a.png is processed again, not skipped.
    expect(await planAll(new ListedSink(outputsOf(keys)), keys, 0)).toEqual({ 'a.k.jpg': 'skip', 'a.png': 'process' });
    // An output that was never there is not found in the window either.
    const missing = outputsOf(keys);
    missing.delete('thumb/a.jpg');
    expect(await planAll(new ListedSink(missing), keys)).toEqual({ 'a.k.jpg': 'skip', 'a.png': 'process' });
  });

  it('bounds what it holds by the window, however long the destination', async () => {
    const keys = Array.from({ length: PASSED_WINDOW * 3 }, (_, i) => `k${String(i).padStart(6, '0')}.jpg`);
    const sink = new ListedSink(outputsOf(keys));
    const destination = await openDestination(sink, { fingerprint: 'f', variants, listOutputs: true });
    await destination.reach(plannedOutputs(keys.at(-1)!, config).map((o) => o.key));
    // The first outputs have left the window: unknown now (they would be redone), not remembered.
    expect(destination.outputs.get(plannedOutputs(keys[0]!, config)[0]!.key)).toBeUndefined();
    expect(destination.outputs.get(plannedOutputs(keys.at(-PASSED_WINDOW)!, config)[0]!.key)).toBe(2_000);
    await destination.close();
  });

  it('asks for each folder\'s first page while the state file is read, not after it (one round trip, not two)', async () => {
    class SlowStateSink extends ListedSink {
      listedDuringStateRead = -1;
      override async readTextEntry(key: string): Promise<TextEntry | undefined> {
        await new Promise((resolve) => setTimeout(resolve, 20));
        this.listedDuringStateRead = this.consumed.size;
        return super.readTextEntry(key);
      }
    }
    const resumed = new SlowStateSink(outputsOf(['a.jpg']));
    expect(await planAll(resumed, ['a.jpg'])).toEqual({ 'a.jpg': 'skip' });
    expect(resumed.listedDuringStateRead).toBe(variants.length);
    // Another config's state: the pages asked for are dropped, and a listing that fails meanwhile is no error.
    const other = new SlowStateSink(outputsOf(['a.jpg']), { text: JSON.stringify({ fingerprint: 'other' }), mtimeMs: 1_000 }, 0);
    const destination = await openDestination(other, { fingerprint: 'f', variants, listOutputs: true });
    expect(destination.stateMatches).toBe(false);
    expect(other.listedDuringStateRead).toBe(variants.length);
    await destination.reach(plannedOutputs('a.jpg', config).map((o) => o.key));
    expect(destination.outputs.get('thumb/a.jpg')).toBeUndefined();
    await destination.close();
  });

  it('fails at once when a listing cannot start, and later from reach when it breaks off', async () => {
    await expect(openDestination(new ListedSink(outputsOf(['a.jpg']), { text: '{"fingerprint":"f"}', mtimeMs: 1 }, 0), { fingerprint: 'f', variants, listOutputs: true })).rejects.toThrow('listing broke off');
    const breaking = await openDestination(new ListedSink(outputsOf(['a.jpg', 'b.jpg', 'c.jpg']), { text: '{"fingerprint":"f"}', mtimeMs: 1 }, 2), { fingerprint: 'f', variants, listOutputs: true });
    await expect(breaking.reach(['thumb/c.jpg'])).rejects.toThrow('listing broke off');
  });

  it('moves each folder\'s listing on its own: one waiting for a page does not hold up the others', async () => {
    let release!: () => void;
    const held = new Promise<void>((done) => (release = done));
    class SlowMediumSink extends ListedSink {
      override async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
        let first = true;
        for await (const entry of super.list(options)) {
          // medium/'s second entry stands for a page that takes its time to arrive.
          if (options.under === 'medium/' && !first) await held;
          first = false;
          yield entry;
        }
      }
    }
    const times = new Map([['thumb/a.jpg', 5_000], ['thumb/b.jpg', 5_000], ['medium/a.jpg', 5_000], ['medium/b.jpg', 5_000]]);
    const destination = await openDestination(new SlowMediumSink(times), { fingerprint: 'f', variants: ['thumb', 'medium'], listOutputs: true });
    const reached = destination.reach(['thumb/b.jpg', 'medium/b.jpg']);
    await new Promise((done) => setTimeout(done, 50));
    // medium/ still waits, but thumb/ is already there.
    expect(destination.outputs.get('thumb/b.jpg')).toBe(5_000);
    expect(destination.outputs.get('medium/b.jpg')).toBeUndefined();
    release();
    await reached;
    expect(destination.outputs.get('medium/b.jpg')).toBe(5_000);
    await destination.close();
  });
});

