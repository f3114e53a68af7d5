import sharp from 'sharp';
import type { SizeSpec } from '../config/schema.js';

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
export async function resizeVariant(decoded: Buffer, size: SizeSpec, keepMetadata: boolean): Promise<{ image: Buffer; width: number; height: number }> {
  let image = sharp(decoded).resize(size.width, size.height, {
    fit: size.fit,
    position: SHARP_POSITIONS[size.position],
    withoutEnlargement: true,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  });
  if (size.fit === 'contain') image = image.ensureAlpha();
  if (keepMetadata) image = image.keepExif().keepXmp();
  const { data, info } = await image.tiff({ compression: 'none' }).toBuffer({ resolveWithObject: true });
  return { image: data, width: info.width, height: info.height };
}
