import { EventEmitter } from 'node:events';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema.js';
import { makePreview } from '../../../src/pipeline/preview.js';
import { createReportCollector, nameUnder, relativeUrl, type CollectOptions } from '../../../src/report/collect.js';
import { renderReport } from '../../../src/report/html.js';
import { runPipeline, type FileReport, type RunEvent, type RunReport } from '../../../src/runner/run-pipeline.js';
import { LocalSource } from '../../../src/storage/local.js';
import type { Sink, SinkEntry, WriteOptions } from '../../../src/storage/types.js';
import { fixture } from '../../helpers/paths.js';
import { pipelineFor } from '../../helpers/pipeline.js';

const SIZES: Config['sizes'] = {
  thumb: { width: 128, height: 128, fit: 'inside', position: 'center' },
  medium: { width: 512, height: 512, fit: 'inside', position: 'center' },
  large: { width: 1024, height: 1024, fit: 'inside', position: 'center' },
};

const options = (over: Partial<CollectOptions> = {}): CollectOptions => ({
  reportPath: '/work/reports/run.html', inputs: ['/work/in'], out: '/work/out', dryRun: false,
  config: { sizes: SIZES, formats: ['webp', 'jpeg'] }, linkOutputs: true, startedAt: new Date(0), ...over,
});

const runReport = (over: Partial<RunReport> = {}): RunReport => ({ processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 10, interrupted: false, files: [], ...over });

function processedFile(name: string, out = '/work/out'): FileReport {
  const outputs = Object.entries(SIZES).flatMap(([variant, s]) => (['webp', 'jpeg'] as const).map((format) => ({ variant, format, path: `${out}/${variant}/${name}.${format === 'jpeg' ? 'jpg' : 'webp'}`, width: s.width, height: s.height / 2, bytes: 1000 })));
  return { input: `/work/in/${name}.png`, status: 'processed', bytesIn: 50_000, width: 2048, height: 1024, outputs };
}

const fileEvent = (file: FileReport): RunEvent => ({ type: 'file', file });

/** An S3-like destination: remote, with a byte counter read after the run. */
class RemoteSink implements Sink {
  readonly uri = 's3://out/';
  readonly remote = true;
  readonly written = new Map<string, Buffer>();
  get bytesTransferred(): number {
    return [...this.written.values()].reduce((sum, b) => sum + b.length, 0);
  }
  async *list(): AsyncIterable<SinkEntry> {}
  async readText(): Promise<string | undefined> {
    return undefined;
  }
  async write(key: string, data: Buffer, _options: WriteOptions): Promise<void> {
    this.written.set(key, data);
  }
  uriOf(key: string): string {
    return `s3://out/${key}`;
  }
}

describe('relativeUrl / nameUnder', () => {
  it('links a file from the report folder, encoding what a URL would misread', () => {
    expect(relativeUrl('/work/reports', '/work/out/medium/a #1 100% ?.jpg')).toBe('../out/medium/a%20%231%20100%25%20%3F.jpg');
    expect(relativeUrl('/work', '/work/out/medium/<x>"y".jpg')).toBe('out/medium/%3Cx%3E%22y%22.jpg');
    expect(relativeUrl('/work', '/work/out/medium/javascript:alert(1).jpg')).toBe('out/medium/javascript%3Aalert(1).jpg');
  });

  it('names a file by its path under the input it came from', () => {
    expect(nameUnder('/work/in/2024/cat.png', ['/other', '/work/in'])).toBe('2024/cat.png');
    expect(nameUnder('/work/in/cat.png', ['/work/in/cat.png'])).toBe('cat.png');
    expect(nameUnder('s3://b/up/2024/cat.png', ['s3://b/up/'])).toBe('2024/cat.png');
    expect(nameUnder('s3://b/up/cat.png', ['s3://b/up'])).toBe('cat.png');
    expect(nameUnder('/work/input/cat.png', ['/work/in'])).toBe('/work/input/cat.png');
  });
});

describe('createReportCollector with local outputs', () => {
  it('shows the smallest variant that fills the thumbnail box, in the first format, and links the largest', async () => {
    const collector = createReportCollector(options());
    collector.add(fileEvent(processedFile('2024/cat')));
    const data = await collector.finish(runReport({ processed: 1 }));
    expect(data.processed).toEqual([{
      input: '/work/in/2024/cat.png', name: '2024/cat.png', width: 2048, height: 1024, bytesIn: 50_000, bytesOut: 6000, outputs: 6,
      thumb: { src: '../out/medium/2024/cat.webp', width: 512, height: 256 },
      href: '../out/large/2024/cat.webp',
    }]);
  });

  it('shows the largest variant when none fills the box', async () => {
    const sizes = { a: { width: 64, height: 64, fit: 'inside', position: 'center' }, b: { width: 150, height: 100, fit: 'inside', position: 'center' } } as const;
    const collector = createReportCollector(options({ config: { sizes, formats: ['jpeg'] } }));
    const file: FileReport = { ...processedFile('x'), outputs: [{ variant: 'a', format: 'jpeg', path: '/work/out/a/x.jpg', width: 64, height: 32, bytes: 1 }, { variant: 'b', format: 'jpeg', path: '/work/out/b/x.jpg', width: 150, height: 75, bytes: 1 }] };
    collector.add(fileEvent(file));
    expect((await collector.finish(runReport())).processed[0]!.thumb!.src).toBe('../out/b/x.jpg');
  });

  it('lists failures with reason and code, skipped and planned files, each list capped with a count of the rest', async () => {
    const collector = createReportCollector(options({ limits: { maxListed: 2, maxReasonChars: 21 } }));
    for (let i = 0; i < 3; i += 1) collector.add(fileEvent(processedFile(`p${i}`)));
    for (let i = 0; i < 5; i += 1) collector.add(fileEvent({ input: `/work/in/bad${i}.jpg`, status: 'failed', error: `corrupt or truncated jpeg number ${i}`, code: 'INPUT_CORRUPT', bytesIn: 1, outputs: [] }));
    collector.add(fileEvent({ input: '/work/in/old.jpg', status: 'skipped', reason: 'up to date', bytesIn: 1, outputs: [] }));
    collector.add(fileEvent({ input: '/work/in/new.jpg', status: 'planned', bytesIn: 1, outputs: [{ variant: 'thumb', format: 'jpeg', path: '/work/out/thumb/new.jpg' }] }));
    const data = await collector.finish(runReport());
    expect(data.processed.map((p) => p.name)).toEqual(['p0.png', 'p1.png']);
    expect(data.failed).toEqual([
      { input: '/work/in/bad0.jpg', name: 'bad0.jpg', reason: 'corrupt or truncated…', code: 'INPUT_CORRUPT' },
      { input: '/work/in/bad1.jpg', name: 'bad1.jpg', reason: 'corrupt or truncated…', code: 'INPUT_CORRUPT' },
    ]);
    expect(data.skipped).toEqual([{ input: '/work/in/old.jpg', name: 'old.jpg', reason: 'up to date' }]);
    expect(data.planned).toEqual([{ input: '/work/in/new.jpg', name: 'new.jpg', reason: 'would write 1 output' }]);
    expect(data.omitted).toEqual({ processed: 1, failed: 3, skipped: 0, planned: 0 });
  });

  it('reports a run that never started: zero counts and the reason', async () => {
    const collector = createReportCollector(options({ config: undefined, startedAt: new Date(Date.now() - 50) }));
    const data = await collector.finish(undefined, 'input not found: /work/missing');
    expect(data.error).toBe('input not found: /work/missing');
    expect(data.totals).toMatchObject({ processed: 0, failed: 0, interrupted: false });
    expect(data.totals.elapsedMs).toBeGreaterThanOrEqual(50);
  });

  it('leaves a local sink as it is: nothing to keep in memory', () => {
    const sink = new RemoteSink();
    expect(createReportCollector(options()).wrapSink(sink)).toBe(sink);
  });
});

describe('createReportCollector with S3 outputs', () => {
  it('embeds previews of what the run wrote, through a sink that still behaves as the one it wraps', async () => {
    const remote = new RemoteSink();
    const config = { sizes: { thumb: SIZES['thumb']!, medium: SIZES['medium']! }, formats: ['jpeg' as const] };
    const collector = createReportCollector(options({ linkOutputs: false, out: remote.uri, reportPath: '/work/run.html', inputs: [fixture('images')], config }));
    const sink = collector.wrapSink(remote);
    expect(sink.remote).toBe(true);
    expect(sink.readTextEntry).toBeUndefined();
    const events = new EventEmitter<{ event: [RunEvent] }>();
    events.on('event', (e) => collector.add(e));
    const report = await runPipeline({ sources: [await LocalSource.open(fixture('images'), [])], sink, pipeline: await pipelineFor(config), concurrency: 2, events });
    expect(report.processed).toBe(4);
    // A getter, read through the wrapper after the run: the bytes written so far, not those at wrapping time.
    expect(sink.bytesTransferred).toBe(remote.bytesTransferred);
    expect(sink.bytesTransferred).toBeGreaterThan(0);

    const data = await collector.finish(report);
    expect(data.processed.map((p) => p.name).sort()).toEqual(['2024/cat.PNG', '2024/portrait.jpg', 'landscape.jpg', 'meadow.webp']);
    for (const image of data.processed) {
      expect(image.href).toBeUndefined();
      const src = image.thumb!.src;
      expect(src).toMatch(/^data:image\/webp;base64,/);
      const meta = await sharp(Buffer.from(src.slice(src.indexOf(',') + 1), 'base64')).metadata();
      expect(meta).toMatchObject({ format: 'webp', width: image.thumb!.width, height: image.thumb!.height });
      expect(Math.max(meta.width, meta.height)).toBe(160);
    }
    expect(data.thumbnailsDropped).toBe(0);
  });

  it('stops embedding when the byte budget is spent, and counts the images left without a thumbnail', async () => {
    const remote = new RemoteSink();
    const preview = { mime: 'image/webp', data: Buffer.alloc(3000), width: 200, height: 133 };
    const budget = 4 * 1024 * 1024;
    const collector = createReportCollector(options({ linkOutputs: false, out: remote.uri, makePreview: async () => preview, limits: { embedBudgetBytes: budget } }));
    const sink = collector.wrapSink(remote);
    const n = 5000;
    for (let i = 0; i < n; i += 1) {
      const file = processedFile(`p${i}`, 's3://out');
      for (const o of file.outputs) await sink.write(o.path.slice('s3://out/'.length), Buffer.alloc(10), { contentType: o.format === 'webp' ? 'image/webp' : 'image/jpeg', metadata: {} });
      collector.add(fileEvent(file));
    }
    const data = await collector.finish(runReport({ processed: n }));
    const embedded = data.processed.filter((p) => p.thumb).map((p) => p.thumb!.src.length);
    const total = embedded.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(budget);
    expect(total).toBeGreaterThan(budget - 4100);
    expect(embedded.length + data.thumbnailsDropped).toBe(n);
    const html = renderReport(data);
    // The page: the budget plus about 400 bytes of markup a card.
    expect(Buffer.byteLength(html)).toBeLessThan(budget + n * 500);
    expect(html).toContain(`${data.thumbnailsDropped.toLocaleString('en-US')} images are shown without a thumbnail`);
  });

  it('leaves out a thumbnail whose preview cannot be made, and goes on', async () => {
    const remote = new RemoteSink();
    const collector = createReportCollector(options({ linkOutputs: false, out: remote.uri }));
    const sink = collector.wrapSink(remote);
    const file = processedFile('p', 's3://out');
    await sink.write('medium/p.webp', Buffer.from('not an image'), { contentType: 'image/webp', metadata: {} });
    collector.add(fileEvent(file));
    const data = await collector.finish(runReport({ processed: 1 }));
    expect(data.processed[0]!.thumb).toBeUndefined();
    expect(data.thumbnailsDropped).toBe(0);
  });
});

describe('makePreview', () => {
  it('makes a small WebP that fits the box, never larger than its source', async () => {
    const big = await makePreview(await sharp(fixture('images/2024/portrait.jpg')).toBuffer(), 200);
    expect(big).toMatchObject({ mime: 'image/webp', width: 150, height: 200 });
    const small = await makePreview(await sharp({ create: { width: 40, height: 30, channels: 3, background: '#808080' } }).png().toBuffer(), 200);
    expect(small).toMatchObject({ width: 40, height: 30 });
  });
});
