/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// page.evaluate() callbacks run in the browser, where window and document exist.
import { copyFile, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReportCollector } from '../../src/report/collect.js';
import { renderReport } from '../../src/report/html.js';
import type { FileReport } from '../../src/runner/run-pipeline.js';
import { keepScreenshot, launchChromium, openFile, scrollThrough, type OpenedPage } from '../helpers/browser.js';
import { runCli, spawnCli, waitFor } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';
import { s3Env, startS3Server, TEST_REGION, type S3Server } from '../helpers/s3-server.js';
import { listFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

// Names a page must show as text, never as markup: a tag, quotes, an ANSI escape and a right-to-left override.
const MARKUP_FOLDER = '<script>alert(1)<';
const MARKUP_FILE = 'script> "q" \'s\'.jpg';
const CONTROL_NAME = 'bad \u001b[31mred\u202egpj.jpg';
// Characters a relative URL must encode for the link to reach the file: '#', '%', '?' and a space.
const URL_NAME = 'a #1 100% ?.jpg';

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await removeTempDirs();
});

/** The shipped sample images plus a corrupt one and files whose names carry markup and control characters. */
async function sampleInputs(): Promise<string> {
  const dir = await makeTempDir();
  const files: Record<string, string> = {
    'in/landscape.jpg': 'images/landscape.jpg',
    'in/meadow.webp': 'images/meadow.webp',
    'in/2024/cat.PNG': 'images/2024/cat.PNG',
    'in/2024/portrait.jpg': 'images/2024/portrait.jpg',
    [`in/${MARKUP_FOLDER}/${MARKUP_FILE}`]: 'cases/rotated-exif6.jpg',
    [`in/${URL_NAME}`]: 'cases/transparent.png',
    'in/truncated.jpg': 'bad/truncated.jpg',
    [`in/${CONTROL_NAME}`]: 'bad/not-an-image.jpg',
  };
  for (const [to, from] of Object.entries(files)) {
    await mkdir(join(dir, to, '..'), { recursive: true });
    await copyFile(fixture(from), join(dir, to));
  }
  return dir;
}

interface PageFacts {
  status: string;
  totals: Record<string, string>;
  failed: string[];
  cards: { name: string; dims: string; bytes: string }[];
  images: { src: string; loaded: boolean; lazy: boolean }[];
  scripts: number;
}

/** What a reader sees, read from the rendered DOM after every lazy image has been scrolled into view. */
async function readPage(page: Page): Promise<PageFacts> {
  await scrollThrough(page);
  return page.evaluate(() => {
    const text = (e: Element | null) => e?.textContent ?? '';
    const totals: Record<string, string> = {};
    for (const item of document.querySelectorAll('#totals > div')) totals[text(item.querySelector('dt'))] = text(item.querySelector('dd'));
    return {
      status: text(document.querySelector('#status')),
      totals,
      failed: [...document.querySelectorAll('#failed li')].map(text),
      cards: [...document.querySelectorAll('#images .card')].map((c) => ({ name: text(c.querySelector('.name')), dims: text(c.querySelector('.dims')), bytes: text(c.querySelector('.bytes')) })),
      images: [...document.images].map((i) => ({ src: i.getAttribute('src') ?? '', loaded: i.complete && i.naturalWidth > 0, lazy: i.loading === 'lazy' })),
      scripts: document.scripts.length,
    };
  });
}

/** Nothing was fetched but files and data URIs, nothing was refused by the CSP, and no dialog opened. */
function expectSelfContained(opened: OpenedPage, dialogs: string[]): void {
  expect(opened.requests.filter((url) => !url.startsWith('file:') && !url.startsWith('data:'))).toEqual([]);
  expect(opened.console.filter((m) => /Content Security Policy|Refused/i.test(m))).toEqual([]);
  expect(dialogs).toEqual([]);
}

async function open(file: string): Promise<{ opened: OpenedPage; dialogs: string[] }> {
  const dialogs: string[] = [];
  const opened = await openFile(browser, file);
  opened.page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return { opened, dialogs };
}

describe('--report over local folders, in chromium', () => {
  it('shows every processed image loaded from disk, the failures with their reasons, and the totals', async () => {
    const dir = await sampleInputs();
    const result = await runCli(['in', '--out', 'out', '--report', 'reports/run.html', '--json', '--watermark', '© Acme'], { cwd: dir });
    expect(result.code).toBe(1);
    const json = JSON.parse(result.stdout) as { processed: number; failed: number };
    expect(json).toMatchObject({ processed: 6, failed: 2 });
    // Written whole: no temp file beside it.
    expect(await readdir(join(dir, 'reports'))).toEqual(['run.html']);

    const { opened, dialogs } = await open(join(dir, 'reports/run.html'));
    const facts = await readPage(opened.page);
    await keepScreenshot(opened.page, 'report-local.png');
    expectSelfContained(opened, dialogs);
    expect(facts.scripts).toBe(0);
    expect(facts.status).toBe('Finished with 2 failed files.');
    expect(facts.totals).toMatchObject({ Processed: '6', Skipped: '0', Failed: '2' });
    expect(facts.totals['Saving']).toMatch(/^\d+% smaller$/);
    expect(facts.totals['Elapsed']).toMatch(/^\d+(\.\d)? m?s$/);

    expect(facts.cards.map((c) => c.name).sort()).toEqual(['2024/cat.PNG', '2024/portrait.jpg', `${MARKUP_FOLDER}/${MARKUP_FILE}`, URL_NAME, 'landscape.jpg', 'meadow.webp'].sort());
    // Oriented dimensions: the EXIF-6 fixture is stored landscape and shown portrait.
    const rotated = facts.cards.find((c) => c.name.startsWith(MARKUP_FOLDER))!;
    const meta = await sharp(fixture('cases/rotated-exif6.jpg')).metadata();
    expect(rotated.dims).toBe(`${meta.height}×${meta.width}`);
    expect(facts.cards.find((c) => c.name === 'landscape.jpg')!.bytes).toMatch(/^\d+(\.\d)? KB → \d+(\.\d)? KB in 2 outputs \(\d+% smaller\)$/);

    // Every thumbnail is a relative link that the browser could load, lazily.
    expect(facts.images).toHaveLength(6);
    for (const image of facts.images) {
      expect(image, image.src).toMatchObject({ loaded: true, lazy: true });
      expect(image.src).toMatch(/^\.\.\/out\/medium\//);
    }

    expect(facts.failed).toHaveLength(2);
    expect(facts.failed).toContainEqual(expect.stringMatching(/^truncated\.jpg: corrupt or truncated jpeg: .+ INPUT_CORRUPT$/));
    // The ANSI escape and the override are shown as escapes, not acted on.
    expect(facts.failed).toContainEqual(expect.stringMatching(/^bad \\u001b\[31mred\\u202egpj\.jpg: not a readable image .+ INPUT_NOT_IMAGE$/));
  });

  it('links each thumbnail to the largest output, a link that opens from disk', async () => {
    const dir = await sampleInputs();
    await runCli(['in', '--out', 'out', '--report', 'run.html', '--sizes', 'small=64x64,big=300x300,huge=800x800'], { cwd: dir });
    const { opened } = await open(join(dir, 'run.html'));
    const links = await opened.page.evaluate(() => [...document.querySelectorAll('#images a')].map((a) => ({ href: a.getAttribute('href'), img: a.querySelector('img')?.getAttribute('src') })));
    expect(links).toHaveLength(6);
    // The grid shows the smallest variant that fills its 200 px box; a click opens the largest.
    for (const link of links) {
      expect(link.img).toMatch(/^out\/big\//);
      expect(link.href).toMatch(/^out\/huge\//);
    }
    const odd = links.find((l) => l.href!.includes('%23'))!;
    expect(odd.href).toBe(`out/huge/${encodeURIComponent('a #1 100% ?')}.jpg`);
    await opened.page.click(`a[href="${odd.href}"]`);
    await opened.page.waitForLoadState();
    expect(await opened.page.evaluate(() => (document.images[0]?.naturalWidth ?? 0) > 0)).toBe(true);
  });

  it('is written when Ctrl-C stops the run, and says so', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in'));
    const data = await readFile(fixture('images/landscape.jpg'));
    await Promise.all(Array.from({ length: 12 }, (_, i) => writeFile(join(dir, 'in', `p${String(i).padStart(2, '0')}.jpg`), data)));
    // AVIF encoding is slow (~0.4 s a file), so the run is far from done when the signal lands.
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '1', '-f', 'avif', '--report', 'run.html'], { cwd: dir });
    await waitFor(async () => (await listFiles(join(dir, 'out'))).some((f) => f.endsWith('.avif') && !f.split('/').pop()!.startsWith('.')));
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    const processed = Number(/Interrupted: (\d+) processed/.exec(result.stderr)![1]);
    expect(processed).toBeGreaterThan(0);
    expect(processed).toBeLessThan(12);

    const { opened } = await open(join(dir, 'run.html'));
    const facts = await readPage(opened.page);
    expect(facts.status).toMatch(/^Interrupted \(Ctrl-C\)/);
    expect(facts.totals['Processed']).toBe(String(processed));
    expect(facts.cards).toHaveLength(processed);
    expect(facts.images.every((i) => i.loaded)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['in', 'out', 'run.html']);
  });

  it('says why when the run could not start, and exits as it would without --report', async () => {
    const dir = await makeTempDir();
    const result = await runCli(['missing', '--out', 'out', '--report', 'run.html'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^img-pipeline: .*missing/);
    const { opened } = await open(join(dir, 'run.html'));
    const facts = await readPage(opened.page);
    expect(facts.status).toMatch(/^Stopped: .*missing/);
    expect(facts.totals).toMatchObject({ Processed: '0', Failed: '0' });
  });

  it('refuses a report path that cannot be a page before anything runs', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in'));
    await copyFile(fixture('cases/grey.jpg'), join(dir, 'in/a.jpg'));
    for (const [path, message] of [
      ['s3://bucket/run.html', /--report: expected a local file such as report\.html, received "s3:\/\/bucket\/run\.html"/],
      ['in', /--report: .*\/in is a folder; name a file in it, such as .*\/in\/report\.html/],
      ['in/a.jpg', /--report: "in\/a\.jpg" names an image; the report is an HTML page/],
      ['in/a.jpg/run.html', /--report: cannot write .*in\/a\.jpg\/run\.html: .*in\/a\.jpg is an existing file, not a folder$/m],
    ] as const) {
      const result = await runCli(['in', '--out', 'out', '--report', path], { cwd: dir });
      expect(result.code, path).toBe(2);
      expect(result.stderr, path).toMatch(message);
    }
    expect((await readdir(dir)).sort()).toEqual(['in']);
    expect(await readdir(join(dir, 'in'))).toEqual(['a.jpg']);
  });
});

describe('--report with S3 outputs, in chromium', () => {
  let server: S3Server;

  beforeAll(async () => {
    server = await startS3Server(['processed']);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('embeds small previews as data URIs, since s3:// outputs cannot be linked from a page', async () => {
    const dir = await sampleInputs();
    const result = await runCli(['in', '--out', 's3://processed/run/', '--report', 'run.html', '--endpoint', server.endpoint, '--region', TEST_REGION], { cwd: dir, env: s3Env() });
    expect(result.code, result.stderr).toBe(1);
    const { opened, dialogs } = await open(join(dir, 'run.html'));
    const facts = await readPage(opened.page);
    await keepScreenshot(opened.page, 'report-s3.png');
    expectSelfContained(opened, dialogs);
    expect(facts.totals).toMatchObject({ Processed: '6', Failed: '2' });
    expect(facts.totals['Transferred']).toMatch(/ KB$/);
    expect(facts.images).toHaveLength(6);
    for (const image of facts.images) {
      expect(image.src).toMatch(/^data:image\/webp;base64,/);
      expect(image.loaded).toBe(true);
    }
    // Small: each preview is at most 160 px, shown in the 200 px box.
    const sizes = await opened.page.evaluate(() => [...document.images].map((i) => Math.max(i.naturalWidth, i.naturalHeight)));
    for (const side of sizes) expect(side).toBeLessThanOrEqual(160);
  });
});

describe('a report of 5,000 images, in chromium', () => {
  it('stays small, loads thumbnails only as they scroll into view, and loads the last ones at the end', async () => {
    const dir = await makeTempDir();
    // One real thumbnail behind 5,000 names: the browser loads each name as its own file.
    await mkdir(join(dir, 'out/medium'), { recursive: true });
    const thumb = join(dir, 'thumb.jpg');
    await sharp(fixture('images/landscape.jpg')).resize(200).jpeg().toFile(thumb);
    const n = 5000;
    const names = Array.from({ length: n }, (_, i) => `p${String(i).padStart(4, '0')}.jpg`);
    await Promise.all(names.map((name) => symlink(thumb, join(dir, 'out/medium', name))));

    const reportPath = join(dir, 'report.html');
    const collector = createReportCollector({ reportPath, inputs: [join(dir, 'in')], out: join(dir, 'out'), dryRun: false, config: { sizes: { thumb: { width: 128, height: 128, fit: 'inside', position: 'center' }, medium: { width: 512, height: 512, fit: 'inside', position: 'center' } }, formats: ['jpeg'] }, linkOutputs: true, startedAt: new Date() });
    for (const name of names) {
      const file: FileReport = {
        input: join(dir, 'in', name), status: 'processed', bytesIn: 150_000, width: 1200, height: 800,
        outputs: [
          { variant: 'thumb', format: 'jpeg', path: join(dir, 'out/thumb', name), width: 128, height: 85, bytes: 4000 },
          { variant: 'medium', format: 'jpeg', path: join(dir, 'out/medium', name), width: 200, height: 133, bytes: 20_000 },
        ],
      };
      collector.add({ type: 'file', file });
    }
    const html = renderReport(await collector.finish({ processed: n, skipped: 0, failed: 0, planned: 0, bytesIn: n * 150_000, bytesOut: n * 24_000, elapsedMs: 120_000, interrupted: false, files: [] }));
    await writeFile(reportPath, html);
    // About 400 bytes of markup a card.
    expect(Buffer.byteLength(html)).toBeLessThan(n * 500);

    const started = Date.now();
    const { opened } = await open(reportPath);
    const page = opened.page;
    const openMs = Date.now() - started;
    const loaded = () => page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length);
    await page.waitForFunction(() => document.images[0]!.complete);
    expect(await page.evaluate(() => document.images.length)).toBe(n);
    // Lazy: a screenful and the margin chromium loads ahead, not 5,000.
    const atTop = await loaded();
    expect(atTop).toBeGreaterThan(0);
    expect(atTop).toBeLessThan(300);
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForFunction(() => document.images[document.images.length - 1]!.complete && document.images[document.images.length - 1]!.naturalWidth > 0, undefined, { timeout: 20_000 });
    expect(await loaded()).toBeLessThan(600);
    await keepScreenshot(page, 'report-5000-top.png', false);
    // For the record (not asserted: the machine is shared): how long the page took to open.
    console.log(`5,000-image report: ${(Buffer.byteLength(html) / 1024 / 1024).toFixed(2)} MB, opened in ${openMs} ms, ${atTop} thumbnails loaded at the top`);
  });

  it('with S3 outputs embeds previews up to its byte budget, says how many it left out, and still opens', async () => {
    const dir = await makeTempDir();
    const n = 5000;
    // A textured preview, about as large as a real photo's (pure colour would compress to nothing).
    const noise = Buffer.from(Array.from({ length: 160 * 106 * 3 }, (_, i) => (i * 2654435761) % 251));
    const bytes = await sharp(noise, { raw: { width: 160, height: 106, channels: 3 } }).blur(0.8).webp({ quality: 45 }).toBuffer();
    const preview = { mime: 'image/webp', data: bytes, width: 160, height: 106 };
    const reportPath = join(dir, 'report.html');
    const collector = createReportCollector({ reportPath, inputs: ['s3://in/'], out: 's3://out/', dryRun: false, config: { sizes: { medium: { width: 512, height: 512, fit: 'inside', position: 'center' } }, formats: ['jpeg'] }, linkOutputs: false, makePreview: async () => preview, startedAt: new Date() });
    const sink = collector.wrapSink({ uri: 's3://out/', remote: true, list: async function* () {}, readText: async () => undefined, write: async () => undefined, uriOf: (key: string) => `s3://out/${key}` });
    for (let i = 0; i < n; i += 1) {
      await sink.write(`medium/p${i}.jpg`, bytes, { contentType: 'image/jpeg', metadata: {} });
      collector.add({ type: 'file', file: { input: `s3://in/p${i}.jpg`, status: 'processed', bytesIn: 150_000, width: 1200, height: 800, outputs: [{ variant: 'medium', format: 'jpeg', path: `s3://out/medium/p${i}.jpg`, width: 512, height: 341, bytes: 20_000 }] } });
    }
    const data = await collector.finish({ processed: n, skipped: 0, failed: 0, planned: 0, bytesIn: n * 150_000, bytesOut: n * 20_000, elapsedMs: 120_000, interrupted: false, files: [] });
    const html = renderReport(data);
    await writeFile(reportPath, html);
    expect(data.thumbnailsDropped).toBeGreaterThan(0);
    expect(Buffer.byteLength(html)).toBeLessThan(data.embedBudgetBytes + n * 500);

    const started = Date.now();
    const { opened } = await open(reportPath);
    const openMs = Date.now() - started;
    const page = opened.page;
    await page.waitForFunction(() => document.images[0]!.complete);
    expect(await page.evaluate(() => document.images.length)).toBe(n - data.thumbnailsDropped);
    expect(await page.evaluate(() => document.images[0]!.naturalWidth)).toBe(160);
    expect(await page.textContent('#thumbnails-note')).toMatch(/^[\d,]+ images are shown without a thumbnail: this page embeds at most 8\.0 MB of thumbnails/);
    console.log(`5,000-image S3 report: ${(Buffer.byteLength(html) / 1024 / 1024).toFixed(2)} MB, ${n - data.thumbnailsDropped} previews embedded (${bytes.length} B each), opened in ${openMs} ms`);
  });
});
