import sharp, { type Sharp } from 'sharp';
import type { SizeSpec } from '../config/schema.js';

/** Raw pixel layout, as sharp reports and accepts it. */
export interface RawLayout {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * Pixels handed from one stage to the next. Usually raw (`raw` set): nothing to parse when reopened, and
 * a watermark can be blended in place. When EXIF/XMP must ride along or an animation keeps its frames,
 * an uncompressed container instead: TIFF keeps frames as pages, and PNG carries EXIF (TIFF drops it).
 */
export interface Frames {
  image: Buffer;
  width: number;
  /** One frame's height. */
  height: number;
  pages: number;
  raw?: RawLayout;
}

/** Runs `image` and hands its pixels on as Frames. */
export async function toFrames(image: Sharp, keepMetadata: boolean, pages: number): Promise<Frames> {
  if (!keepMetadata && pages <= 1) {
    const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
    return { image: data, width: info.width, height: info.height, pages: 1, raw: { width: info.width, height: info.height, channels: info.channels } };
  }
  const container = keepMetadata && pages <= 1 ? image.png({ compressionLevel: 0 }) : image.tiff({ compression: 'none' });
  const { data, info } = await container.toBuffer({ resolveWithObject: true });
  return { image: data, width: info.width, height: info.pageHeight ?? info.height, pages: info.pages ?? 1 };
}

/** A sharp pipeline reading Frames back: every frame, or only the first. */
export function openFrames(frames: Frames, allFrames = true): Sharp {
  return frames.raw ? sharp(frames.image, { raw: frames.raw }) : sharp(frames.image, allFrames ? { pages: -1 } : {});
}

/** How much a source of `width`×`height` must be scaled to fill one variant's box (never above 1: no enlarging). */
export function variantScale(width: number, height: number, size: SizeSpec): number {
  const sx = size.width / width;
  const sy = size.height / height;
  return Math.min(1, size.fit === 'cover' ? Math.max(sx, sy) : Math.min(sx, sy));
}

/** The size to decode at so that every variant is a downscale of it, or undefined to keep full size. */
export function decodeTarget(width: number, height: number, sizes: readonly SizeSpec[]): { width: number; height: number } | undefined {
  const scale = Math.max(...sizes.map((s) => variantScale(width, height, s)));
  if (scale >= 1) return undefined;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

const SHARP_POSITIONS = { center: 'centre', attention: sharp.strategy.attention, entropy: sharp.strategy.entropy } as const;

/** One variant, cut from the decoded pixels; `contain` pads with transparency (flattened later for JPEG). */
export async function resizeVariant(decoded: Frames, size: SizeSpec, keepMetadata: boolean): Promise<Frames> {
  // The largest `inside` variant is usually the decode itself: skip a pass that would copy it unchanged.
  if (size.fit === 'inside' && variantScale(decoded.width, decoded.height, size) >= 1) return decoded;
  let image = openFrames(decoded).resize(size.width, size.height, {
    fit: size.fit,
    position: SHARP_POSITIONS[size.position],
    withoutEnlargement: true,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  });
  if (size.fit === 'contain') image = image.ensureAlpha();
  if (keepMetadata) image = image.keepExif().keepXmp();
  return toFrames(image, keepMetadata, decoded.pages);
}
