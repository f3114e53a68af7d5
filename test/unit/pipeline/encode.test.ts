import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { processImage } from '../../../src/pipeline/process.js';
import { pipelineFor } from '../../helpers/pipeline.js';

/** A smooth two-axis gradient with a soft alpha ramp: far more than 256 colours, like a sky. */
async function gradientPng(width = 96, height = 64): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 4;
      pixels.set([Math.round((x * 255) / (width - 1)), Math.round((y * 255) / (height - 1)), 128 + ((x + y) % 64), 255 - ((x * 2) % 200)], i);
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

describe('PNG output', () => {
  it('is lossless truecolour with alpha by default: the pixels come back exactly', async () => {
    const input = await gradientPng();
    // A box the image fits in already: no resampling, so the output must equal the input pixel for pixel.
    const [output] = await processImage(input, await pipelineFor({ sizes: { same: { width: 96, height: 64 } }, formats: ['png'] }));
    const meta = await sharp(output!.data).metadata();
    expect(meta.isPalette).toBe(false);
    expect(meta.channels).toBe(4);
    const decoded = await sharp(output!.data).raw().toBuffer();
    expect(decoded.equals(await sharp(input).raw().toBuffer())).toBe(true);
  });

  it('quantises to a palette only with pngPalette (smaller, not exact)', async () => {
    const input = await gradientPng();
    const config = { sizes: { same: { width: 96, height: 64 } }, formats: ['png' as const] };
    const [lossless] = await processImage(input, await pipelineFor(config));
    const [palette] = await processImage(input, await pipelineFor({ ...config, pngPalette: true }));
    expect((await sharp(palette!.data).metadata()).isPalette).toBe(true);
    expect(palette!.data.length).toBeLessThan(lossless!.data.length);
    expect((await sharp(palette!.data).ensureAlpha().raw().toBuffer()).equals(await sharp(input).raw().toBuffer())).toBe(false);
  });
});
