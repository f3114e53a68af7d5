import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { configSchema, type Limits, type SizeSpec } from '../../../src/config/schema.js';
import { InputError } from '../../../src/errors.js';
import { decodeInput, inspectInput, sharpDecodesHevc } from '../../../src/pipeline/decode.js';
import { decodeHeic, embedIccProfile } from '../../../src/pipeline/heic.js';
import { processImage } from '../../../src/pipeline/process.js';
import { rejection } from '../../helpers/errors.js';
import { fixture, REPO_ROOT } from '../../helpers/paths.js';
import { pipelineFor } from '../../helpers/pipeline.js';
import { colourDistance, readPixels } from '../../helpers/pixels.js';

// Fixtures: scripts/make-heic-fixtures.mjs says how each was made (heif-enc / vips heifsave, then box edits).
const limits = (over: Partial<Limits> = {}): Limits => ({ ...configSchema.parse({}).limits, ...over });
const read = (path: string) => readFile(fixture(path));
const box: SizeSpec = { width: 512, height: 512, fit: 'inside', position: 'center' };

async function decodeFixture(path: string) {
  const input = await read(path);
  const decoded = await decodeInput(input, await inspectInput(input, limits()), [box], limits(), false);
  const channels = decoded.raw!.channels;
  const at = (x: number, y: number) => [...decoded.image.subarray((y * decoded.width + x) * channels, (y * decoded.width + x) * channels + 3)];
  return { decoded, at };
}

describe('HEIC (HEVC) input through the WASM libheif', () => {
  it('is needed here: the prebuilt sharp reads HEIC headers but cannot decode HEVC', async () => {
    expect(await sharpDecodesHevc()).toBe(false);
    await expect(sharp(await read('cases/tiny.heic')).raw().toBuffer()).rejects.toThrow();
  });

  it('decodes a HEIC to sRGB pixels of its declared size', async () => {
    const { decoded, at } = await decodeFixture('cases/tiny.heic');
    expect(decoded).toMatchObject({ width: 16, height: 16, input: { format: 'heic', width: 16, height: 16, pages: 1 } });
    expect(colourDistance(at(8, 8), [0x30, 0x60, 0xc0])).toBeLessThanOrEqual(4);
  });

  it('applies irot once: libheif rotates, and the EXIF orientation 6 the file also carries is not applied on top', async () => {
    // Stored 64x32 red|blue with irot 90° clockwise: upright 32x64, red on top. Rotating twice gives red at the bottom.
    const input = await read('cases/rotated-irot.heic');
    expect(input.includes(Buffer.from([0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06]))).toBe(true);
    expect(await inspectInput(input, limits())).toMatchObject({ width: 32, height: 64 });
    const { decoded, at } = await decodeFixture('cases/rotated-irot.heic');
    expect([decoded.width, decoded.height]).toEqual([32, 64]);
    expect(colourDistance(at(16, 8), [220, 20, 20])).toBeLessThanOrEqual(12);
    expect(colourDistance(at(16, 56), [20, 20, 220])).toBeLessThanOrEqual(12);
  });

  it('applies imir (mirroring)', async () => {
    const { at } = await decodeFixture('cases/mirrored-imir.heic');
    expect(colourDistance(at(8, 16), [20, 20, 220])).toBeLessThanOrEqual(12);
    expect(colourDistance(at(56, 16), [220, 20, 20])).toBeLessThanOrEqual(12);
  });

  it('converts an embedded Display P3 profile to sRGB', async () => {
    const input = await read('cases/p3.heic');
    // The stored values are sRGB #c86432 converted into P3: read as if sRGB they are visibly off.
    const stored = await decodeHeic(input, 1e6);
    expect(colourDistance([...stored.data.subarray(0, 3)], [0xc8, 0x64, 0x32])).toBeGreaterThan(10);
    const { at } = await decodeFixture('cases/p3.heic');
    expect(colourDistance(at(10, 10), [0xc8, 0x64, 0x32])).toBeLessThanOrEqual(4);
  });

  it('takes the primary image of a multi-image file, not the first one', async () => {
    const input = await read('cases/multi-primary-second.heic');
    expect(await inspectInput(input, limits())).toMatchObject({ width: 48, height: 36, pages: 1 });
    const { decoded, at } = await decodeFixture('cases/multi-primary-second.heic');
    expect([decoded.width, decoded.height]).toEqual([48, 36]);
    expect(colourDistance(at(20, 20), [0xc0, 0x20, 0xc0])).toBeLessThanOrEqual(8);
  });

  it('refuses a HEIC declaring too many pixels from its header, before decoding', async () => {
    const error = await rejection(inspectInput(await read('bad/pixel-bomb.heic'), limits()), InputError);
    expect(error.code).toBe('INPUT_TOO_MANY_PIXELS');
    expect(error.message).toMatch(/30000×30000/);
    // libheif's own reading of the size is checked too, before it allocates anything.
    const direct = await rejection(decodeHeic(await read('bad/pixel-bomb.heic'), 1e8), InputError);
    expect(direct.code).toBe('INPUT_TOO_MANY_PIXELS');
  });

  it('fails a truncated HEIC with a one-line INPUT_CORRUPT reason', async () => {
    const input = await read('bad/truncated.heic');
    const error = await rejection(decodeInput(input, await inspectInput(input, limits()), [box], limits(), false), InputError);
    expect(error.code).toBe('INPUT_CORRUPT');
    expect(error.message).toBe('corrupt or truncated heic: the HEVC data does not decode');
  });

  it('embedIccProfile gives a PNG whose profile sharp reads and converts', async () => {
    const p3 = (await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).withIccProfile('p3').png().toBuffer().then((b) => sharp(b).metadata())).icc!;
    const png = await sharp(Buffer.from([60, 160, 60]), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer();
    const tagged = embedIccProfile(png, p3);
    expect((await sharp(tagged).metadata()).icc?.equals(p3)).toBe(true);
    // The same numbers mean a more saturated green in P3, so in sRGB red drops and green rises.
    const [r, g] = (await readPixels(tagged)).at(0, 0) as [number, number, number];
    expect(r).toBeLessThan(55);
    expect(g).toBeGreaterThan(160);
  });
});

describe('loading the WASM decoder', () => {
  it('happens on the first HEIC only: a JPEG-only process never loads libheif-js', async () => {
    // A fresh process over the built library, as the CLI and the Lambda run it.
    const script = `
      import { createRequire } from 'node:module';
      import { readFileSync } from 'node:fs';
      const { preparePipeline, processImage } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/pipeline/process.js'))});
      const { validateConfig } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/config/load.js'))});
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('libheif-js'));
      const pipeline = await preparePipeline(validateConfig({ concurrency: 1 }, 'test'));
      await processImage(readFileSync(${JSON.stringify(fixture('cases/grey.jpg'))}), pipeline);
      const afterJpeg = loaded();
      await processImage(readFileSync(${JSON.stringify(fixture('cases/tiny.heic'))}), pipeline);
      console.log(JSON.stringify({ afterJpeg, afterHeic: loaded() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ afterJpeg: false, afterHeic: true });
  });
});

describe('decodeHeic under concurrency', () => {
  it('decodes several HEICs started at once, each to its own pixels (one WASM instance, one decode at a time)', async () => {
    const [rotated, multi, p3] = await Promise.all(['cases/rotated-irot.heic', 'cases/multi-primary-second.heic', 'cases/p3.heic'].map(read));
    const corrupt = await read('bad/truncated.heic');
    const results = await Promise.allSettled([rotated, multi, corrupt, p3, rotated].map((input) => decodeHeic(input!, 1e6)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const sizes = results.flatMap((r) => (r.status === 'fulfilled' ? [[r.value.raw.width, r.value.raw.height]] : []));
    expect(sizes).toEqual([[32, 64], [48, 36], [32, 24], [32, 64]]);
  });

  it('keeps two large decodes apart: the second growing the WASM memory does not detach the first one\'s pixels', async () => {
    const grey = await read('cases/grey-2048.heic');
    const both = await Promise.all([decodeHeic(grey, 1e8), decodeHeic(grey, 1e8)]);
    for (const { data, raw } of both) {
      expect(raw).toEqual({ width: 2048, height: 2048, channels: 3 });
      expect(colourDistance([...data.subarray(data.length - 3)], [128, 128, 128])).toBeLessThanOrEqual(3);
    }
  });
});

describe('HEIC through the whole pipeline', () => {
  it('encodes every format with every metadata mode (EXIF is not carried over from HEIC, so orientation cannot apply twice)', async () => {
    const input = await read('cases/rotated-irot.heic');
    for (const keepMetadata of ['none', 'icc', 'all'] as const) {
      const outputs = await processImage(input, await pipelineFor({ keepMetadata, formats: ['jpeg', 'webp', 'png', 'avif'] }));
      expect(outputs).toHaveLength(8);
      for (const output of outputs) {
        const meta = await sharp(output.data).metadata();
        expect([meta.autoOrient.width, meta.autoOrient.height], `${keepMetadata} ${output.format}`).toEqual([32, 64]);
        expect(meta.orientation ?? 1).toBe(1);
      }
    }
  });
});
