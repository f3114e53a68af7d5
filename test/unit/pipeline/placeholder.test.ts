import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { thumbHashToAverageRGBA, thumbHashToRGBA } from 'thumbhash';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { decodeInput, inspectInput } from '../../../src/pipeline/decode.js';
import { computePlaceholder } from '../../../src/pipeline/placeholder.js';
import { fixture } from '../../helpers/paths.js';
import { colourDistance } from '../../helpers/pixels.js';

const limits = configSchema.parse({}).limits;
const box = { width: 512, height: 512, fit: 'inside', position: 'center' } as const;

async function decoded(path: string, keepMetadata = false) {
  const input = await readFile(fixture(path));
  return decodeInput(input, await inspectInput(input, limits), [box], limits, keepMetadata);
}

describe('computePlaceholder', () => {
  it('gives a ThumbHash the thumbhash package decodes to the image, upright, and its average colour', async () => {
    // 150x300 upright: red top half, blue bottom half.
    const placeholder = await computePlaceholder(await decoded('cases/rotated-exif6.jpg'));
    const hash = Buffer.from(placeholder.thumbhash, 'base64');
    const image = thumbHashToRGBA(hash);
    expect(image.h).toBeGreaterThan(image.w);
    const at = (x: number, y: number) => [...image.rgba.subarray((y * image.w + x) * 4, (y * image.w + x) * 4 + 3)];
    expect(at(Math.floor(image.w / 2), 2)[0]).toBeGreaterThan(at(Math.floor(image.w / 2), image.h - 3)[0]!);
    const average = thumbHashToAverageRGBA(hash);
    expect(colourDistance([average.r * 255, average.g * 255, average.b * 255], [120, 20, 120])).toBeLessThanOrEqual(25);
    expect(colourDistance([1, 3, 5].map((i) => parseInt(placeholder.color.slice(i, i + 2), 16)), [120, 20, 120])).toBeLessThanOrEqual(6);
  });

  it('gives a tiny PNG data URL of at most 10 px, opaque for an opaque source', async () => {
    // rgbaToDataURL (thumbhash) writes RGBA, stored uncompressed: at 10 px that is about 500 bytes in base64.
    const { dataURL } = await computePlaceholder(await decoded('images/landscape.jpg'));
    expect(dataURL).toMatch(/^data:image\/png;base64,/);
    const png = Buffer.from(dataURL.slice(dataURL.indexOf(',') + 1), 'base64');
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(Math.max(info.width, info.height)).toBe(10);
    expect(info.channels).toBe(4);
    for (let i = 3; i < data.length; i += 4) expect(data[i]).toBe(255);
    expect(dataURL.length).toBeLessThan(1000);
  });

  it('weights the colour by opacity and keeps alpha in the preview of a transparent source (left half clear)', async () => {
    // Left half transparent, right half opaque green.
    const placeholder = await computePlaceholder(await decoded('cases/transparent.png'));
    expect(colourDistance([1, 3, 5].map((i) => parseInt(placeholder.color.slice(i, i + 2), 16)), [0, 200, 0])).toBeLessThanOrEqual(4);
    const png = Buffer.from(placeholder.dataURL.split(',')[1]!, 'base64');
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(data[3]).toBeLessThan(128);
    expect(data[data.length - 1]).toBeGreaterThan(200);
  });

  it('works from a container decode too (keepMetadata: all)', async () => {
    const placeholder = await computePlaceholder(await decoded('cases/grey.jpg', true));
    expect(placeholder.color).toBe('#808080');
  });
});
