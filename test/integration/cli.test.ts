import { chmod, copyFile, mkdir, readFile, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { canRunUnprivileged, runCli, spawnCli, waitFor } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';
import { colourDistance, differingBox, meanColour, readMetadata, readPixels, type Rgb } from '../helpers/pixels.js';
import { FOLDER_MARKER, hashTree, listFiles as listAllFiles, listOutputFiles as listFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

afterAll(removeTempDirs);

const ANSI = /\u001b\[/;
const GREY: Rgb = [128, 128, 128];
const TEMP_NAME = /(^|\/)\.[^/]+\.[0-9a-f]{12}\.tmp$/;

/** A temp working dir holding copies of the named fixtures, under `in/` (keys relative to fixtures/). */
async function workspace(files: Record<string, string> = {}): Promise<string> {
  const dir = await makeTempDir();
  for (const [to, from] of Object.entries(files)) {
    await mkdir(join(dir, to, '..'), { recursive: true });
    await copyFile(fixture(from), join(dir, to));
  }
  return dir;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/** Every output that is not hidden decodes completely; hidden leftovers are only our temp files or the state file. */
async function expectOnlyCompleteImages(out: string, allowTemps: boolean): Promise<string[]> {
  const files = await listFiles(out);
  const visible = files.filter((f) => !f.split('/').some((part) => part.startsWith('.')));
  for (const file of visible) {
    await expect(sharp(join(out, file), { failOn: 'truncated' }).raw().toBuffer(), file).resolves.toBeInstanceOf(Buffer);
  }
  const hidden = files.filter((f) => !visible.includes(f) && f !== '.img-pipeline.json');
  // A run killed outright leaves its lock too, which the next run takes over.
  if (allowTemps) for (const f of hidden.filter((h) => h !== '.img-pipeline.lock')) expect(f).toMatch(TEMP_NAME);
  else expect(hidden).toEqual([]);
  return visible;
}

describe('img-pipeline run over local folders', () => {
  it('processes a folder into <out>/<variant>/<relative path>.jpg, exit 0, plain lines, inputs untouched', async () => {
    const dir = await workspace({ 'photos/2024/cat.PNG': 'images/2024/cat.PNG', 'photos/2024/portrait.jpg': 'images/2024/portrait.jpg', 'photos/landscape.jpg': 'images/landscape.jpg', 'photos/notes.txt': 'bad/not-an-image.jpg' });
    const before = await hashTree(join(dir, 'photos'));
    const result = await runCli(['photos', '--out', 'processed'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(await listFiles(join(dir, 'processed'))).toEqual([
      '.img-pipeline.json',
      'medium/2024/cat.jpg', 'medium/2024/portrait.jpg', 'medium/landscape.jpg',
      'thumb/2024/cat.jpg', 'thumb/2024/portrait.jpg', 'thumb/landscape.jpg',
    ]);
    const thumb = await readMetadata(join(dir, 'processed/thumb/2024/cat.jpg'));
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['jpeg', 128, 96]);
    const medium = await readMetadata(join(dir, 'processed/medium/landscape.jpg'));
    expect([medium.width, medium.height]).toEqual([512, 341]);
    // Not a TTY: plain lines naming each file, a summary, and no escape codes anywhere.
    expect(result.stderr).toMatch(/processed .*photos\/2024\/cat\.PNG/);
    expect(result.stderr).toMatch(/3 processed, 0 skipped, 0 failed in .*; .* in -> .* out \(\d+% smaller\)\./);
    expect(result.stdout + result.stderr).not.toMatch(ANSI);
    expect(await hashTree(join(dir, 'photos'))).toEqual(before);
    await expectOnlyCompleteImages(join(dir, 'processed'), false);
  });

  it('accepts the explicit run command; --quiet drops the per-file lines but keeps failures and the summary', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b.jpg': 'bad/empty.jpg' });
    const result = await runCli(['run', 'in', '--out', 'out', '--quiet'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^failed .*in\/b\.jpg: empty/), expect.stringMatching(/^1 processed, 0 skipped, 1 failed/)]);
    expect(result.stdout).toBe('');
  });

  it('defaults --out to ./processed', async () => {
    const dir = await workspace({ 'a.jpg': 'cases/grey.jpg' });
    expect((await runCli(['a.jpg'], { cwd: dir })).code).toBe(0);
    expect(await listFiles(join(dir, 'processed'))).toEqual(['.img-pipeline.json', 'medium/a.jpg', 'thumb/a.jpg']);
  });

  it('maps a single file to <out>/<variant>/<name>.<ext>, in every format and custom sizes, never enlarged', async () => {
    // A small PNG keeps the AVIF encodes cheap.
    const dir = await workspace({ 'deep/photo.PNG': 'images/2024/cat.PNG' });
    const result = await runCli(['deep/photo.PNG', '--out', 'out', '--format', 'jpeg,png,webp,avif', '--sizes', 'small=64x64,large=256x256,huge=1024x1024'], { cwd: dir });
    expect(result.code).toBe(0);
    const expected = ['small', 'large', 'huge'].flatMap((v) => ['jpg', 'png', 'webp', 'avif'].map((ext) => `${v}/photo.${ext}`)).sort();
    expect((await listFiles(join(dir, 'out'))).filter((f) => !f.startsWith('.'))).toEqual(expected);
    const detected = { jpg: 'jpeg', png: 'png', webp: 'webp', avif: 'heif' } as const;
    for (const [ext, format] of Object.entries(detected)) {
      expect((await readMetadata(join(dir, `out/small/photo.${ext}`))).format).toBe(format);
      const large = await readMetadata(join(dir, `out/large/photo.${ext}`));
      expect([large.width, large.height]).toEqual([256, 192]);
      const huge = await readMetadata(join(dir, `out/huge/photo.${ext}`));
      expect([huge.width, huge.height]).toEqual([320, 240]);
    }
  });

  it('crops to the exact box with --fit cover', async () => {
    const dir = await workspace({ 'in/l.jpg': 'images/landscape.jpg', 'in/p.jpg': 'images/2024/portrait.jpg' });
    expect((await runCli(['in', '--out', 'out', '--fit', 'cover', '--sizes', 'sq=100x100,banner=300x100'], { cwd: dir })).code).toBe(0);
    for (const name of ['l', 'p']) {
      const sq = await readMetadata(join(dir, `out/sq/${name}.jpg`));
      expect([sq.width, sq.height]).toEqual([100, 100]);
      const banner = await readMetadata(join(dir, `out/banner/${name}.jpg`));
      expect([banner.width, banner.height]).toEqual([300, 100]);
    }
  });
});

describe('correctness of the outputs', () => {
  it('watermarks thumb and medium in the bottom-right, legibly on the 128 px thumb', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    expect((await runCli(['in', '--out', 'out', '--watermark', '© Acme'], { cwd: dir })).code).toBe(0);
    for (const variant of ['thumb', 'medium']) {
      const px = await readPixels(join(dir, `out/${variant}/grey.jpg`));
      const corner = differingBox({ ...px, at: (x, y) => (x >= px.width / 2 && y >= px.height / 2 ? px.at(x, y) : [...GREY]) }, GREY, 24);
      expect(corner, variant).toBeDefined();
      expect(colourDistance(meanColour(px, 0, 0, px.width / 2, px.height / 2), GREY), variant).toBeLessThanOrEqual(2);
      if (variant === 'thumb') expect(corner!.height).toBeGreaterThanOrEqual(11);
    }
  });

  it('reads img-pipeline.config.json from cwd (its watermark applies), and --no-watermark overrides it', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    await writeFile(join(dir, 'img-pipeline.config.json'), JSON.stringify({ watermark: { text: 'Config mark' } }));
    expect((await runCli(['in', '--out', 'with'], { cwd: dir })).code).toBe(0);
    expect(differingBox(await readPixels(join(dir, 'with/thumb/grey.jpg')), GREY, 24)).toBeDefined();
    expect((await runCli(['in', '--out', 'without', '--no-watermark'], { cwd: dir })).code).toBe(0);
    for (const variant of ['thumb', 'medium']) expect(differingBox(await readPixels(join(dir, `without/${variant}/grey.jpg`)), GREY, 6), variant).toBeUndefined();
  });

  it('turns an EXIF-rotated photo upright, flattens transparency, strips GPS and converts CMYK, in one run', async () => {
    const dir = await workspace({ 'in/rotated-exif6.jpg': 'cases/rotated-exif6.jpg', 'in/transparent.png': 'cases/transparent.png', 'in/gps.jpg': 'cases/gps.jpg', 'in/cmyk.jpg': 'cases/cmyk.jpg' });
    expect((await runCli(['in', '--out', 'out', '-f', 'jpeg,png,webp'], { cwd: dir })).code).toBe(0);

    const rotated = await readPixels(join(dir, 'out/medium/rotated-exif6.jpg'));
    expect([rotated.width, rotated.height]).toEqual([150, 300]);
    expect(colourDistance(meanColour(rotated, 0, 0, 150, 120), [220, 20, 20])).toBeLessThan(30);
    expect(colourDistance(meanColour(rotated, 0, 180, 150, 300), [20, 20, 220])).toBeLessThan(30);
    const rotatedThumb = await readMetadata(join(dir, 'out/thumb/rotated-exif6.jpg'));
    expect(rotatedThumb.height! / rotatedThumb.width!).toBeCloseTo(2, 1);

    const flat = await readPixels(join(dir, 'out/thumb/transparent.jpg'));
    expect(colourDistance(flat.at(3, 30), [255, 255, 255])).toBeLessThan(10);
    for (const ext of ['png', 'webp']) {
      const kept = await readPixels(join(dir, `out/thumb/transparent.${ext}`));
      expect(kept.channels, ext).toBe(4);
      expect(kept.at(3, 30)[3], ext).toBe(0);
      expect(kept.at(kept.width - 4, 30)[3], ext).toBe(255);
    }

    for (const ext of ['jpg', 'png', 'webp']) {
      const meta = await readMetadata(join(dir, `out/medium/gps.${ext}`));
      expect(meta.exif, ext).toBeUndefined();
      expect(meta.xmp, ext).toBeUndefined();
    }

    const cmyk = await readMetadata(join(dir, 'out/thumb/cmyk.jpg'));
    expect([cmyk.space, cmyk.channels]).toEqual(['srgb', 3]);
    const [r, g, b] = meanColour(await readPixels(join(dir, 'out/thumb/cmyk.jpg')), 0, 0, cmyk.width!, cmyk.height!) as [number, number, number];
    expect(r).toBeGreaterThan(170);
    expect(Math.max(g, b)).toBeLessThan(70);
  });

  it("flattens onto --background '#ff0000'", async () => {
    const dir = await workspace({ 'in/transparent.png': 'cases/transparent.png' });
    expect((await runCli(['in', '--out', 'out', '--background', '#ff0000'], { cwd: dir })).code).toBe(0);
    expect(colourDistance((await readPixels(join(dir, 'out/thumb/transparent.jpg'))).at(3, 30), [255, 0, 0])).toBeLessThan(20);
  });

  it('embeds an ICC profile (and no EXIF) with --keep-metadata icc', async () => {
    const dir = await workspace({ 'in/gps.jpg': 'cases/gps.jpg' });
    expect((await runCli(['in', '--out', 'out', '--keep-metadata', 'icc'], { cwd: dir })).code).toBe(0);
    const meta = await readMetadata(join(dir, 'out/thumb/gps.jpg'));
    expect(meta.icc).toBeDefined();
    expect(meta.exif).toBeUndefined();
  });

  it('reads 16-bit, greyscale, TIFF, AVIF, WebP and GIF inputs', async () => {
    const names = ['cases/sixteen-bit.png', 'cases/greyscale.png', 'cases/tiff-photo.tiff', 'cases/avif-photo.avif', 'images/meadow.webp', 'cases/animated.gif'];
    const dir = await workspace(Object.fromEntries(names.map((n) => [`in/${basename(n)}`, n])));
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ processed: 6, failed: 0 });
    for (const name of names.map((n) => basename(n).replace(/\.[^.]+$/, ''))) {
      const meta = await readMetadata(join(dir, `out/thumb/${name}.jpg`));
      expect([meta.format, meta.channels], name).toEqual(['jpeg', 3]);
    }
    const grey = await readPixels(join(dir, 'out/thumb/greyscale.jpg'));
    const [r, g, b] = grey.at(60, 40) as [number, number, number];
    expect(Math.max(Math.abs(r - g), Math.abs(g - b))).toBeLessThanOrEqual(4);
  });
});

describe('bad input', () => {
  it('fails each bad file alone with a one-line reason naming it, processes the good ones, exit 1', async () => {
    const bad = ['empty.jpg', 'not-an-image.jpg', 'truncated.jpg', 'pixel-bomb.png', 'vector.svg', 'gzipped-svg.jpg'];
    const dir = await workspace({ ...Object.fromEntries(bad.map((b) => [`in/${b}`, `bad/${b}`])), 'in/broken.heic': 'bad/truncated.heic', 'in/tiny.heic': 'cases/tiny.heic', 'in/good.jpg': 'cases/grey.jpg', 'in/zz-good.png': 'cases/transparent.png' });
    const before = await hashTree(join(dir, 'in'));
    const result = await runCli(['in', '--out', 'out'], { cwd: dir });
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n');
    const reasons = {
      'empty.jpg': /empty/,
      'not-an-image.jpg': /not a readable image/,
      'truncated.jpg': /corrupt or truncated/,
      'pixel-bomb.png': /30000×30000.*limits\.maxPixels/,
      'vector.svg': /SVG.*refused/,
      // Gzipped SVG (SVGZ), which librsvg reads, named .jpg.
      'gzipped-svg.jpg': /refused.*SVG/,
      'broken.heic': /corrupt or truncated heic/,
    };
    for (const [name, reason] of Object.entries(reasons)) {
      const matching = lines.filter((l) => l.includes(`in/${name}`) && l.startsWith('failed'));
      expect(matching, name).toHaveLength(1);
      expect(matching[0], name).toMatch(reason);
    }
    // The HEIC decodes (pipeline/heic.ts) between the failures around it.
    expect(result.stderr).toMatch(/3 processed, 0 skipped, 7 failed/);
    expect((await listFiles(join(dir, 'out'))).filter((f) => !f.startsWith('.'))).toEqual(['medium/good.jpg', 'medium/tiny.jpg', 'medium/zz-good.jpg', 'thumb/good.jpg', 'thumb/tiny.jpg', 'thumb/zz-good.jpg']);
    expect(await hashTree(join(dir, 'in'))).toEqual(before);
  });

  it('--verbose follows a failed file with its stack and cause; --json never carries them', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/broken.jpg': 'bad/truncated.jpg' });
    const plain = await runCli(['in', '--out', 'a'], { cwd: dir });
    expect(plain.stderr).not.toMatch(/\n {4}at /);
    const verbose = await runCli(['in', '--out', 'b', '--verbose'], { cwd: dir });
    expect(verbose.code).toBe(1);
    // The failure line, then the stack (indented) and the decoder's own error as the cause.
    expect(verbose.stderr).toMatch(/failed {4}.*in\/broken\.jpg: corrupt or truncated jpeg[^\n]*\n {4}InputError: corrupt or truncated jpeg[^\n]*\n( {8}at [^\n]+\n)+ {4}caused by: Error: [^\n]*premature end/);
    const json = await runCli(['in', '--out', 'c', '--verbose', '--json'], { cwd: dir });
    expect(json.stdout).not.toMatch(/detail|InputError|\bat /);
    expect(JSON.parse(json.stdout).files.find((f: { input: string }) => f.input.endsWith('broken.jpg'))).toEqual({ input: join(dir, 'in/broken.jpg'), status: 'failed', error: expect.stringMatching(/^corrupt/), code: 'INPUT_CORRUPT', outputs: [] });
  });

  it('processes SVG with --allow-svg', async () => {
    const dir = await workspace({ 'in/vector.svg': 'bad/vector.svg' });
    expect((await runCli(['in', '--out', 'out', '--allow-svg'], { cwd: dir })).code).toBe(0);
    expect((await readMetadata(join(dir, 'out/thumb/vector.jpg'))).width).toBe(100);
  });

  it('refuses files over --max-file-size and images over --max-pixels', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg', 'in/landscape.jpg': 'images/landscape.jpg' });
    const bySize = await runCli(['in', '--out', 'a', '--max-file-size', '10kb', '--json'], { cwd: dir });
    expect(bySize.code).toBe(1);
    expect(JSON.parse(bySize.stdout).files.find((f: { input: string }) => f.input.endsWith('landscape.jpg'))).toMatchObject({ status: 'failed', error: expect.stringMatching(/limits\.maxFileSize/) });
    const byPixels = await runCli(['in', '--out', 'b', '--max-pixels', '500000', '--json'], { cwd: dir });
    expect(byPixels.code).toBe(1);
    expect(JSON.parse(byPixels.stdout)).toMatchObject({ processed: 1, failed: 1 });
  });
});

describe('hostile file names', () => {
  it('escapes control characters in every line (one line per file), and --json keeps the exact names', async () => {
    const names = ['esc\u001b[2J\u001b]0;pwned\u0007.jpg', 'new\nline.jpg', 'cr\rback.jpg', 'del\u007f.jpg', 'c1\u0085\u009b31m.jpg', 'bidi\u202egpj.jpg'];
    const dir = await workspace();
    await mkdir(join(dir, 'in'));
    for (const name of names) await copyFile(fixture('cases/grey.jpg'), join(dir, 'in', name));
    await writeFile(join(dir, 'in', 'bad\u001b[31m.jpg'), 'not a jpeg');
    const result = await runCli(['in', '--out', 'out'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(names.length + 2);
    expect(lines).toContain(`processed ${join(dir, 'in')}/new\\nline.jpg -> 2 outputs (${lines.find((l) => l.includes('new\\nline'))!.split('(')[1]}`);
    expect(lines.some((l) => l.startsWith(`processed ${join(dir, 'in')}/esc\\x1b[2J\\x1b]0;pwned\\x07.jpg -> `))).toBe(true);
    expect(lines.some((l) => l.includes('bidi\\u202egpj.jpg') && l.includes('c1') === false)).toBe(true);
    expect(lines.some((l) => l.startsWith(`failed    ${join(dir, 'in')}/bad\\x1b[31m.jpg: `))).toBe(true);
    const json = await runCli(['in', '--out', 'out2', '--json'], { cwd: dir });
    expect(json.stdout.trimEnd()).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(json.stdout).files.map((f: { input: string }) => f.input).sort()).toEqual([...names, 'bad\u001b[31m.jpg'].map((n) => join(dir, 'in', n)).sort());
  });
});

describe('exit code 2: usage and config errors, nothing written', () => {
  it.each([
    ['a bad config value flag', ['--quality', '500'], /quality: .*100.*received 500/],
    ['an unknown --format', ['--format', 'jpeg,gif'], /formats\.1: .*received "gif"/],
    ['a missing input path', ['missing-folder'], /missing-folder does not exist/],
    ['an unknown flag', ['--bogus'], /unknown option '--bogus'/],
    ['a malformed --sizes', ['--sizes', 'thumb'], /--sizes: expected name=WIDTHxHEIGHT/],
    ['a bad --watermark-position', ['--watermark', 'x', '--watermark-position', 'middle'], /watermark\.position: .*received "middle"/],
    ['--watermark-opacity without a watermark', ['--watermark-opacity', '0.3'], /^img-pipeline: --watermark-opacity needs a watermark to adjust: add --watermark TEXT or --watermark-image FILE/],
    ['an empty --watermark', ['--watermark', ''], /^img-pipeline: --watermark: expected the text to draw \(--no-watermark turns the watermark off\), received ""\n$/],
    ['--crop without --fit cover', ['--crop', 'attention'], /^img-pipeline: --crop attention needs --fit cover/],
    ['a name twice in --sizes', ['--sizes', 'a=10x10,a=64x64'], /^img-pipeline: --sizes: expected each name once, received "a" twice/],
    ['a bare --keep-metadata', ['--keep-metadata'], /option '--keep-metadata <mode>' argument missing/],
    ['--watermark with --no-watermark', ['--watermark', 'x', '--no-watermark'], /^img-pipeline: --watermark and --no-watermark contradict each other: give one of them\n$/],
    ['--quiet with --verbose', ['--verbose', '--quiet'], /^img-pipeline: --quiet and --verbose contradict each other: give one of them\n/],
    ['a bad --crop, named as the flag', ['--fit', 'cover', '--crop', 'bogus'], /^img-pipeline: --crop: expected one of center, attention, entropy, received "bogus"\n$/],
    ['a bad --max-file-size, with the format', ['--max-file-size', '10XB'], /^img-pipeline: --max-file-size: expected a size such as 500KB, 50MB or 1GB .*received "10XB"\n$/],
    ['an --endpoint with a path', ['--endpoint', 'http://127.0.0.1:9000/bucket'], /s3\.endpoint: expected an endpoint without a path/],
    ['an invalid bucket name', ['--out', 's3://Bad_Bucket/x/'], /"Bad_Bucket" is not a valid bucket name/],
  ])('%s', async (_what, args, message) => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    const result = await runCli(['in', '--out', 'out', ...args], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
    expect(await exists(join(dir, 'out'))).toBe(false);
  });

  it('refuses an empty --out and --out or inputs of a scheme other than s3://, writing nothing anywhere', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    const empty = await runCli(['in', '--out', ''], { cwd: dir });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe('img-pipeline: --out: expected a folder path or s3://bucket/prefix/, received an empty value\n');
    const file = await runCli(['in', '--out', 'file:///tmp/x'], { cwd: dir });
    expect(file.code).toBe(2);
    expect(file.stderr).toBe('img-pipeline: --out: expected a local path or an s3://bucket/prefix/ URI, received "file:///tmp/x" (file:// is not supported; write the path itself)\n');
    const input = await runCli(['gs://bucket/in/', '--out', 'out'], { cwd: dir });
    expect(input.code).toBe(2);
    expect(input.stderr).toMatch(/^img-pipeline: input: expected a local path or an s3:\/\/bucket\/prefix\/ URI, received "gs:\/\/bucket\/in\/"/);
    expect(await listFiles(dir)).toEqual(['in/grey.jpg']);
  });

  it('--keep-metadata takes a mode, never the input after it', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    const result = await runCli(['--keep-metadata', 'in', '--out', 'out'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/argument 'in' is invalid\. Allowed choices are none, icc, all/);
    expect(await exists(join(dir, 'out'))).toBe(false);
  });

  it('a bad config file: names the file, the field, what was expected and what was received', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    await writeFile(join(dir, 'img-pipeline.config.json'), JSON.stringify({ quality: 'high', sizes: { thumb: { width: -3, height: 10 } } }));
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('img-pipeline.config.json');
    expect(result.stderr).toMatch(/quality: expected number, received "high" \(string\)/);
    expect(result.stderr).toMatch(/sizes\.thumb\.width: .*1.*received -3 \(number\)/);
    // --json: still one document, carrying the error.
    expect(JSON.parse(result.stdout)).toMatchObject({ processed: 0, files: [], error: { code: 'CONFIG_INVALID', message: expect.stringContaining('sizes.thumb.width') } });
    expect(await exists(join(dir, 'out'))).toBe(false);
  });

  it('accepts a config file saved with a UTF-8 byte order mark', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    await writeFile(join(dir, 'bom.json'), `\uFEFF${JSON.stringify({ sizes: { tiny: { width: 16, height: 16 } } })}`);
    const result = await runCli(['in', '--out', 'out', '--config', 'bom.json'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(await listFiles(join(dir, 'out'))).toEqual(['.img-pipeline.json', 'tiny/grey.jpg']);
  });

  it('a missing --config file', async () => {
    const dir = await workspace({ 'in/grey.jpg': 'cases/grey.jpg' });
    const result = await runCli(['in', '--out', 'out', '--config', 'nope.json'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nope\.json/);
    expect(await exists(join(dir, 'out'))).toBe(false);
  });
});

describe('config precedence: defaults < file < flags', () => {
  it('takes the file over the defaults and the flags over the file', async () => {
    const dir = await workspace({ 'in/l.jpg': 'images/landscape.jpg' });
    await writeFile(join(dir, 'my.json'), JSON.stringify({ sizes: { tiny: { width: 32, height: 32 } }, formats: ['png'] }));
    expect((await runCli(['in', '--out', 'a', '-c', 'my.json'], { cwd: dir })).code).toBe(0);
    expect((await listFiles(join(dir, 'a'))).filter((f) => !f.startsWith('.'))).toEqual(['tiny/l.png']);
    expect((await readMetadata(join(dir, 'a/tiny/l.png'))).width).toBe(32);
    expect((await runCli(['in', '--out', 'b', '-c', 'my.json', '-f', 'webp'], { cwd: dir })).code).toBe(0);
    expect((await listFiles(join(dir, 'b'))).filter((f) => !f.startsWith('.'))).toEqual(['tiny/l.webp']);
  });
});

describe('format names', () => {
  it('takes -f jpg for jpeg', async () => {
    const dir = await workspace({ 'in/grey.png': 'cases/transparent.png' });
    const result = await runCli(['in', '--out', 'out', '-f', 'jpg,webp'], { cwd: dir });
    expect(result.code).toBe(0);
    expect((await listFiles(join(dir, 'out'))).filter((f) => !f.startsWith('.'))).toEqual(['medium/grey.jpg', 'medium/grey.webp', 'thumb/grey.jpg', 'thumb/grey.webp']);
    expect((await readMetadata(join(dir, 'out/thumb/grey.jpg'))).format).toBe('jpeg');
  });
});

describe('--json and --dry-run', () => {
  it('--json: stdout is exactly one JSON document with counts and each file with its outputs', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b.jpg': 'bad/empty.jpg' });
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ processed: 1, skipped: 0, failed: 1 });
    expect(doc.files).toHaveLength(2);
    const a = doc.files.find((f: { input: string }) => f.input.endsWith('a.jpg'));
    expect(a).toMatchObject({ input: join(dir, 'in/a.jpg'), status: 'processed' });
    expect(a.error).toBeUndefined();
    expect(a.outputs).toEqual([
      { variant: 'thumb', format: 'jpeg', path: join(dir, 'out/thumb/a.jpg'), width: 128, height: 85, bytes: (await stat(join(dir, 'out/thumb/a.jpg'))).size },
      { variant: 'medium', format: 'jpeg', path: join(dir, 'out/medium/a.jpg'), width: 512, height: 341, bytes: (await stat(join(dir, 'out/medium/a.jpg'))).size },
    ]);
    expect(doc.files.find((f: { input: string }) => f.input.endsWith('b.jpg'))).toMatchObject({ status: 'failed', error: expect.stringMatching(/empty/), outputs: [] });
    // Human messages go to stderr.
    expect(result.stderr).toMatch(/1 processed, 0 skipped, 1 failed/);
  });

  it('--dry-run lists the planned files and writes nothing', async () => {
    const dir = await workspace({ 'in/2024/cat.PNG': 'images/2024/cat.PNG', 'in/a.jpg': 'cases/grey.jpg' });
    const result = await runCli(['in', '--out', 'out', '--dry-run'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`would process ${join(dir, 'in/2024/cat.PNG')} -> ${join(dir, 'out/thumb/2024/cat.jpg')}, ${join(dir, 'out/medium/2024/cat.jpg')}`);
    expect(result.stderr).toMatch(/Dry run: 2 to process/);
    expect(await exists(join(dir, 'out'))).toBe(false);
    const json = await runCli(['in', '--out', 'out', '--dry-run', '--json'], { cwd: dir });
    const doc = JSON.parse(json.stdout);
    expect(doc.files.map((f: { status: string }) => f.status)).toEqual(['planned', 'planned']);
    expect(doc.files[0].outputs.map((o: { path: string }) => o.path)).toEqual([join(dir, 'out/thumb/2024/cat.jpg'), join(dir, 'out/medium/2024/cat.jpg')]);
    expect(await exists(join(dir, 'out'))).toBe(false);
  });
});

describe('incremental runs', () => {
  it('skips up-to-date inputs, reprocesses on a config change or --force, and only a touched input otherwise', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b.jpg': 'cases/gps.jpg', 'in/c.png': 'cases/transparent.png' });
    const run = async (...args: string[]) => {
      const result = await runCli(['in', '--out', 'out', '--json', ...args], { cwd: dir });
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as { processed: number; skipped: number; files: { input: string; status: string }[] };
    };
    expect(await run()).toMatchObject({ processed: 3, skipped: 0 });
    const second = await run();
    expect(second).toMatchObject({ processed: 0, skipped: 3 });
    expect(second.files.every((f) => f.status === 'skipped')).toBe(true);
    expect(await run('--quality', '60')).toMatchObject({ processed: 3, skipped: 0 });
    expect(await run('--quality', '60')).toMatchObject({ processed: 0, skipped: 3 });
    expect(await run('--quality', '60', '--watermark', 'Acme')).toMatchObject({ processed: 3, skipped: 0 });
    expect(await run('--quality', '60', '--watermark', 'Acme', '--force')).toMatchObject({ processed: 3, skipped: 0 });
    // Touch one source: a newer mtime than its outputs.
    const later = new Date(Date.now() + 60_000);
    await utimes(join(dir, 'in/b.jpg'), later, later);
    const touched = await run('--quality', '60', '--watermark', 'Acme');
    expect(touched).toMatchObject({ processed: 1, skipped: 2 });
    expect(touched.files.find((f) => f.status === 'processed')!.input).toBe(join(dir, 'in/b.jpg'));
  });

  it('reprocesses an input replaced by another photo with an older time (cp -p, rsync -a, unzip)', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b.jpg': 'cases/gps.jpg', 'elsewhere/a.jpg': 'images/landscape.jpg' });
    expect((await runCli(['in', '--out', 'out'], { cwd: dir })).code).toBe(0);
    // `cp -p elsewhere/a.jpg in/a.jpg`: new bytes, and a time years older than the outputs.
    const old = new Date('2019-06-01T12:00:00Z');
    await utimes(join(dir, 'elsewhere/a.jpg'), old, old);
    await copyFile(join(dir, 'elsewhere/a.jpg'), join(dir, 'in/a.jpg'));
    await utimes(join(dir, 'in/a.jpg'), old, old);
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ processed: 1, skipped: 1 });
    expect(doc.files.find((f: { status: string }) => f.status === 'processed').input).toBe(join(dir, 'in/a.jpg'));
    expect((await readMetadata(join(dir, 'out/medium/a.jpg'))).width).toBe(512);
    expect(JSON.parse((await runCli(['in', '--out', 'out', '--json'], { cwd: dir })).stdout)).toMatchObject({ processed: 0, skipped: 2 });
  });

  it('reprocesses an input whose output was deleted', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b.jpg': 'cases/gps.jpg' });
    expect((await runCli(['in', '--out', 'out'], { cwd: dir })).code).toBe(0);
    await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'out/medium/a.jpg')));
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(JSON.parse(result.stdout)).toMatchObject({ processed: 1, skipped: 1 });
    expect(await exists(join(dir, 'out/medium/a.jpg'))).toBe(true);
  });

  it('never processes its own outputs when --out is inside the input folder', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg', 'photos/2024/cat.PNG': 'images/2024/cat.PNG' });
    const first = await runCli(['photos', '--out', 'photos/processed', '--json'], { cwd: dir });
    expect(JSON.parse(first.stdout)).toMatchObject({ processed: 2, failed: 0 });
    const second = await runCli(['photos', '--out', 'photos/processed', '--json', '--force'], { cwd: dir });
    const doc = JSON.parse(second.stdout);
    expect(doc).toMatchObject({ processed: 2, skipped: 0, failed: 0 });
    expect(doc.files.map((f: { input: string }) => f.input).sort()).toEqual([join(dir, 'photos/2024/cat.PNG'), join(dir, 'photos/a.jpg')]);
    expect((await listFiles(join(dir, 'photos/processed'))).filter((f) => !f.startsWith('.'))).toEqual(['medium/2024/cat.jpg', 'medium/a.jpg', 'thumb/2024/cat.jpg', 'thumb/a.jpg']);
  });
});

describe('local folders: what is scanned, and where outputs may go', () => {
  it('--out . and --out <the input folder> process the images (only <out>/<variant>/ is left out); reruns skip them', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg', 'photos/2024/cat.PNG': 'images/2024/cat.PNG' });
    const inParent = await runCli(['photos', '--out', '.', '--json'], { cwd: dir });
    expect(inParent.code).toBe(0);
    expect(JSON.parse(inParent.stdout)).toMatchObject({ processed: 2, failed: 0 });
    expect(await exists(join(dir, 'thumb/2024/cat.jpg'))).toBe(true);
    const photos = join(dir, 'photos');
    const inItself = await runCli(['.', '--out', '.', '--json'], { cwd: photos });
    expect(JSON.parse(inItself.stdout)).toMatchObject({ processed: 2, failed: 0 });
    expect((await listFiles(photos)).filter((f) => !f.startsWith('.'))).toEqual(['2024/cat.PNG', 'a.jpg', 'medium/2024/cat.jpg', 'medium/a.jpg', 'thumb/2024/cat.jpg', 'thumb/a.jpg']);
    // Its own outputs are never inputs, now or on a rerun.
    const again = JSON.parse((await runCli(['photos', '--out', 'photos', '--json'], { cwd: dir })).stdout);
    expect(again).toMatchObject({ processed: 0, skipped: 2, failed: 0 });
  });

  it('says so on stderr when it finds no image at all, and exits 0', async () => {
    const dir = await workspace({ 'docs/notes.txt': 'bad/not-an-image.jpg' });
    const result = await runCli(['docs', '--out', 'out'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^img-pipeline: no images found under docs \(images are picked by extension: \.jpg .*\)\n0 processed/);
  });

  it('never writes an output over an input: `thumb/x.jpg --out .` fails that file (OUTPUT_IS_INPUT), exit 1', async () => {
    const dir = await workspace({ 'thumb/x.jpg': 'images/landscape.jpg' });
    const before = await hashTree(join(dir, 'thumb'));
    const result = await runCli(['thumb/x.jpg', '--out', '.', '--json'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).files).toEqual([{ input: join(dir, 'thumb/x.jpg'), status: 'failed', code: 'OUTPUT_IS_INPUT', error: expect.stringContaining(`its output ${join(dir, 'thumb/x.jpg')} is this input itself`), outputs: [] }]);
    expect(await hashTree(join(dir, 'thumb'))).toEqual(before);
    expect(await exists(join(dir, 'medium'))).toBe(false);
    // A folder inside a variant folder of --out is refused before anything is written.
    const folder = await runCli(['thumb', '--out', '.'], { cwd: dir });
    expect(folder.code).toBe(2);
    expect(folder.stderr).toMatch(/^img-pipeline: refusing to run: the input thumb lies inside .*\/thumb, where this run writes its outputs/);
  });

  it('leaves out a folder holding .img-pipeline.json (an earlier --out), unless it is the input itself', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg' });
    expect((await runCli(['photos', '--out', 'photos/processed'], { cwd: dir })).code).toBe(0);
    const other = await runCli(['photos', '--out', 'other', '--verbose'], { cwd: dir });
    expect(other.code).toBe(0);
    expect((await listFiles(join(dir, 'other'))).filter((f) => !f.startsWith('.'))).toEqual(['medium/a.jpg', 'thumb/a.jpg']);
    expect(other.stderr).toContain(`skipped   ${join(dir, 'photos/processed')}/ (it holds img-pipeline outputs, which are never inputs)`);
    expect((await runCli(['photos', '--out', 'third'], { cwd: dir })).stderr).not.toContain('img-pipeline outputs');
    // Named as the input, its variant folders are still outputs: nothing in it is an input.
    const named = await runCli(['photos/processed', '--out', 'fourth', '--json'], { cwd: dir });
    expect(JSON.parse(named.stdout)).toMatchObject({ processed: 0, failed: 0 });
    expect(named.stderr).toMatch(/no images found under photos\/processed .*left out as earlier img-pipeline outputs: .*processed\/medium, .*processed\/thumb/);
  });

  it('reports dangling and looping symlinks under --verbose, escaped, and not as failures', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg' });
    await symlink(join(dir, 'photos/gone.jpg'), join(dir, 'photos/dangling\x1b[31m.jpg'));
    await symlink(join(dir, 'photos/loop-b.jpg'), join(dir, 'photos/loop-a.jpg'));
    await symlink(join(dir, 'photos/loop-a.jpg'), join(dir, 'photos/loop-b.jpg'));
    const verbose = await runCli(['photos', '--out', 'out', '--verbose'], { cwd: dir });
    expect(verbose.code, verbose.stderr).toBe(0);
    const lines = verbose.stderr.split('\n').filter((line) => line.includes('symlink'));
    expect(lines).toEqual([
      `skipped   ${join(dir, 'photos/dangling\\x1b[31m.jpg')} (a symlink whose target does not exist)`,
      `skipped   ${join(dir, 'photos/loop-a.jpg')} (a symlink that loops back on itself)`,
      `skipped   ${join(dir, 'photos/loop-b.jpg')} (a symlink that loops back on itself)`,
    ]);
    expect(verbose.stderr).not.toContain('\x1b');
    expect(verbose.stderr).toMatch(/1 processed, 0 skipped, 0 failed/);
    expect((await runCli(['photos', '--out', 'quiet'], { cwd: dir })).stderr).not.toContain('symlink');
  });

  it('never takes its own outputs for inputs, whatever the sizes are called now and wherever --out points', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg', 'photos/2024/cat.PNG': 'images/2024/cat.PNG' });
    expect((await runCli(['photos', '--out', 'photos'], { cwd: dir })).code).toBe(0);
    expect((await listAllFiles(join(dir, 'photos'))).filter((f) => FOLDER_MARKER.test(f))).toEqual(['medium/.img-pipeline-output.json', 'thumb/.img-pipeline-output.json']);
    // New sizes: thumb/ and medium/ are no longer this run's variant folders, but they hold outputs.
    const renamed = await runCli(['photos', '--out', 'photos', '--sizes', 'large=1024x1024', '--json'], { cwd: dir });
    expect(renamed.code).toBe(0);
    expect(JSON.parse(renamed.stdout)).toMatchObject({ processed: 2, failed: 0 });
    expect((await listFiles(join(dir, 'photos/large'))).filter((f) => !f.startsWith('.'))).toEqual(['2024/cat.jpg', 'a.jpg']);
    // --out elsewhere: the state file in photos/ still names every variant folder it ever had.
    const elsewhere = await runCli(['photos', '--out', 'other', '--json'], { cwd: dir });
    expect(JSON.parse(elsewhere.stdout)).toMatchObject({ processed: 2, failed: 0 });
    expect((await listFiles(join(dir, 'other'))).filter((f) => !f.split('/').pop()!.startsWith('.'))).toEqual(['medium/2024/cat.jpg', 'medium/a.jpg', 'thumb/2024/cat.jpg', 'thumb/a.jpg']);
    // A variant folder moved away (and the state file gone) still carries its marker.
    await rename(join(dir, 'photos/thumb'), join(dir, 'photos/old-thumbs'));
    await rm(join(dir, 'photos/.img-pipeline.json'));
    const moved = await runCli(['photos', '--out', 'third', '--sizes', 'small=64x64', '--json'], { cwd: dir });
    expect(JSON.parse(moved.stdout)).toMatchObject({ processed: 2, failed: 0 });
    expect((await listFiles(join(dir, 'third'))).filter((f) => !f.split('/').pop()!.startsWith('.'))).toEqual(['small/2024/cat.jpg', 'small/a.jpg']);
  });

  it('processes an image reached through nested inputs or a symlink once, at its path under the outermost input', async () => {
    const dir = await workspace({ 'dir/top.jpg': 'cases/grey.jpg', 'dir/sub/a.png': 'cases/transparent.png', 'dir/sub/b.jpg': 'cases/grey.jpg' });
    const nested = await runCli(['dir/sub/a.png', 'dir/sub', 'dir', '--out', 'o', '--json'], { cwd: dir });
    expect(nested.code, nested.stderr).toBe(0);
    expect(JSON.parse(nested.stdout)).toMatchObject({ processed: 3, skipped: 0, failed: 0 });
    expect((await listFiles(join(dir, 'o'))).filter((f) => f.startsWith('thumb/'))).toEqual(['thumb/sub/a.jpg', 'thumb/sub/b.jpg', 'thumb/top.jpg']);
    await symlink(join(dir, 'dir'), join(dir, 'link'));
    const linked = await runCli(['dir', 'link', 'link/sub', '--out', 'o2', '--json'], { cwd: dir });
    expect(linked.code, linked.stderr).toBe(0);
    expect(JSON.parse(linked.stdout)).toMatchObject({ processed: 3, skipped: 0, failed: 0 });
    expect(JSON.parse(linked.stdout).files.map((f: { input: string }) => f.input).sort()).toEqual(['sub/a.png', 'sub/b.jpg', 'top.jpg'].map((f) => join(dir, 'dir', f)));
  });

  it('processes an input named twice once, and a collision names the other input by its full path', async () => {
    const dir = await workspace({ 'rv-o/a.jpg': 'cases/grey.jpg', 'one/cat.jpg': 'cases/grey.jpg', 'two/cat.png': 'cases/transparent.png' });
    const twice = await runCli(['rv-o', 'rv-o', './rv-o/', '--out', 'o', '--json'], { cwd: dir });
    expect(twice.code).toBe(0);
    expect(JSON.parse(twice.stdout)).toMatchObject({ processed: 1, skipped: 0, failed: 0 });
    const collision = await runCli(['one', 'two', '--out', 'o2', '--json'], { cwd: dir });
    expect(JSON.parse(collision.stdout).files.find((f: { status: string }) => f.status === 'failed')).toMatchObject({
      input: join(dir, 'two/cat.png'),
      code: 'OUTPUT_COLLISION',
      error: `its output thumb/cat.jpg is already produced from ${join(dir, 'one/cat.jpg')}; rename one of them`,
    });
  });

  it('exit 2 with one line, before anything is written, when --out is an existing file or lies under one', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg' });
    await writeFile(join(dir, 'taken'), 'a file');
    for (const [out, message] of [
      ['taken', `img-pipeline: the output folder ${join(dir, 'taken')} is an existing file, not a folder; choose another --out\n`],
      ['taken/sub', `img-pipeline: cannot create the output folder ${join(dir, 'taken/sub')}: ${join(dir, 'taken')} is a file, not a folder\n`],
    ]) {
      for (const extra of [[], ['--json'], ['--dry-run']]) {
        const result = await runCli(['in', '--out', out!, ...extra], { cwd: dir });
        expect(result.code, `${out} ${extra.join(' ')}`).toBe(2);
        expect(result.stderr).toBe(message);
        // --json: one document, carrying the error; nothing else on stdout.
        if (extra.includes('--json')) expect(JSON.parse(result.stdout)).toMatchObject({ processed: 0, files: [], error: { code: 'LOCAL_OUT_NOT_FOLDER' } });
        else expect(result.stdout).toBe('');
      }
    }
    expect(await readFile(join(dir, 'taken'), 'utf8')).toBe('a file');
  });

  describe.skipIf(!canRunUnprivileged)('as a user without root\'s powers', () => {
    /** A workspace that `nobody` can enter and write in. */
    async function openWorkspace(files: Record<string, string>): Promise<string> {
      const dir = await workspace(files);
      await chmod(dir, 0o777);
      return dir;
    }

    it('reports an unreadable folder as one failure (LOCAL_UNREADABLE) and processes the files after it', async () => {
      const dir = await openWorkspace({ 'in/a.jpg': 'cases/grey.jpg', 'in/b/x.jpg': 'cases/grey.jpg', 'in/z.jpg': 'cases/grey.jpg' });
      await chmod(join(dir, 'in/b'), 0o000);
      const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir, unprivileged: true });
      expect(result.code).toBe(1);
      const doc = JSON.parse(result.stdout);
      expect(doc).toMatchObject({ processed: 2, failed: 1 });
      expect(doc.error).toBeUndefined();
      expect(doc.files.find((f: { status: string }) => f.status === 'failed')).toMatchObject({ input: join(dir, 'in/b'), code: 'LOCAL_UNREADABLE', error: expect.stringMatching(new RegExp(`cannot read the folder ${join(dir, 'in/b')}.*EACCES`)) });
      expect(await listFiles(join(dir, 'out'))).toEqual(['.img-pipeline.json', 'medium/a.jpg', 'medium/z.jpg', 'thumb/a.jpg', 'thumb/z.jpg']);
      expect(result.stderr).not.toMatch(/stopped early/);
    });

    it('exit 2 with one line when --out cannot be written', async () => {
      const dir = await openWorkspace({ 'in/a.jpg': 'cases/grey.jpg' });
      await mkdir(join(dir, 'locked'), { mode: 0o755 });
      for (const out of ['locked', 'locked/out']) {
        const result = await runCli(['in', '--out', out], { cwd: dir, unprivileged: true });
        expect(result.code, out).toBe(2);
        expect(result.stderr).toMatch(new RegExp(`^img-pipeline: cannot write to the output folder ${join(dir, out)}.*(EACCES|permission denied)[^\n]*\n$`));
      }
      expect(await listFiles(join(dir, 'locked'))).toEqual([]);
    });
  });
});

describe('interruption', () => {
  async function manyCopies(n: number, from: string): Promise<string> {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in'));
    const data = await readFile(fixture(from));
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(dir, 'in', `p${String(i).padStart(3, '0')}.jpg`), data)));
    return dir;
  }

  it('Ctrl-C stops scheduling, exits 130, prints the summary and leaves no partial or temp files', async () => {
    // AVIF encoding is slow (~0.4 s a file), so the run is far from done when the signal lands.
    const dir = await manyCopies(12, 'images/landscape.jpg');
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '1', '-f', 'avif'], { cwd: dir });
    await waitFor(async () => (await listFiles(join(dir, 'out'))).some((f) => f.endsWith('.avif') && !f.split('/').pop()!.startsWith('.')));
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    // Inputs already queued for a slot when the signal landed are counted as skipped (interrupted).
    expect(result.stderr).toMatch(/Interrupted: \d+ processed, \d+ skipped, 0 failed/);
    expect(result.stderr).not.toMatch(ANSI);
    const outputs = await expectOnlyCompleteImages(join(dir, 'out'), false);
    expect(outputs.length).toBeGreaterThan(0);
    expect(outputs.length).toBeLessThan(24);
    // Whole inputs only: every input has both variants or neither.
    const stems = (variant: string) => outputs.filter((f) => f.startsWith(`${variant}/`)).map((f) => f.slice(variant.length + 1)).sort();
    expect(stems('thumb')).toEqual(stems('medium'));
  });

  it('a second Ctrl-C quits at once with exit 130 and one line saying what is left', async () => {
    // Full-size AVIF encodes take a second or so each: the image in flight is far from done at the second signal.
    const dir = await manyCopies(6, 'images/landscape.jpg');
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '1', '-f', 'avif', '--sizes', 'full=1200x1200'], { cwd: dir });
    let stderr = '';
    child.stderr!.on('data', (s: string) => (stderr += s));
    await waitFor(async () => (await listFiles(join(dir, 'out'))).some((f) => f.endsWith('.avif') && !f.split('/').pop()!.startsWith('.')));
    // The next image enters its decoding slot within milliseconds of the first leaving it, and its encode
    // takes a second or more; a Ctrl-C before it started would drop it (nothing left in flight to quit).
    await new Promise((r) => setTimeout(r, 250));
    child.kill('SIGINT');
    // The first one has been handled, and the next image is in flight: now the second.
    await waitFor(() => stderr.includes('Stopping'));
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toMatch(/\nimg-pipeline: stopped immediately\. The outputs written so far are complete; no partial file is left at an output path\. Run again to finish the rest\.\n$/);
    // No summary: it quit without waiting for the image in flight.
    expect(result.stderr).not.toMatch(/Interrupted: /);
    await expectOnlyCompleteImages(join(dir, 'out'), true);
  });

  it('kill -9 mid-run leaves only complete images at output paths (hidden temp files may remain)', async () => {
    const dir = await manyCopies(60, 'images/landscape.jpg');
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '2', '-f', 'jpeg,webp'], { cwd: dir });
    await waitFor(async () => (await listFiles(join(dir, 'out'))).filter((f) => !f.split('/').pop()!.startsWith('.')).length >= 6);
    child.kill('SIGKILL');
    const result = await done;
    expect(result.signal).toBe('SIGKILL');
    const outputs = await expectOnlyCompleteImages(join(dir, 'out'), true);
    expect(outputs.length).toBeGreaterThanOrEqual(6);
    expect(outputs.length).toBeLessThan(240);
    // Its lock is left behind, and taken over: the dead run's pid is checked.
    expect(await exists(join(dir, 'out/.img-pipeline.lock'))).toBe(true);
    const rerun = await runCli(['in', '--out', 'out', '-j', '2', '-f', 'jpeg,webp', '--quiet'], { cwd: dir, timeoutMs: 120_000 });
    expect(rerun.code).toBe(0);
    expect(await exists(join(dir, 'out/.img-pipeline.lock'))).toBe(false);
  });

  it('a reader that goes away (`| head -1`) neither stops the run half-way nor makes it exit 0 for work not done', async () => {
    const dir = await manyCopies(8, 'images/landscape.jpg');
    await writeFile(join(dir, 'in', 'p999.jpg'), 'not an image');
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '1'], { cwd: dir });
    // As `head -1` does: read the first line, then close the pipes; the next write gets EPIPE.
    await new Promise((resolve) => child.stderr!.once('data', resolve));
    child.stdout!.destroy();
    child.stderr!.destroy();
    const result = await done;
    expect(result.code).toBe(1);
    const outputs = await expectOnlyCompleteImages(join(dir, 'out'), false);
    expect(outputs).toHaveLength(16);
  });

  it('refuses a second run on an --out that a live run is writing (exit 2, naming it), and releases the lock at the end', async () => {
    const dir = await manyCopies(8, 'images/landscape.jpg');
    const { child, done } = spawnCli(['in', '--out', 'out', '-j', '1', '-f', 'avif', '--watermark', 'A'], { cwd: dir });
    await waitFor(() => exists(join(dir, 'out/.img-pipeline.lock')));
    const second = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`img-pipeline: another img-pipeline run is writing to ${join(dir, 'out')} (pid ${child.pid} on this machine, started `);
    expect(second.stderr).toContain(': img-pipeline "in" --out "out"); wait for it to finish, or choose another --out');
    child.kill('SIGINT');
    expect((await done).code).toBe(130);
    expect(await exists(join(dir, 'out/.img-pipeline.lock'))).toBe(false);
    // The state file still names the first run's settings: the refused run wrote nothing.
    const fresh = await runCli(['in', '--out', 'out', '-j', '1', '-f', 'avif', '--watermark', 'A', '--dry-run', '--json'], { cwd: dir });
    expect(JSON.parse(fresh.stdout).skipped).toBeGreaterThan(0);
  });
});

describe('HEIC input and --sidecar', () => {
  it('processes iPhone-style HEIC next to JPEG: upright, sRGB, the primary image', async () => {
    const dir = await workspace({ 'in/rot.heic': 'cases/rotated-irot.heic', 'in/p3.heic': 'cases/p3.heic', 'in/multi.heic': 'cases/multi-primary-second.heic', 'in/a.jpg': 'cases/grey.jpg' });
    const result = await runCli(['in', '--out', 'out', '--json'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ processed: 4, failed: 0 });
    const rot = await readPixels(join(dir, 'out/medium/rot.jpg'));
    expect([rot.width, rot.height]).toEqual([32, 64]);
    expect(colourDistance(rot.at(16, 8), [220, 20, 20])).toBeLessThanOrEqual(16);
    expect(colourDistance((await readPixels(join(dir, 'out/medium/p3.jpg'))).at(10, 10), [0xc8, 0x64, 0x32])).toBeLessThanOrEqual(6);
    const multi = await readPixels(join(dir, 'out/medium/multi.jpg'));
    expect([multi.width, multi.height]).toEqual([48, 36]);
  });

  it('writes meta/<path>.json after the outputs, with the placeholder also in --json; reruns skip, a missing or stale sidecar is redone', async () => {
    const dir = await workspace({ 'in/2024/cat.PNG': 'images/2024/cat.PNG', 'in/rot.heic': 'cases/rotated-irot.heic' });
    const result = await runCli(['in', '--out', 'out', '--sidecar', '-f', 'jpeg,webp', '--json'], { cwd: dir });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { files: { input: string; sidecar: string; placeholder: { thumbhash: string } }[] };
    const cat = report.files.find((f) => f.input.endsWith('cat.PNG'))!;
    expect(cat.sidecar).toBe(join(dir, 'out/meta/2024/cat.PNG.json'));
    const sidecar = JSON.parse(await readFile(cat.sidecar, 'utf8'));
    expect(sidecar).toMatchObject({
      source: { key: '2024/cat.PNG', format: 'png', width: 320, height: 240, aspectRatio: 1.3333 },
      placeholder: { thumbhash: cat.placeholder.thumbhash },
      srcset: { jpeg: 'thumb/2024/cat.jpg 128w, medium/2024/cat.jpg 320w', webp: 'thumb/2024/cat.webp 128w, medium/2024/cat.webp 320w' },
    });
    expect(sidecar.color).toMatch(/^#[0-9a-f]{6}$/);
    for (const output of sidecar.outputs as { key: string; bytes: number; width: number }[]) {
      const path = join(dir, 'out', output.key);
      expect((await stat(path)).size).toBe(output.bytes);
      expect((await readMetadata(path)).width).toBe(output.width);
      // Written after every output it lists.
      expect((await stat(cat.sidecar)).mtimeMs).toBeGreaterThanOrEqual((await stat(path)).mtimeMs);
    }
    // The HEIC's sidecar gives the upright size.
    expect(JSON.parse(await readFile(join(dir, 'out/meta/rot.heic.json'), 'utf8')).source).toMatchObject({ format: 'heic', width: 32, height: 64, aspectRatio: 0.5 });

    const run = async () => JSON.parse((await runCli(['in', '--out', 'out', '--sidecar', '-f', 'jpeg,webp', '--json'], { cwd: dir })).stdout);
    expect(await run()).toMatchObject({ processed: 0, skipped: 2 });
    await writeFile(join(dir, 'out/meta/rot.heic.json'), '');
    await utimes(join(dir, 'out/meta/rot.heic.json'), new Date(2001, 0, 1), new Date(2001, 0, 1));
    await writeFile(join(dir, 'out/meta/2024/cat.PNG.json'), '').then(() => import('node:fs/promises')).then((fs) => fs.rm(join(dir, 'out/meta/2024/cat.PNG.json')));
    expect(await run()).toMatchObject({ processed: 2, skipped: 0 });
    expect(JSON.parse(await readFile(join(dir, 'out/meta/rot.heic.json'), 'utf8')).source.key).toBe('rot.heic');
    // Outputs without sidecars are not up to date for a run that wants them.
    const plain = await workspace({ 'in/a.jpg': 'cases/grey.jpg' });
    await runCli(['in', '--out', 'out'], { cwd: plain });
    const withSidecar = JSON.parse((await runCli(['in', '--out', 'out', '--sidecar', '--json'], { cwd: plain })).stdout);
    expect(withSidecar).toMatchObject({ processed: 1 });
  });

  it('writes no sidecar when an output it would list cannot be written, and never scans meta/ as input', async () => {
    const dir = await workspace({ 'photos/a.jpg': 'cases/grey.jpg', 'photos/b.jpg': 'cases/grey.jpg', 'photos/meta/c.jpg': 'cases/grey.jpg' });
    // A folder where the medium output of b.jpg should go: that write fails.
    await mkdir(join(dir, 'photos/medium/b.jpg'), { recursive: true });
    const result = await runCli(['photos', '--out', 'photos', '--sidecar', '--json'], { cwd: dir });
    const report = JSON.parse(result.stdout) as { processed: number; failed: number; files: { input: string; status: string }[] };
    expect(report).toMatchObject({ processed: 1, failed: 1 });
    // photos/meta/ is where this run's sidecars go: never an input.
    expect(report.files.map((f) => basename(f.input)).sort()).toEqual(['a.jpg', 'b.jpg']);
    expect(await exists(join(dir, 'photos/meta/a.jpg.json'))).toBe(true);
    expect(await exists(join(dir, 'photos/meta/b.jpg.json'))).toBe(false);
  });

  it('--dry-run names the sidecar it would write', async () => {
    const dir = await workspace({ 'in/a.jpg': 'cases/grey.jpg' });
    const result = await runCli(['in', '--out', 'out', '--sidecar', '--dry-run'], { cwd: dir });
    expect(result.stdout + result.stderr).toMatch(/would process .*in\/a\.jpg -> .*thumb\/a\.jpg, .*medium\/a\.jpg, .*out\/meta\/a\.jpg\.json/);
    expect(await exists(join(dir, 'out'))).toBe(false);
  });
});
