import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { configSchema, type Limits } from '../../../src/config/schema.js';
import { InputError } from '../../../src/errors.js';
import { decodeInput, inspectInput } from '../../../src/pipeline/decode.js';
import { processImage } from '../../../src/pipeline/process.js';
import { fixture } from '../../helpers/paths.js';
import { pipelineFor } from '../../helpers/pipeline.js';
import { rejection } from '../../helpers/errors.js';

const limits = (over: Partial<Limits> = {}): Limits => ({ ...configSchema.parse({}).limits, ...over });
const read = (path: string) => readFile(fixture(path));

async function inputError(promise: Promise<unknown>): Promise<InputError> {
  const error = await rejection(promise, InputError);
  // A one-line reason: the report line adds the file name in front of it.
  expect(error.message).not.toContain('\n');
  return error;
}

describe('inspectInput (header only, before any pixel is allocated)', () => {
  it('reports dimensions after EXIF orientation', async () => {
    expect(await inspectInput(await read('cases/rotated-exif6.jpg'), limits())).toMatchObject({ format: 'jpeg', width: 150, height: 300 });
  });

  it.each([
    ['cases/grey.jpg', 'jpeg'],
    ['cases/transparent.png', 'png'],
    ['images/meadow.webp', 'webp'],
    ['cases/animated.gif', 'gif'],
    ['cases/tiff-photo.tiff', 'tiff'],
    ['cases/avif-photo.avif', 'heif'],
    ['cases/tiny.heic', 'heic'],
  ])('accepts %s', async (path, format) => {
    expect((await inspectInput(await read(path), limits())).format).toBe(format);
  });

  it('counts the frames of an animation', async () => {
    expect((await inspectInput(await read('cases/animated.gif'), limits())).pages).toBe(3);
  });

  it('fails an empty file', async () => {
    expect((await inputError(inspectInput(await read('bad/empty.jpg'), limits()))).code).toBe('INPUT_EMPTY');
  });

  it('fails a text file named .jpg', async () => {
    const error = await inputError(inspectInput(await read('bad/not-an-image.jpg'), limits()));
    expect(error.code).toBe('INPUT_NOT_IMAGE');
    expect(error.message).toMatch(/not a readable image/);
  });

  it('refuses SVG as untrusted markup unless allowed', async () => {
    const error = await inputError(inspectInput(await read('bad/vector.svg'), limits()));
    expect(error.code).toBe('INPUT_REFUSED');
    expect(error.message).toMatch(/SVG.*untrusted.*--allow-svg/);
    expect(await inspectInput(await read('bad/vector.svg'), limits({ allowSvg: true }))).toMatchObject({ format: 'svg', width: 100, height: 100 });
  });

  it('refuses SVG even with a BOM and leading whitespace, or an XML prolog', async () => {
    for (const text of ['\uFEFF  \n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>']) {
      expect((await inputError(inspectInput(Buffer.from(text), limits()))).code).toBe('INPUT_REFUSED');
    }
  });

  it('refuses gzipped SVG (SVGZ) under any name, before anything parses it', async () => {
    const gzipped = await read('bad/gzipped-svg.jpg');
    const error = await inputError(inspectInput(gzipped, limits()));
    expect(error.code).toBe('INPUT_REFUSED');
    expect(error.message).toMatch(/SVG.*untrusted.*--allow-svg/);
    // librsvg does read it, so allowing SVG is what makes it an image.
    expect(await inspectInput(gzipped, limits({ allowSvg: true }))).toMatchObject({ format: 'svg', width: 100, height: 100 });
  });

  it('refuses SVG after more leading whitespace than a short sniff would look at', async () => {
    const padded = Buffer.from(`${' '.repeat(300)}\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>`);
    expect((await inputError(inspectInput(padded, limits()))).code).toBe('INPUT_REFUSED');
  });

  it('fails a format this sharp build cannot sniff as not an image', async () => {
    // A PPM (netpbm) image: a real image format, but sharp's prebuilt libvips sniffs none from a buffer.
    const ppm = Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]);
    const error = await inputError(inspectInput(ppm, limits()));
    expect(error.code).toBe('INPUT_NOT_IMAGE');
    expect(error.message).toMatch(/^not a readable image \(.*unsupported image format\)$/);
  });

  it('fails a file over limits.maxFileSize', async () => {
    const error = await inputError(inspectInput(await read('cases/grey.jpg'), limits({ maxFileSize: 100 })));
    expect(error.code).toBe('INPUT_TOO_LARGE');
    expect(error.message).toContain('limits.maxFileSize');
  });

  it('fails the pixel bomb on its header, naming the declared size and the limit', async () => {
    const error = await inputError(inspectInput(await read('bad/pixel-bomb.png'), limits()));
    expect(error.code).toBe('INPUT_TOO_MANY_PIXELS');
    expect(error.message).toMatch(/30000×30000/);
    expect(error.message).toContain('limits.maxPixels');
  });

  it('honours a configured limits.maxPixels', async () => {
    expect((await inputError(inspectInput(await read('cases/grey.jpg'), limits({ maxPixels: 600 * 400 - 1 })))).code).toBe('INPUT_TOO_MANY_PIXELS');
    await expect(inspectInput(await read('cases/grey.jpg'), limits({ maxPixels: 600 * 400 }))).resolves.toBeDefined();
  });
});

describe('processImage on bad inputs', () => {
  it('fails the pixel bomb in well under a second without allocating its pixels', async () => {
    const pipeline = await pipelineFor();
    const bomb = await read('bad/pixel-bomb.png');
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const error = await inputError(processImage(bomb, pipeline));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('INPUT_TOO_MANY_PIXELS');
    expect(elapsed).toBeLessThan(1000);
    // Decoding it would need 30000×30000×3 bytes = 2.7 GB; allow for noise, not for that.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('fails a truncated JPEG as corrupt, with the decoder reason on one line', async () => {
    const error = await inputError(processImage(await read('bad/truncated.jpg'), await pipelineFor()));
    expect(error.code).toBe('INPUT_CORRUPT');
    expect(error.message).toMatch(/corrupt or truncated jpeg/);
    expect(error.message).not.toMatch(/Vips/);
  });
});

describe('decodeInput (one decode, shrink-on-load)', () => {
  const sizes = Object.values(configSchema.parse({}).sizes);

  it('decodes a large image straight to the size of the largest variant, upright and sRGB', async () => {
    const input = await read('images/landscape.jpg');
    const decoded = await decodeInput(input, await inspectInput(input, limits()), sizes, limits(), false);
    expect([decoded.width, decoded.height]).toEqual([512, 341]);
    // Raw RGB pixels (sRGB: decode converts), handed on without a container to parse.
    expect(decoded.raw).toEqual({ width: 512, height: 341, channels: 3 });
    expect(decoded.pages).toBe(1);
  });

  it('keeps a small image at full size (never enlarged)', async () => {
    const input = await read('cases/rotated-exif6.jpg');
    const decoded = await decodeInput(input, await inspectInput(input, limits()), sizes, limits(), false);
    expect([decoded.width, decoded.height]).toEqual([150, 300]);
  });

  it('converts CMYK to sRGB', async () => {
    const input = await read('cases/cmyk.jpg');
    expect((await sharp(input).metadata()).space).toBe('cmyk');
    const decoded = await decodeInput(input, await inspectInput(input, limits()), sizes, limits(), false);
    expect(decoded.raw?.channels).toBe(3);
    // The fixture is red (#cc2020) stored as CMYK: converted through a profile, it is red again in RGB.
    const [r, g, b] = decoded.image;
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(90);
    expect(b).toBeLessThan(90);
  });

  it('keeps alpha, as raw pixels with four channels', async () => {
    const input = await read('cases/transparent.png');
    expect((await decodeInput(input, await inspectInput(input, limits()), sizes, limits(), false)).raw?.channels).toBe(4);
  });

  it('decodes only the first frame unless animation is asked for', async () => {
    const input = await read('cases/animated.gif');
    const info = await inspectInput(input, limits());
    expect((await decodeInput(input, info, sizes, limits(), false)).pages).toBe(1);
    const animated = await decodeInput(input, info, sizes, limits(), false, true);
    expect(animated.pages).toBe(3);
    expect([animated.width, animated.height]).toEqual([120, 80]);
  });

  it('counts every frame of an animation against limits.maxPixels', async () => {
    const input = await read('cases/animated.gif');
    const info = await inspectInput(input, limits());
    await expect(decodeInput(input, info, sizes, limits({ maxPixels: 120 * 80 * 2 }), false, true)).rejects.toMatchObject({ code: 'INPUT_TOO_MANY_PIXELS' });
  });
});
