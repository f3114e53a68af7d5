import { EventEmitter } from 'node:events';
import { copyFile, mkdir, opendir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { StorageError } from '../../../src/errors.js';
import { LOCK_KEY, STATE_KEY } from '../../../src/pipeline/layout.js';
import { runPipeline, type RunEvent, type RunOptions } from '../../../src/runner/run-pipeline.js';
import { compareKeys } from '../../../src/storage/key-order.js';
import { LocalSink, LocalSource } from '../../../src/storage/local.js';
import type { Sink, SinkEntry, SinkListOptions, Source, SourceEntry, Stored, TextEntry, WriteOptions } from '../../../src/storage/types.js';
import { fixture } from '../../helpers/paths.js';
import { pipelineFor } from '../../helpers/pipeline.js';
import { readMetadata } from '../../helpers/pixels.js';
import { hashTree, listOutputFiles, makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

/** An in-memory source: key -> bytes, with mtimes the test controls, listed in key order like S3. */
class MemorySource implements Source {
  readonly uri = 'mem://in';
  readonly reads: string[] = [];
  constructor(
    readonly files: Map<string, { data: Buffer; mtimeMs: number }>,
    readonly emptyObjectsArePlaceholders = false,
    readonly readAhead = true,
  ) {}
  async *list(): AsyncIterable<SourceEntry> {
    for (const key of [...this.files.keys()].sort(compareKeys)) {
      const { data, mtimeMs } = this.files.get(key)!;
      yield { key, uri: `${this.uri}/${key}`, size: data.length, mtimeMs };
    }
  }
  async read(entry: SourceEntry): Promise<Buffer> {
    this.reads.push(entry.key);
    return this.files.get(entry.key)!.data;
  }
}

/** An in-memory sink that records the order of writes and their clock, and lists like S3 (sorted, by folder). */
class MemorySink implements Sink {
  readonly uri = 'mem://out';
  readonly objects = new Map<string, { data: Buffer; mtimeMs: number; options: WriteOptions }>();
  readonly writes: string[] = [];
  readonly listed: string[] = [];
  clock = 10_000;
  async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
    const under = options.under ?? '';
    this.listed.push(under);
    for (const key of [...this.objects.keys()].filter((k) => k.startsWith(under)).sort(compareKeys)) {
      const o = this.objects.get(key)!;
      yield { key, mtimeMs: o.mtimeMs, size: o.data.length };
    }
  }
  async readText(key: string): Promise<string | undefined> {
    return this.objects.get(key)?.data.toString('utf8');
  }
  async readTextEntry(key: string): Promise<TextEntry | undefined> {
    const o = this.objects.get(key);
    return o && { text: o.data.toString('utf8'), mtimeMs: o.mtimeMs };
  }
  async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
    this.clock += 1;
    this.writes.push(key);
    this.objects.set(key, { data, mtimeMs: this.clock, options });
  }
  uriOf(key: string): string {
    return `mem://out/${key}`;
  }
}

const files = async (...paths: [key: string, fixture: string][]) =>
  new Map(await Promise.all(paths.map(async ([key, path]) => [key, { data: await readFile(fixture(path)), mtimeMs: 1_000 }] as const)));

async function run(source: MemorySource, sink: MemorySink, over: Partial<RunOptions> = {}, config = {}) {
  return runPipeline({ sources: [source], sink, pipeline: await pipelineFor(config), concurrency: 2, collectFiles: true, ...over });
}

describe('runPipeline', () => {
  it('processes every image into the layout, ignores non-images, and reports each file', async () => {
    const source = new MemorySource(await files(['2024/cat.PNG', 'images/2024/cat.PNG'], ['a.jpg', 'cases/grey.jpg'], ['notes.txt', 'bad/not-an-image.jpg']));
    const sink = new MemorySink();
    const report = await run(source, sink);
    expect(report).toMatchObject({ processed: 2, skipped: 0, failed: 0, interrupted: false });
    expect([...sink.objects.keys()].sort()).toEqual([STATE_KEY, 'medium/2024/cat.jpg', 'medium/a.jpg', 'thumb/2024/cat.jpg', 'thumb/a.jpg']);
    const cat = report.files.find((f) => f.input === 'mem://in/2024/cat.PNG')!;
    expect(cat.outputs).toEqual([
      { variant: 'thumb', format: 'jpeg', path: 'mem://out/thumb/2024/cat.jpg', width: 128, height: 96, bytes: sink.objects.get('thumb/2024/cat.jpg')!.data.length },
      { variant: 'medium', format: 'jpeg', path: 'mem://out/medium/2024/cat.jpg', width: 320, height: 240, bytes: sink.objects.get('medium/2024/cat.jpg')!.data.length },
    ]);
    expect((await readMetadata(sink.objects.get('thumb/2024/cat.jpg')!.data)).format).toBe('jpeg');
    expect(sink.objects.get('thumb/a.jpg')!.options.contentType).toBe('image/jpeg');
    expect(report.bytesIn).toBe(source.files.get('2024/cat.PNG')!.data.length + source.files.get('a.jpg')!.data.length);
    expect(report.bytesOut).toBe([...sink.objects].filter(([k]) => k !== STATE_KEY).reduce((s, [, o]) => s + o.data.length, 0));
  });

  it('fails each bad file on its own and still processes the good ones', async () => {
    const source = new MemorySource(await files(
      ['empty.jpg', 'bad/empty.jpg'], ['good1.jpg', 'cases/grey.jpg'], ['not-an-image.jpg', 'bad/not-an-image.jpg'], ['truncated.jpg', 'bad/truncated.jpg'],
      ['pixel-bomb.png', 'bad/pixel-bomb.png'], ['vector.svg', 'bad/vector.svg'], ['good2.png', 'cases/transparent.png'],
    ));
    const sink = new MemorySink();
    const report = await run(source, sink);
    expect(report).toMatchObject({ processed: 2, failed: 5 });
    const failed = Object.fromEntries(report.files.filter((f) => f.status === 'failed').map((f) => [f.input.split('/').pop(), f.code]));
    expect(failed).toEqual({ 'empty.jpg': 'INPUT_EMPTY', 'not-an-image.jpg': 'INPUT_NOT_IMAGE', 'truncated.jpg': 'INPUT_CORRUPT', 'pixel-bomb.png': 'INPUT_TOO_MANY_PIXELS', 'vector.svg': 'INPUT_REFUSED' });
    for (const f of report.files.filter((f) => f.status === 'failed')) {
      expect(f.error).toBeTruthy();
      expect(f.error).not.toContain('\n');
      expect(f.outputs).toEqual([]);
    }
    expect([...sink.objects.keys()].filter((k) => k.startsWith('thumb/')).sort()).toEqual(['thumb/good1.jpg', 'thumb/good2.jpg']);
  });

  it('records the config fingerprint before the first output, then skips fresh inputs on a rerun', async () => {
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg'], ['b.jpg', 'cases/gps.jpg']));
    const sink = new MemorySink();
    await run(source, sink);
    expect(sink.writes[0]).toBe(STATE_KEY);
    const writes = sink.writes.length;
    const again = await run(source, sink);
    expect(again).toMatchObject({ processed: 0, skipped: 2 });
    expect(again.files.every((f) => f.status === 'skipped' && f.reason === 'up to date')).toBe(true);
    expect(sink.writes.length).toBe(writes);
    expect(source.reads).toEqual(expect.arrayContaining(['a.jpg', 'b.jpg']));
    expect(source.reads).toHaveLength(2);
  });

  it('reprocesses everything after a config change, and only a touched input otherwise', async () => {
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg'], ['b.jpg', 'cases/gps.jpg']));
    const sink = new MemorySink();
    await run(source, sink);
    expect(await run(source, sink, {}, { quality: 60 })).toMatchObject({ processed: 2, skipped: 0 });
    expect(await run(source, sink, {}, { quality: 60 })).toMatchObject({ processed: 0, skipped: 2 });
    source.files.get('b.jpg')!.mtimeMs = sink.clock + 1;
    const touched = await run(source, sink, {}, { quality: 60 });
    expect(touched).toMatchObject({ processed: 1, skipped: 1 });
    expect(touched.files.find((f) => f.status === 'processed')!.input).toBe('mem://in/b.jpg');
    expect(await run(source, sink, { force: true }, { quality: 60 })).toMatchObject({ processed: 2, skipped: 0 });
  });

  it('writes nothing on a dry run and reports the planned outputs', async () => {
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg']));
    const sink = new MemorySink();
    const report = await run(source, sink, { dryRun: true });
    expect(sink.writes).toEqual([]);
    expect(source.reads).toEqual([]);
    expect(report).toMatchObject({ planned: 1, processed: 0 });
    expect(report.files[0]!.outputs.map((o) => o.path)).toEqual(['mem://out/thumb/a.jpg', 'mem://out/medium/a.jpg']);
  });

  it('emits found, file and listed events for a renderer', async () => {
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg'], ['b.txt', 'bad/not-an-image.jpg'], ['c.jpg', 'bad/empty.jpg']));
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const seen: RunEvent[] = [];
    events.on('event', (e) => seen.push(e));
    await run(source, new MemorySink(), { events });
    expect(seen.filter((e) => e.type === 'found').map((e) => (e as { total: number }).total)).toEqual([1, 2]);
    expect(seen.filter((e) => e.type === 'file')).toHaveLength(2);
    expect(seen.find((e) => e.type === 'listed')).toEqual({ type: 'listed', total: 2 });
  });

  it('keeps only counts unless asked to collect file reports', async () => {
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg']));
    const report = await run(source, new MemorySink(), { collectFiles: false });
    expect(report.processed).toBe(1);
    expect(report.files).toEqual([]);
  });

  it('stops scheduling when aborted and says it was interrupted', async () => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    const source = new MemorySource(new Map(Array.from({ length: 20 }, (_, i) => [`p${String(i).padStart(2, '0')}.jpg`, { data: grey, mtimeMs: 1 }])));
    const controller = new AbortController();
    const events = new EventEmitter<{ event: [RunEvent] }>();
    events.on('event', (e) => e.type === 'file' && controller.abort());
    const report = await run(source, new MemorySink(), { signal: controller.signal, events, concurrency: 1 });
    expect(report.interrupted).toBe(true);
    expect(report.processed).toBeGreaterThanOrEqual(1);
    expect(report.processed).toBeLessThan(5);
  });
  it('merges several sources in key order, deciding per source whether an empty entry is a placeholder', async () => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    const local = new MemorySource(new Map([['b.jpg', { data: grey, mtimeMs: 1 }], ['empty-local.jpg', { data: Buffer.alloc(0), mtimeMs: 1 }], ['cat.jpg', { data: grey, mtimeMs: 1 }]]), false, false);
    // Neither reads ahead: one image at a time.
    const s3 = new MemorySource(new Map([['a.jpg', { data: grey, mtimeMs: 1 }], ['empty-s3.jpg', { data: Buffer.alloc(0), mtimeMs: 1 }], ['cat.png', { data: grey, mtimeMs: 1 }]]), true, false);
    const report = await runPipeline({ sources: [local, s3], sink: new MemorySink(), pipeline: await pipelineFor(), concurrency: 1, collectFiles: true });
    const status = Object.fromEntries(report.files.map((f) => [f.input.slice('mem://in/'.length), f.code ?? f.reason ?? f.status]));
    expect(status).toEqual({ 'a.jpg': 'processed', 'b.jpg': 'processed', 'cat.jpg': 'processed', 'cat.png': 'OUTPUT_COLLISION', 'empty-local.jpg': 'INPUT_EMPTY', 'empty-s3.jpg': 'empty object' });
    // One stream in key order across both sources (that is what lets resume walk the destination once):
    // at -j 1 the images are processed in that order (what needs no I/O is reported as soon as it is listed).
    expect(report.files.filter((f) => f.status === 'processed').map((f) => f.input)).toEqual(['a.jpg', 'b.jpg', 'cat.jpg'].map((k) => `mem://in/${k}`));
  });

  it('skips both a.k.jpg and a.png on a rerun, although their outputs sort the other way round', async () => {
    const source = new MemorySource(await files(['a.k.jpg', 'cases/grey.jpg'], ['a.png', 'cases/transparent.png'], ['b.jpg', 'cases/gps.jpg']));
    const sink = new MemorySink();
    expect(await run(source, sink)).toMatchObject({ processed: 3 });
    sink.listed.length = 0;
    const rerun = await run(source, sink);
    expect(rerun).toMatchObject({ processed: 0, skipped: 3 });
    // One listing per variant folder, no more.
    expect(sink.listed.sort()).toEqual(['medium/', 'thumb/']);
  });

  it('keeps the report when a listing fails midway: earlier files reported, the error recorded', async () => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    class BreakingSource extends MemorySource {
      override async *list(): AsyncIterable<SourceEntry> {
        let n = 0;
        for await (const entry of super.list()) {
          if (n++ === 2) throw new StorageError('S3_THROTTLED', 'SlowDown: s3:ListBucket on s3://b/in/ was throttled after every retry');
          yield entry;
        }
      }
    }
    const source = new BreakingSource(new Map(['a', 'b', 'c', 'd'].map((k) => [`${k}.jpg`, { data: grey, mtimeMs: 1 }])));
    const report = await run(source, new MemorySink());
    expect(report.error).toEqual({ code: 'S3_THROTTLED', message: 'SlowDown: s3:ListBucket on s3://b/in/ was throttled after every retry' });
    // Both listed files are reported, in whichever order the pool finished them.
    expect(report.files.map((f) => [f.input, f.status]).sort()).toEqual([['mem://in/a.jpg', 'processed'], ['mem://in/b.jpg', 'processed']]);
  });

  it('on abort, reports every listed file, those never started as skipped (interrupted): the counts add up', async () => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    const source = new MemorySource(new Map(Array.from({ length: 20 }, (_, i) => [`p${String(i).padStart(2, '0')}.jpg`, { data: grey, mtimeMs: 1 }])));
    const controller = new AbortController();
    const events = new EventEmitter<{ event: [RunEvent] }>();
    let found = 0;
    events.on('event', (e) => {
      if (e.type === 'found') found = e.total;
      if (e.type === 'file' && e.file.status === 'processed') controller.abort();
    });
    const report = await run(source, new MemorySink(), { signal: controller.signal, events, concurrency: 2 });
    expect(report.interrupted).toBe(true);
    expect(found).toBeGreaterThan(report.processed);
    expect(report.processed + report.skipped + report.failed).toBe(found);
    expect(report.files).toHaveLength(found);
    const skipped = report.files.filter((f) => f.status === 'skipped');
    expect(skipped.length).toBeGreaterThan(0);
    expect(skipped.every((f) => f.reason === 'interrupted before it was processed')).toBe(true);
  });

  it('holds its first outputs until the second the state was written in is over, when the sink keeps whole seconds', async () => {
    class SecondsSink extends MemorySink {
      readonly timeResolutionMs = 1000;
      readonly wallClock: number[] = [];
      override async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
        this.wallClock.push(Date.now());
        await super.write(key, data, options);
      }
    }
    const sink = new SecondsSink();
    await run(new MemorySource(await files(['a.jpg', 'cases/grey.jpg'])), sink);
    expect(sink.writes[0]).toBe(STATE_KEY);
    const [state, ...outputs] = sink.wallClock.map((t) => Math.floor(t / 1000));
    expect(outputs.length).toBe(2);
    for (const second of outputs) expect(second).toBeGreaterThan(state!);
  });

  it('configures sharp for the images in flight itself (no operation cache; threads per image = cores / images)', async () => {
    sharp.cache(true);
    sharp.concurrency(0);
    await run(new MemorySource(await files(['a.jpg', 'cases/grey.jpg'])), new MemorySink(), { concurrency: 1, dryRun: true });
    expect(sharp.concurrency()).toBe(availableParallelism());
    expect(sharp.cache().items.max).toBe(0);
  });

  it('reads ahead only for sources that ask for it (downloads), never local files', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in'));
    for (let i = 0; i < 8; i += 1) await copyFile(fixture('cases/grey.jpg'), join(dir, 'in', `p${i}.jpg`));
    /** The most inputs read and not yet reported at any moment: what a run holds in memory at once. */
    async function mostHeld(source: Source): Promise<number> {
      let read = 0;
      let reported = 0;
      let most = 0;
      const original = source.read.bind(source);
      source.read = async (entry: SourceEntry) => {
        read += 1;
        most = Math.max(most, read - reported);
        return original(entry);
      };
      const events = new EventEmitter<{ event: [RunEvent] }>();
      events.on('event', (e) => e.type === 'file' && (reported += 1));
      const report = await runPipeline({ sources: [source], sink: new MemorySink(), pipeline: await pipelineFor(), concurrency: 2, events });
      expect(report.processed).toBe(8);
      return most;
    }
    expect(await mostHeld(await LocalSource.open(join(dir, 'in')))).toBeLessThanOrEqual(2);
    // The same count sees a source that reads ahead go past the two slots.
    const grey = await readFile(fixture('cases/grey.jpg'));
    const remote = new MemorySource(new Map(Array.from({ length: 8 }, (_, i) => [`p${i}.jpg`, { data: grey, mtimeMs: 1 }])), false, true);
    expect(await mostHeld(remote)).toBeGreaterThan(2);
  });

  it('with a remote sink, keeps more images in flight than decode slots, so uploads overlap other images', async () => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    /** Writes take a while, like uploads; counts how many images have writes in flight at once. */
    class SlowSink extends MemorySink {
      constructor(readonly remote: boolean) {
        super();
      }
      private readonly busy = new Map<string, number>();
      maxImages = 0;
      override async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
        const image = key.slice(key.indexOf('/') + 1);
        this.busy.set(image, (this.busy.get(image) ?? 0) + 1);
        this.maxImages = Math.max(this.maxImages, this.busy.size);
        // Long enough that the next image decodes meanwhile, even on a busy machine.
        await new Promise((done) => setTimeout(done, 200));
        await super.write(key, data, options);
        const left = this.busy.get(image)! - 1;
        if (left === 0) this.busy.delete(image);
        else this.busy.set(image, left);
      }
    }
    // A source that reads ahead is a download too: only the local-to-local run keeps one image at a time.
    const source = (readAhead: boolean) => new MemorySource(new Map(Array.from({ length: 6 }, (_, i) => [`p${i}.jpg`, { data: grey, mtimeMs: 1 }])), false, readAhead);
    const local = new SlowSink(false);
    await run(source(false), local, { concurrency: 1 });
    expect(local.maxImages).toBe(1);
    const remote = new SlowSink(true);
    const report = await run(source(false), remote, { concurrency: 1 });
    expect(report.processed).toBe(6);
    expect(remote.maxImages).toBeGreaterThan(1);
  });

  it('reports a folder it cannot read as failed (LOCAL_UNREADABLE, naming it) and processes the files after it', async () => {
    const dir = await makeTempDir();
    for (const file of ['a.jpg', 'b/x.jpg', 'z.jpg']) {
      await mkdir(join(dir, 'in', file, '..'), { recursive: true });
      await copyFile(fixture('cases/grey.jpg'), join(dir, 'in', file));
    }
    const blocked = join(dir, 'in', 'b');
    const fs = { opendir: async (path: string) => (path === blocked ? Promise.reject(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })) : opendir(path)) };
    const source = await LocalSource.open(join(dir, 'in'), [], fs);
    const report = await runPipeline({ sources: [source], sink: new LocalSink(join(dir, 'out')), pipeline: await pipelineFor(), concurrency: 1, collectFiles: true });
    expect(report.error).toBeUndefined();
    expect(report).toMatchObject({ processed: 2, failed: 1 });
    expect(report.files.find((f) => f.status === 'failed')).toMatchObject({ input: blocked, code: 'LOCAL_UNREADABLE', error: expect.stringContaining(blocked) });
    expect(await listOutputFiles(join(dir, 'out'))).toEqual(['.img-pipeline.json', 'medium/a.jpg', 'medium/z.jpg', 'thumb/a.jpg', 'thumb/z.jpg']);
  });

  it('never writes an output onto an input: its own file, or another input of the run (OUTPUT_IS_INPUT)', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'thumb'));
    await mkdir(join(dir, 'photos'));
    await copyFile(fixture('images/landscape.jpg'), join(dir, 'thumb', 'x.jpg'));
    await copyFile(fixture('cases/grey.jpg'), join(dir, 'photos', 'y.jpg'));
    await copyFile(fixture('cases/grey.jpg'), join(dir, 'thumb', 'y.jpg'));
    const before = await hashTree(dir);
    const pipeline = await pipelineFor();
    // `thumb/x.jpg --out .`: its thumbnail would be written over it.
    const own = await runPipeline({ sources: [await LocalSource.open(join(dir, 'thumb', 'x.jpg'))], sink: new LocalSink(dir), pipeline, concurrency: 1, collectFiles: true });
    expect(own).toMatchObject({ processed: 0, failed: 1 });
    expect(own.files[0]).toMatchObject({ input: join(dir, 'thumb', 'x.jpg'), code: 'OUTPUT_IS_INPUT', error: expect.stringMatching(new RegExp(`^its output ${join(dir, 'thumb', 'x.jpg')} is this input itself`)) });
    // `photos thumb/y.jpg --out .`: photos/y.jpg would write ./thumb/y.jpg, the other input.
    const sources = [await LocalSource.open(join(dir, 'photos')), await LocalSource.open(join(dir, 'thumb', 'y.jpg'))];
    const other = await runPipeline({ sources, sink: new LocalSink(dir), pipeline, concurrency: 1, collectFiles: true });
    expect(other.files.find((f) => f.input === join(dir, 'photos', 'y.jpg'))).toMatchObject({ status: 'failed', code: 'OUTPUT_IS_INPUT', error: expect.stringContaining(`onto an input of this run (from ${join(dir, 'thumb', 'y.jpg')})`) });
    // A dry run says so too, and nothing at all was written over an input.
    expect((await runPipeline({ sources: [await LocalSource.open(join(dir, 'thumb', 'x.jpg'))], sink: new LocalSink(dir), pipeline, concurrency: 1, dryRun: true })).failed).toBe(1);
    const after = await hashTree(dir);
    delete after[STATE_KEY];
    expect(after).toEqual(before);
  });

  it('checks a local destination before anything else: a file in its place fails the run at once; a dry run creates nothing', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'out'), 'a file');
    const source = new MemorySource(await files(['a.jpg', 'cases/grey.jpg']));
    const go = async (out: string, dryRun = false) => runPipeline({ sources: [source], sink: new LocalSink(join(dir, out)), pipeline: await pipelineFor(), concurrency: 1, dryRun });
    await expect(go('out')).rejects.toMatchObject({ code: 'LOCAL_OUT_NOT_FOLDER' });
    expect(source.reads).toEqual([]);
    await go('new', true);
    expect(await stat(join(dir, 'new')).catch(() => undefined)).toBeUndefined();
  });

  it('redoes a local source replaced by another file with an older time (cp -p), and only that one', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in'));
    await copyFile(fixture('cases/grey.jpg'), join(dir, 'in', 'a.jpg'));
    await copyFile(fixture('cases/gps.jpg'), join(dir, 'in', 'b.jpg'));
    const go = async () => runPipeline({ sources: [await LocalSource.open(join(dir, 'in'))], sink: new LocalSink(join(dir, 'out')), pipeline: await pipelineFor(), concurrency: 1, collectFiles: true });
    const processed = (report: Awaited<ReturnType<typeof go>>) => report.files.filter((f) => f.status === 'processed').map((f) => f.input.slice(join(dir, 'in').length + 1));
    expect(processed(await go())).toEqual(['a.jpg', 'b.jpg']);
    expect(processed(await go())).toEqual([]);
    // `cp -p` of another photo over a.jpg: different bytes, an mtime older than its outputs.
    await copyFile(fixture('images/landscape.jpg'), join(dir, 'in', 'a.jpg'));
    await utimes(join(dir, 'in', 'a.jpg'), new Date('2020-01-01'), new Date('2020-01-01'));
    expect(processed(await go())).toEqual(['a.jpg']);
    expect((await readMetadata(join(dir, 'out', 'medium', 'a.jpg'))).width).toBe(512);
    expect(processed(await go())).toEqual([]);
  });
});

describe('runPipeline stages: downloads ahead, uploads behind, each within its byte budget', () => {
  /** A remote-like source: reads take `readMs`; it records the bytes being read and every read started. */
  class SlowSource extends MemorySource {
    readMs = 5;
    reading = 0;
    mostReading = 0;
    mostBytesReading = 0;
    bytesReading = 0;
    readonly started: { key: string; bytes: number; at: number }[] = [];
    override async read(entry: SourceEntry): Promise<Buffer> {
      this.started.push({ key: entry.key, bytes: entry.size, at: Date.now() });
      this.reading += 1;
      this.bytesReading += entry.size;
      this.mostReading = Math.max(this.mostReading, this.reading);
      this.mostBytesReading = Math.max(this.mostBytesReading, this.bytesReading);
      await new Promise((done) => setTimeout(done, this.readMs));
      this.reading -= 1;
      this.bytesReading -= entry.size;
      return super.read(entry);
    }
  }
  /** A remote sink whose writes wait until `open()`; records the bytes being written and which images write. */
  class HeldSink extends MemorySink {
    readonly remote = true;
    private opened!: () => void;
    private gate = new Promise<void>((done) => (this.opened = done));
    bytesWriting = 0;
    mostBytesWriting = 0;
    readonly writingImages = new Set<string>();
    mostWritingImages = 0;
    readonly startedWrites: string[] = [];
    open(): void {
      this.opened();
    }
    override async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
      if (key === STATE_KEY) return super.write(key, data, options);
      const image = key.slice(key.indexOf('/') + 1);
      this.startedWrites.push(key);
      this.bytesWriting += data.length;
      this.mostBytesWriting = Math.max(this.mostBytesWriting, this.bytesWriting);
      this.writingImages.add(image);
      this.mostWritingImages = Math.max(this.mostWritingImages, this.writingImages.size);
      await this.gate;
      await super.write(key, data, options);
      this.bytesWriting -= data.length;
      if (![...this.startedWrites].some((k) => k.endsWith(`/${image}`) && !this.objects.has(k))) this.writingImages.delete(image);
    }
  }
  const photos = async (n: number) => {
    const grey = await readFile(fixture('cases/grey.jpg'));
    return { size: grey.length, files: new Map(Array.from({ length: n }, (_, i) => [`p${String(i).padStart(2, '0')}.jpg`, { data: grey, mtimeMs: 1 }])) };
  };
  /** Resolves once `check` has returned the same value for `ms`: the run has stalled where it waits. */
  const quiet = async (check: () => number, ms = 300) => {
    for (let last = -1, since = Date.now(); ; await new Promise((done) => setTimeout(done, 20))) {
      const now = check();
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since >= ms) return;
    }
  };

  it('holds no more input bytes than the budget between download and encode, and no more output bytes than its own', async () => {
    const { size, files: inputs } = await photos(12);
    const source = new SlowSource(inputs);
    const sink = new HeldSink();
    const inputBytes = Math.floor(size * 3.5);
    const running = run(source, sink, { concurrency: 2, transfer: { inputBytes, outputBytes: 1, downloads: 8, uploads: 50 } });
    // The uploads hang: the run fills its stages and stalls.
    await quiet(() => source.started.length);
    // One image's outputs are bigger than the 1-byte output budget: they go through alone.
    expect(sink.mostWritingImages).toBe(1);
    // The rest are downloaded or decoded and wait, within the input budget: the bytes read, less the
    // bytes of images that went on to their uploads, are what the decoders' side holds.
    const readBytes = source.started.reduce((sum, r) => sum + r.bytes, 0);
    const uploading = new Set(sink.startedWrites.map((k) => k.slice(k.indexOf('/') + 1))).size;
    expect(readBytes - uploading * size).toBeLessThanOrEqual(inputBytes);
    // Downloads did run ahead of the two decoders, as far as the budget allows (3 images) and no further.
    expect(source.started.length).toBe(uploading + 3);
    sink.open();
    const report = await running;
    expect(report.processed).toBe(12);
    expect(sink.mostBytesWriting).toBeLessThanOrEqual(Math.max(...[...sink.objects.entries()].filter(([k]) => k.startsWith('thumb/')).map(([k, o]) => o.data.length + sink.objects.get(k.replace('thumb/', 'medium/'))!.data.length)));
  });

  it('downloads within `downloads` requests at once, however much the byte budget allows', async () => {
    const { files: inputs } = await photos(12);
    const source = new SlowSource(inputs);
    source.readMs = 60;
    const sink = new HeldSink();
    sink.open();
    const report = await run(source, sink, { concurrency: 1, transfer: { inputBytes: 1e9, outputBytes: 1e9, downloads: 3, uploads: 4 } });
    expect(report.processed).toBe(12);
    expect(source.mostReading).toBe(3);
  });

  it('still processes an object larger than the whole input budget, one at a time', async () => {
    const { size, files: inputs } = await photos(4);
    const source = new SlowSource(inputs);
    const sink = new HeldSink();
    sink.open();
    const report = await run(source, sink, { concurrency: 2, transfer: { inputBytes: Math.floor(size / 2), outputBytes: 1, downloads: 4, uploads: 4 } });
    expect(report).toMatchObject({ processed: 4, failed: 0 });
    expect(source.mostBytesReading).toBe(size);
  });

  it('on abort, starts nothing new, drains every stage and accounts for every listed file', async () => {
    const { files: inputs } = await photos(20);
    const source = new SlowSource(inputs);
    source.readMs = 30;
    const sink = new HeldSink();
    const controller = new AbortController();
    const events = new EventEmitter<{ event: [RunEvent] }>();
    let found = 0;
    events.on('event', (e) => e.type === 'found' && (found = e.total));
    const running = run(source, sink, { signal: controller.signal, events, concurrency: 2, transfer: { inputBytes: 1e9, outputBytes: 1e9, downloads: 4, uploads: 4 } });
    await quiet(() => sink.startedWrites.length, 200);
    controller.abort();
    const abortedAt = Date.now();
    // The uploads already started are finished, not dropped: no image is left half-written.
    sink.open();
    const report = await running;
    expect(report.interrupted).toBe(true);
    expect(source.started.filter((r) => r.at > abortedAt)).toEqual([]);
    expect(report.processed + report.skipped + report.failed).toBe(found);
    expect(report.failed).toBe(0);
    expect(report.processed).toBeGreaterThan(0);
    expect(report.skipped).toBeGreaterThan(0);
    for (const key of sink.startedWrites) expect(sink.objects.has(key)).toBe(true);
    const written = report.files.filter((f) => f.status === 'processed').flatMap((f) => f.outputs.map((o) => o.path.slice('mem://out/'.length)));
    expect([...sink.objects.keys()].filter((k) => k !== STATE_KEY).sort()).toEqual(written.sort());
  });
});

describe('runPipeline on a remote destination: the lock is read back while the run starts', () => {
  /**
   * A remote sink with a lock: the lock's read-back (its second read) waits until `answer()`, and then
   * shows `foreignToken` when set (another run's write won the race). Records what was read and written.
   */
  class LockingSink extends MemorySink {
    readonly remote: boolean = true;
    readonly events: string[] = [];
    foreignToken: string | undefined;
    private lockReads = 0;
    private answerReadBack!: () => void;
    private readonly readBack = new Promise<void>((resolve) => (this.answerReadBack = resolve));
    answer(): void {
      this.answerReadBack();
    }
    async createExclusive(key: string, data: Buffer): Promise<Stored | false> {
      if (this.objects.has(key)) return false;
      await this.write(key, data, { contentType: 'application/json', metadata: {} });
      return {};
    }
    async remove(key: string): Promise<void> {
      this.objects.delete(key);
    }
    override async readText(key: string): Promise<string | undefined> {
      if (key === LOCK_KEY && ++this.lockReads === 2) {
        await this.readBack;
        this.events.push('lock read back');
        if (this.foreignToken) return JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'now', command: 'the other run', token: this.foreignToken });
      }
      return super.readText(key);
    }
    override async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
      this.events.push(`write ${key}`);
      await super.write(key, data, options);
    }
  }

  class RecordingSource extends MemorySource {
    constructor(files: Map<string, { data: Buffer; mtimeMs: number }>, readonly events: string[]) {
      super(files);
    }
    override async read(entry: SourceEntry): Promise<Buffer> {
      this.events.push(`read ${entry.key}`);
      return super.read(entry);
    }
  }

  it('downloads while the lock is taken and read back, and writes nothing but the lock before it is confirmed', async () => {
    const sink = new LockingSink();
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg'], ['b.jpg', 'cases/grey.jpg']), sink.events);
    const running = run(source, sink);
    await vi.waitFor(() => expect(sink.events).toEqual(expect.arrayContaining(['read a.jpg', 'read b.jpg', `write ${LOCK_KEY}`])));
    expect(sink.events).toHaveLength(3);
    sink.answer();
    const report = await running;
    expect(report).toMatchObject({ processed: 2, failed: 0 });
    expect(sink.events.slice(3, 5)).toEqual(['lock read back', `write ${STATE_KEY}`]);
    expect(sink.objects.has(LOCK_KEY)).toBe(false);
  });

  it('fails as a run that could not start when the read-back shows another run won, having written no output', async () => {
    const sink = new LockingSink();
    sink.foreignToken = 'theirs';
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg'], ['b.jpg', 'cases/grey.jpg']), sink.events);
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const seen: string[] = [];
    events.on('event', (e) => seen.push(e.type));
    const running = run(source, sink, { events });
    const refused = expect(running).rejects.toMatchObject({ code: 'OUT_LOCKED', message: expect.stringContaining('pid 1 on host elsewhere, started now: the other run') });
    await vi.waitFor(() => expect(sink.events).toContain('read a.jpg'));
    sink.answer();
    await refused;
    expect(sink.writes).toEqual([LOCK_KEY]);
    // No file lines or counts before the refusal: the run could not start.
    expect(seen).toEqual([]);
  });

  it('on a local destination, a lock held by another run refuses the run before anything is read', async () => {
    class LocalLockingSink extends LockingSink {
      override readonly remote: boolean = false;
      // A lock that takes a moment to read, as a slow disk's would: long enough for downloads to begin.
      override async readText(key: string): Promise<string | undefined> {
        if (key === LOCK_KEY) await new Promise((resolve) => setTimeout(resolve, 50));
        return super.readText(key);
      }
    }
    const sink = new LocalLockingSink();
    const theirs = JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'then', command: 'the other run', token: 'theirs' });
    sink.objects.set(LOCK_KEY, { data: Buffer.from(theirs), mtimeMs: 1, options: { contentType: 'application/json', metadata: {} } });
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events);
    await expect(run(source, sink)).rejects.toMatchObject({ code: 'OUT_LOCKED' });
    expect(sink.events).toEqual([]);
  });

  it('after a Ctrl-C during the read-back, still writes the state file before the images in flight upload', async () => {
    const sink = new LockingSink();
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events);
    const ctrlC = new AbortController();
    const running = run(source, sink, { signal: ctrlC.signal, concurrency: 1 });
    await vi.waitFor(() => expect(sink.events).toContain('read a.jpg'));
    ctrlC.abort();
    sink.answer();
    const report = await running;
    expect(report.interrupted).toBe(true);
    // The image decoding when Ctrl-C came finished and uploaded, after this run's state.
    expect(report.processed).toBe(1);
    expect(sink.writes).toEqual([LOCK_KEY, STATE_KEY, 'thumb/a.jpg', 'medium/a.jpg']);
  });

  /** A source whose first listing page failed (Source.ready), after `ms`, with a NoSuchBucket. */
  class UnlistableSource extends RecordingSource {
    readonly ready: Promise<void>;
    constructor(files: Map<string, { data: Buffer; mtimeMs: number }>, events: string[], bucket: string, ms = 0) {
      super(files, events);
      this.ready = new Promise((_, reject) => setTimeout(() => reject(new StorageError('S3_NO_SUCH_BUCKET', `NoSuchBucket: the bucket ${bucket} does not exist`)), ms));
      this.ready.catch(() => undefined);
    }
  }

  it('fails as a run that could not start when a source\'s first page fails: its lock, taken meanwhile, is removed, and nothing else is written', async () => {
    const sink = new LockingSink();
    const source = new UnlistableSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events, 'nope', 20);
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const seen: string[] = [];
    events.on('event', (e) => seen.push(e.type));
    const running = run(source, sink, { events });
    const refused = expect(running).rejects.toMatchObject({ code: 'S3_NO_SUCH_BUCKET', message: 'NoSuchBucket: the bucket nope does not exist' });
    sink.answer();
    await refused;
    expect(sink.writes).toEqual([LOCK_KEY]);
    expect(sink.objects.size).toBe(0);
    expect(seen).toEqual([]);
  });

  it('reports a source that cannot be listed rather than the lock of another run, which it leaves as it was', async () => {
    const sink = new LockingSink();
    const theirs = JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'then', command: 'the other run', token: 'theirs' });
    sink.objects.set(LOCK_KEY, { data: Buffer.from(theirs), mtimeMs: 1, options: { contentType: 'application/json', metadata: {} } });
    const source = new UnlistableSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events, 'nope', 50);
    await expect(run(source, sink)).rejects.toMatchObject({ code: 'S3_NO_SUCH_BUCKET' });
    expect(sink.writes).toEqual([]);
    expect(JSON.parse(sink.objects.get(LOCK_KEY)!.data.toString()).token).toBe('theirs');
  });

  it('on a local destination, a source that cannot be listed fails the run before the destination is even made', async () => {
    const out = join(await makeTempDir(), 'out');
    const source = new UnlistableSource(await files(['a.jpg', 'cases/grey.jpg']), [], 'nope', 20);
    await expect(runPipeline({ sources: [source], sink: new LocalSink(out), pipeline: await pipelineFor({}), concurrency: 2 })).rejects.toMatchObject({ code: 'S3_NO_SUCH_BUCKET' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('of several inputs, reports the first in the order given that cannot be listed, whichever failed first; a later one fails the run too', async () => {
    const images = await files(['a.jpg', 'cases/grey.jpg']);
    const pipeline = await pipelineFor({});
    const both = [new UnlistableSource(images, [], 'first', 60), new UnlistableSource(images, [], 'second', 0)];
    await expect(runPipeline({ sources: both, sink: new MemorySink(), pipeline, concurrency: 2 })).rejects.toMatchObject({ message: expect.stringContaining('the bucket first') });
    const sink = new MemorySink();
    const later = [new MemorySource(images), new UnlistableSource(images, [], 'second', 30)];
    await expect(runPipeline({ sources: later, sink, pipeline, concurrency: 2 })).rejects.toMatchObject({ code: 'S3_NO_SUCH_BUCKET', message: expect.stringContaining('the bucket second') });
    expect(sink.writes).toEqual([]);
  });

  it('reads its lock for the release while the last outputs upload, and deletes it once they are written', async () => {
    class SlowUploadSink extends LockingSink {
      private lockReadsSeen = 0;
      private openGate!: () => void;
      private readonly gate = new Promise<void>((resolve) => (this.openGate = resolve));
      open(): void {
        this.openGate();
      }
      override async readText(key: string): Promise<string | undefined> {
        const text = await super.readText(key);
        // The first read looks for a lock, the second is the read-back; the third is the release's.
        if (key === LOCK_KEY && ++this.lockReadsSeen === 3) this.events.push('lock read for release');
        return text;
      }
      override async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
        if (key === LOCK_KEY || key === STATE_KEY) return super.write(key, data, options);
        await this.gate;
        await super.write(key, data, options);
        this.events.push(`written ${key}`);
      }
      override async remove(key: string): Promise<void> {
        this.events.push('lock removed');
        await super.remove(key);
      }
    }
    const sink = new SlowUploadSink();
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events);
    sink.answer();
    const running = run(source, sink, { concurrency: 1 });
    await vi.waitFor(() => expect(sink.events).toContain('lock read for release'), { timeout: 5_000 });
    expect(sink.events.filter((e) => e.startsWith('written'))).toEqual([]);
    sink.open();
    expect(await running).toMatchObject({ processed: 1 });
    expect(sink.events.slice(-3)).toEqual([expect.stringMatching(/^written /), expect.stringMatching(/^written /), 'lock removed']);
    expect(sink.objects.has(LOCK_KEY)).toBe(false);
  });

  it('refuses a destination another live run holds, having written nothing, even with the downloads begun', async () => {
    const sink = new LockingSink();
    const theirs = JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'then', command: 'the other run', token: 'theirs' });
    sink.objects.set(LOCK_KEY, { data: Buffer.from(theirs), mtimeMs: 1, options: { contentType: 'application/json', metadata: {} } });
    const source = new RecordingSource(await files(['a.jpg', 'cases/grey.jpg']), sink.events);
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const seen: string[] = [];
    events.on('event', (e) => seen.push(e.type));
    await expect(run(source, sink, { events })).rejects.toMatchObject({ code: 'OUT_LOCKED', message: expect.stringContaining('the other run') });
    expect(sink.writes).toEqual([]);
    expect(seen).toEqual([]);
    expect(JSON.parse(sink.objects.get(LOCK_KEY)!.data.toString()).token).toBe('theirs');
  });
});
