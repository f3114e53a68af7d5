import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import * as decode from '../../../src/pipeline/decode.js';
import { plannedOutputs } from '../../../src/pipeline/plan.js';
import { processImage } from '../../../src/pipeline/process.js';
import { fixture } from '../../helpers/paths.js';
import { pipelineFor, processFixture } from '../../helpers/pipeline.js';
import { colourDistance, differingBox, meanColour, readMetadata, readPixels, type Rgb } from '../../helpers/pixels.js';

vi.mock('../../../src/pipeline/decode.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../../src/pipeline/decode.js')>();
  return { ...actual, decodeInput: vi.fn(actual.decodeInput) };
});

afterEach(() => vi.mocked(decode.decodeInput).mockClear());

const RED: Rgb = [220, 20, 20];
const BLUE: Rgb = [20, 20, 220];
const GREEN: Rgb = [0, 200, 0];
const WHITE: Rgb = [255, 255, 255];
const GREY: Rgb = [128, 128, 128];

describe('processImage: one decode per input', () => {
  it('decodes once and derives every variant and format from it, in the planned order', async () => {
    const config = { sizes: { a: { width: 64, height: 64 }, b: { width: 200, height: 200 }, c: { width: 100, height: 30, fit: 'cover' as const } }, formats: ['jpeg' as const, 'png' as const, 'webp' as const] };
    const outputs = await processImage(await readFile(fixture('images/landscape.jpg')), await pipelineFor(config));
    expect(decode.decodeInput).toHaveBeenCalledTimes(1);
    // The runner writes result i to planned output i.
    expect(outputs.map((o) => `${o.variant}/${o.format}`)).toEqual(plannedOutputs('x.jpg', configSchema.parse(config)).map((o) => `${o.variant}/${o.format}`));
  });

  it('renders the watermark once per output size, not once per format', async () => {
    const pipeline = await pipelineFor({ watermark: { text: 'Acme' }, formats: ['jpeg', 'webp', 'png'] });
    const markFor = vi.spyOn(pipeline.watermark!, 'markFor');
    await processImage(await readFile(fixture('cases/grey.jpg')), pipeline);
    expect(markFor.mock.calls).toEqual([[128, 85], [512, 341]]);
  });
});

describe('processImage: sizes', () => {
  it('fits thumb 128×128 and medium 512×512 inside the box, keeping the aspect ratio', async () => {
    const out = await processFixture('images/landscape.jpg');
    expect([out['thumb.jpeg']!.width, out['thumb.jpeg']!.height]).toEqual([128, 85]);
    expect([out['medium.jpeg']!.width, out['medium.jpeg']!.height]).toEqual([512, 341]);
    const meta = await readMetadata(out['medium.jpeg']!.data);
    expect([meta.width, meta.height]).toEqual([512, 341]);
  });

  it('never enlarges a small input', async () => {
    const out = await processFixture('cases/grey.jpg', { sizes: { big: { width: 1024, height: 1024 }, cover: { width: 800, height: 800, fit: 'cover' } } });
    for (const key of ['big.jpeg', 'cover.jpeg']) {
      const meta = await readMetadata(out[key]!.data);
      expect(meta.width).toBeLessThanOrEqual(600);
      expect(meta.height).toBeLessThanOrEqual(400);
    }
    expect([out['big.jpeg']!.width, out['big.jpeg']!.height]).toEqual([600, 400]);
  });

  it('crops to the exact box with fit cover (centre and attention)', async () => {
    for (const position of ['center', 'attention'] as const) {
      const out = await processFixture('images/landscape.jpg', { sizes: { square: { width: 100, height: 100, fit: 'cover', position } } });
      const meta = await readMetadata(out['square.jpeg']!.data);
      expect([meta.width, meta.height]).toEqual([100, 100]);
    }
  });

  it('pads to the exact box with fit contain: transparent in PNG, background colour in JPEG', async () => {
    const out = await processFixture('cases/rotated-exif6.jpg', { sizes: { box: { width: 100, height: 100, fit: 'contain' } }, formats: ['png', 'jpeg'], background: '#00ff00' });
    const png = await readPixels(out['box.png']!.data);
    expect([png.width, png.height]).toEqual([100, 100]);
    expect(png.at(2, 50)[3]).toBe(0);
    expect(png.at(50, 10)[3]).toBe(255);
    const jpeg = await readPixels(out['box.jpeg']!.data);
    expect(colourDistance(jpeg.at(2, 50), [0, 255, 0])).toBeLessThan(30);
  });
});

describe('processImage: orientation and colour', () => {
  it('applies EXIF orientation: the rotated photo comes out upright, red on top and blue below', async () => {
    const out = await processFixture('cases/rotated-exif6.jpg', { formats: ['jpeg', 'png'] });
    for (const key of ['thumb.jpeg', 'medium.jpeg', 'thumb.png']) {
      const px = await readPixels(out[key]!.data);
      expect(px.height / px.width, key).toBeCloseTo(2, 1);
      expect(colourDistance(meanColour(px, 0, 0, px.width, Math.floor(px.height * 0.4)), RED), key).toBeLessThan(30);
      expect(colourDistance(meanColour(px, 0, Math.ceil(px.height * 0.6), px.width, px.height), BLUE), key).toBeLessThan(30);
      // No orientation tag left that would make a viewer rotate it again.
      expect((await readMetadata(out[key]!.data)).orientation ?? 1).toBe(1);
    }
    expect([out['medium.jpeg']!.width, out['medium.jpeg']!.height]).toEqual([150, 300]);
  });

  it('converts a Display P3 input through its profile, not by reinterpreting its numbers as sRGB', async () => {
    // sharp converts sRGB (200,100,50) to P3 numbers when it tags the file, so the file stores other values.
    const p3 = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 100, b: 50 } } }).withIccProfile('p3').png().toBuffer();
    const stored = meanColour(await readPixels(await sharp(p3, { ignoreIcc: true }).png().toBuffer()), 0, 0, 64, 64);
    expect(colourDistance(stored, [200, 100, 50])).toBeGreaterThan(10);
    const [output] = await processImage(p3, await pipelineFor({ formats: ['png'] }));
    const seen = meanColour(await readPixels(output!.data), 0, 0, output!.width, output!.height);
    expect(colourDistance(seen, [200, 100, 50])).toBeLessThan(4);
  });

  it('converts CMYK to 3-channel sRGB and red stays red', async () => {
    const out = await processFixture('cases/cmyk.jpg', { formats: ['jpeg', 'png'] });
    for (const key of ['thumb.jpeg', 'thumb.png', 'medium.jpeg']) {
      const meta = await readMetadata(out[key]!.data);
      expect(meta.space, key).toBe('srgb');
      expect(meta.channels, key).toBe(3);
      const [r, g, b] = meanColour(await readPixels(out[key]!.data), 0, 0, meta.width, meta.height) as [number, number, number];
      expect(r, key).toBeGreaterThan(170);
      expect(g, key).toBeLessThan(70);
      expect(b, key).toBeLessThan(70);
    }
  });

  it('handles 16-bit input: 8-bit output with the same colours', async () => {
    const [out, reference] = await Promise.all([
      processFixture('cases/sixteen-bit.png', { formats: ['png'] }),
      sharp(fixture('cases/sixteen-bit.png')).toColourspace('srgb').resize(128, 128, { fit: 'inside' }).raw().toBuffer({ resolveWithObject: true }),
    ]);
    const meta = await readMetadata(out['thumb.png']!.data);
    expect(meta.depth).toBe('uchar');
    expect([meta.width, meta.height]).toEqual([128, 85]);
    const px = await readPixels(out['thumb.png']!.data);
    const ref = reference.data;
    const at = (x: number, y: number) => Array.from(ref.subarray((y * 128 + x) * reference.info.channels, (y * 128 + x) * reference.info.channels + 3));
    for (const [x, y] of [[5, 5], [64, 42], [120, 80]] as const) expect(colourDistance(px.at(x, y), at(x, y) as unknown as Rgb)).toBeLessThan(20);
  });

  it('handles greyscale input: grey out', async () => {
    const out = await processFixture('cases/greyscale.png', { formats: ['jpeg', 'png'] });
    for (const key of ['thumb.jpeg', 'thumb.png']) {
      const px = await readPixels(out[key]!.data);
      for (const [x, y] of [[3, 3], [60, 40], [120, 80]] as const) {
        const [r, g, b] = px.at(x, y) as [number, number, number];
        expect(Math.max(Math.abs(r - g), Math.abs(g - b)), key).toBeLessThanOrEqual(4);
      }
    }
  });

  it.each([
    ['cases/tiff-photo.tiff', [128, 85]],
    ['cases/avif-photo.avif', [128, 85]],
    ['images/meadow.webp', [128, 96]],
    ['cases/animated.gif', [120, 80]],
    ['images/2024/cat.PNG', [128, 96]],
  ])('reads %s', async (path, size) => {
    const out = await processFixture(path);
    const meta = await readMetadata(out['thumb.jpeg']!.data);
    expect(meta.format).toBe('jpeg');
    expect([meta.width, meta.height]).toEqual(size);
  });

  it('processes SVG only when allowed', async () => {
    await expect(processFixture('bad/vector.svg')).rejects.toMatchObject({ code: 'INPUT_REFUSED' });
    const out = await processFixture('bad/vector.svg', { limits: { allowSvg: true } });
    const px = await readPixels(out['thumb.jpeg']!.data);
    expect([px.width, px.height]).toEqual([100, 100]);
    expect(colourDistance(px.at(50, 50), [255, 0, 0])).toBeLessThan(20);
  });
});

describe('processImage: formats', () => {
  it('encodes jpeg, png, webp and avif, several at once', async () => {
    const out = await processFixture('cases/grey.jpg', { formats: ['jpeg', 'png', 'webp', 'avif'] });
    const formats = { jpeg: 'jpeg', png: 'png', webp: 'webp', avif: 'heif' } as const;
    for (const variant of ['thumb', 'medium']) {
      for (const [format, detected] of Object.entries(formats)) {
        const output = out[`${variant}.${format}`]!;
        const meta = await readMetadata(output.data);
        expect(meta.format).toBe(detected);
        if (format === 'avif') expect(meta.compression).toBe('av1');
        expect([meta.width, meta.height]).toEqual([output.width, output.height]);
        expect(colourDistance((await readPixels(output.data)).at(5, 5), GREY)).toBeLessThan(8);
      }
    }
  });

  it('uses the quality setting', async () => {
    const low = await processFixture('images/landscape.jpg', { quality: 20 });
    const high = await processFixture('images/landscape.jpg', { quality: 95 });
    expect(low['medium.jpeg']!.data.length).toBeLessThan(high['medium.jpeg']!.data.length);
  });
});

describe('processImage: transparency', () => {
  it('flattens transparency onto white for JPEG by default', async () => {
    const out = await processFixture('cases/transparent.png');
    for (const key of ['thumb.jpeg', 'medium.jpeg']) {
      const px = await readPixels(out[key]!.data);
      expect(px.channels).toBe(3);
      expect(colourDistance(px.at(3, Math.floor(px.height / 2)), WHITE), key).toBeLessThan(10);
      expect(colourDistance(px.at(px.width - 4, Math.floor(px.height / 2)), GREEN), key).toBeLessThan(20);
    }
  });

  it('flattens onto the configured background', async () => {
    const out = await processFixture('cases/transparent.png', { background: '#ff0000' });
    const px = await readPixels(out['thumb.jpeg']!.data);
    expect(colourDistance(px.at(3, 30), [255, 0, 0])).toBeLessThan(20);
  });

  it('keeps transparency for PNG, WebP and AVIF', async () => {
    const out = await processFixture('cases/transparent.png', { formats: ['png', 'webp', 'avif'], background: '#ff0000' });
    for (const format of ['png', 'webp', 'avif']) {
      const px = await readPixels(out[`thumb.${format}`]!.data);
      expect(px.channels, format).toBe(4);
      expect(px.at(3, 30)[3], format).toBe(0);
      expect(px.at(px.width - 4, 30)[3], format).toBe(255);
    }
  });
});

describe('processImage: metadata', () => {
  it('strips EXIF (GPS included), XMP and ICC by default, in every format', async () => {
    expect((await readMetadata(fixture('cases/gps.jpg'))).exif).toBeDefined();
    const out = await processFixture('cases/gps.jpg', { formats: ['jpeg', 'png', 'webp', 'avif'] });
    for (const [key, output] of Object.entries(out)) {
      const meta = await readMetadata(output.data);
      expect(meta.exif, key).toBeUndefined();
      expect(meta.xmp, key).toBeUndefined();
      expect(meta.icc, key).toBeUndefined();
    }
  });

  it('keeps only an sRGB ICC profile with keepMetadata icc', async () => {
    const out = await processFixture('cases/gps.jpg', { keepMetadata: 'icc', formats: ['jpeg', 'webp'] });
    for (const output of Object.values(out)) {
      const meta = await readMetadata(output.data);
      expect(meta.icc).toBeDefined();
      expect(meta.exif).toBeUndefined();
    }
  });

  it('keeps the original EXIF with keepMetadata all, in every variant', async () => {
    const out = await processFixture('cases/gps.jpg', { keepMetadata: 'all', formats: ['jpeg', 'webp'], sizes: { thumb: { width: 128, height: 128 }, full: { width: 2000, height: 2000 } } });
    for (const [key, output] of Object.entries(out)) {
      const meta = await readMetadata(output.data);
      expect(meta.exif?.includes(Buffer.from('FixtureCam')), key).toBe(true);
      expect(meta.icc, key).toBeDefined();
    }
  });

  it('does not leave an orientation tag that would rotate an upright output again', async () => {
    const out = await processFixture('cases/rotated-exif6.jpg', { keepMetadata: 'all' });
    const meta = await readMetadata(out['thumb.jpeg']!.data);
    expect([meta.width, meta.height]).toEqual([64, 128]);
    expect(meta.orientation ?? 1).toBe(1);
  });
});

describe('processImage: watermark', () => {
  it('draws the mark in the bottom-right corner of every size, and nowhere else', async () => {
    const out = await processFixture('cases/grey.jpg', { watermark: { text: '© Acme' } });
    for (const key of ['thumb.jpeg', 'medium.jpeg']) {
      const px = await readPixels(out[key]!.data);
      const box = differingBox(px, GREY, 24);
      expect(box, key).toBeDefined();
      // On the thumbnail the legible minimum makes the mark wider than the 0.3 of the width it asks for.
      expect(box!.left, key).toBeGreaterThan(px.width / 4);
      expect(box!.top, key).toBeGreaterThan(px.height / 2);
      expect(box!.left + box!.width, key).toBeLessThanOrEqual(px.width);
      expect(box!.top + box!.height, key).toBeLessThanOrEqual(px.height);
      expect(colourDistance(px.at(5, 5), GREY), key).toBeLessThanOrEqual(4);
    }
  });

  it('stays legible on the 128 px thumbnail: the text is at least 11 px tall', async () => {
    const out = await processFixture('cases/grey.jpg', { watermark: { text: '© Acme' } });
    const box = differingBox(await readPixels(out['thumb.jpeg']!.data), GREY, 24)!;
    expect(box.height).toBeGreaterThanOrEqual(11);
    expect(box.count).toBeGreaterThan(150);
  });

  it('is absent when not configured', async () => {
    const out = await processFixture('cases/grey.jpg');
    for (const key of ['thumb.jpeg', 'medium.jpeg']) expect(differingBox(await readPixels(out[key]!.data), GREY, 6), key).toBeUndefined();
  });

  it('honours the position and opacity', async () => {
    const out = await processFixture('cases/grey.jpg', { watermark: { text: 'Acme', position: 'top-left', opacity: 1 } });
    const px = await readPixels(out['medium.jpeg']!.data);
    const box = differingBox(px, GREY, 24)!;
    expect(box.left).toBeLessThan(px.width / 4);
    expect(box.top).toBeLessThan(px.height / 4);
    let brightest = 0;
    for (let y = box.top; y < box.top + box.height; y++) for (let x = box.left; x < box.left + box.width; x++) brightest = Math.max(brightest, px.at(x, y)[0]!);
    expect(brightest).toBeGreaterThan(235);
  });

  it('keeps a long text inside the canvas', async () => {
    const out = await processFixture('cases/grey.jpg', { watermark: { text: 'A very long copyright line, Acme Corporation 2024', size: 1 } });
    const px = await readPixels(out['thumb.jpeg']!.data);
    const box = differingBox(px, GREY, 24)!;
    expect(box.left).toBeGreaterThan(0);
    expect(box.left + box.width).toBeLessThan(px.width);
  });
});

describe('processImage: animation', () => {
  it('uses the first frame by default', async () => {
    const out = await processFixture('cases/animated.gif', { formats: ['webp', 'png'] });
    for (const key of ['thumb.webp', 'thumb.png']) {
      expect((await readMetadata(out[key]!.data)).pages ?? 1).toBe(1);
      expect(colourDistance((await readPixels(out[key]!.data)).at(10, 10), [255, 0, 0])).toBeLessThan(20);
    }
  });

  it('stays animated in WebP when asked, with the mark on every frame; other formats take frame 1', async () => {
    const out = await processFixture('cases/animated.gif', { formats: ['webp', 'jpeg'], animated: true, watermark: { text: 'Acme', opacity: 1, position: 'center', size: 0.8 } });
    const webp = out['thumb.webp']!;
    const meta = await readMetadata(webp.data);
    expect(meta.pages).toBe(3);
    expect([webp.width, webp.height]).toEqual([120, 80]);
    for (const [page, colour] of [[0, [255, 0, 0]], [1, [0, 255, 0]], [2, [0, 0, 255]]] as const) {
      const px = await readPixels(webp.data, page);
      expect([px.width, px.height]).toEqual([120, 80]);
      expect(colourDistance(px.at(3, 3), colour), `frame ${page}`).toBeLessThan(30);
      expect(differingBox(px, colour, 60), `mark on frame ${page}`).toBeDefined();
    }
    const jpeg = await readMetadata(out['thumb.jpeg']!.data);
    expect([jpeg.width, jpeg.height, jpeg.pages ?? 1]).toEqual([120, 80, 1]);
  });
});
