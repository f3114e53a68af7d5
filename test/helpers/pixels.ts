import sharp, { type Metadata } from 'sharp';

export type Rgb = readonly [number, number, number];

/** Decoded pixels of an image file or buffer, with a sampler; what tests assert on instead of bytes. */
export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
  /** The channel values at (x, y): [r, g, b] or [r, g, b, a]. */
  at(x: number, y: number): number[];
}

/** Decodes to 8-bit sRGB raw pixels (alpha kept when present). `page` picks one frame of an animation. */
export async function readPixels(input: string | Buffer, page = 0): Promise<Pixels> {
  const { data, info } = await sharp(input, { page }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  return {
    width,
    height,
    channels,
    data,
    at: (x, y) => Array.from(data.subarray((y * width + x) * channels, (y * width + x + 1) * channels)),
  };
}

export function readMetadata(input: string | Buffer): Promise<Metadata> {
  return sharp(input).metadata();
}

/** Largest per-channel difference between a sample and a colour (alpha ignored). */
export function colourDistance(sample: readonly number[], colour: Rgb): number {
  return Math.max(...colour.map((c, i) => Math.abs((sample[i] ?? 0) - c)));
}

/** The mean colour of a rectangle, one value per channel. */
export function meanColour(pixels: Pixels, x0: number, y0: number, x1: number, y1: number): number[] {
  const sums = new Array<number>(pixels.channels).fill(0);
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      pixels.at(x, y).forEach((v, i) => (sums[i]! += v));
      n += 1;
    }
  }
  return sums.map((s) => Math.round(s / n));
}

/** Bounding box of the pixels that differ from `colour` by more than `threshold` on some channel. */
export function differingBox(pixels: Pixels, colour: Rgb, threshold: number): { left: number; top: number; width: number; height: number; count: number } | undefined {
  let left = Infinity, top = Infinity, right = -1, bottom = -1, count = 0;
  for (let y = 0; y < pixels.height; y++) {
    for (let x = 0; x < pixels.width; x++) {
      if (colourDistance(pixels.at(x, y), colour) <= threshold) continue;
      count += 1;
      left = Math.min(left, x);
      top = Math.min(top, y);
      right = Math.max(right, x);
      bottom = Math.max(bottom, y);
    }
  }
  return count === 0 ? undefined : { left, top, width: right - left + 1, height: bottom - top + 1, count };
}
