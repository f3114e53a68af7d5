import sharp from 'sharp';
import { rgbaToThumbHash, thumbHashToRGBA } from 'thumbhash';
import { openFrames, type Frames } from './resize.js';

/** What a page shows while an image loads. */
export interface Placeholder {
  /** ThumbHash bytes in base64, decodable by the `thumbhash` package (`thumbHashToDataURL`). */
  thumbhash: string;
  /** The ThumbHash rendered as a tiny PNG (at most BLUR_SIZE px): a blurred preview, e.g. Next.js `blurDataURL`. */
  dataURL: string;
  /** The average colour, `#rrggbb`, weighted by opacity. */
  color: string;
}

/** ThumbHash takes at most 100×100 pixels. */
const THUMBHASH_SIZE = 100;
/** Longest side of the data URL image: about 300 bytes in base64, stretched and smoothed by the browser. */
const BLUR_SIZE = 10;

const hex = (n: number) => Math.round(n).toString(16).padStart(2, '0');

/**
 * Computes the placeholder from pixels already decoded (the first frame), shrunk to ThumbHash's 100 px:
 * no second decode of the source, and a few milliseconds per image.
 */
export async function computePlaceholder(decoded: Frames): Promise<Placeholder> {
  const { data, info } = await openFrames(decoded, false)
    .resize(THUMBHASH_SIZE, THUMBHASH_SIZE, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  let [r, g, b, weight] = [0, 0, 0, 0];
  let opaque = true;
  for (let i = 0; i < data.length; i += 4) {
    const alpha = data[i + 3]!;
    if (alpha < 255) opaque = false;
    r += data[i]! * alpha;
    g += data[i + 1]! * alpha;
    b += data[i + 2]! * alpha;
    weight += alpha;
  }
  const color = weight > 0 ? `#${[r, g, b].map((sum) => hex(sum / weight)).join('')}` : '#000000';
  const hash = rgbaToThumbHash(info.width, info.height, data);
  const rendered = thumbHashToRGBA(hash);
  let blur = sharp(Buffer.from(rendered.rgba), { raw: { width: rendered.w, height: rendered.h, channels: 4 } }).resize(BLUR_SIZE, BLUR_SIZE, { fit: 'inside', withoutEnlargement: true });
  if (opaque) blur = blur.removeAlpha();
  const png = await blur.png({ compressionLevel: 9 }).toBuffer();
  return { thumbhash: Buffer.from(hash).toString('base64'), dataURL: `data:image/png;base64,${png.toString('base64')}`, color };
}
