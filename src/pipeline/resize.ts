import sharp, { type Sharp } from 'sharp';
import type { SizeSpec } from '../config/schema.js';

/**
 * Pixels handed from one stage to the next: uncompressed TIFF is the cheapest to write and reopen and keeps
 * the frames of an animation as pages. libvips' TIFF writer drops EXIF, though, so when all metadata is kept
 * a single frame goes through an uncompressed PNG instead, which carries EXIF and XMP.
 */
export function toIntermediate(image: Sharp, keepMetadata: boolean, pages: number): Sharp {
  return keepMetadata && pages <= 1 ? image.png({ compressionLevel: 0 }) : image.tiff({ compression: 'none' });
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
export async function resizeVariant(
  decoded: { image: Buffer; width: number; height: number; pages: number },
  size: SizeSpec,
  keepMetadata: boolean,
): Promise<{ image: Buffer; width: number; height: number; pages: number }> {
  // The largest `inside` variant is usually the decode itself: skip a pass that would copy it unchanged.
  if (size.fit === 'inside' && variantScale(decoded.width, decoded.height, size) >= 1) return decoded;
  // All pages: the decode holds several only when animation is kept, and sharp resizes each frame.
  let image = sharp(decoded.image, { pages: -1 }).resize(size.width, size.height, {
    fit: size.fit,
    position: SHARP_POSITIONS[size.position],
    withoutEnlargement: true,
    background: { r: 0, g: 0, b: 0, alpha: 0 },
  });
  if (size.fit === 'contain') image = image.ensureAlpha();
  if (keepMetadata) image = image.keepExif().keepXmp();
  const { data, info } = await toIntermediate(image, keepMetadata, decoded.pages).toBuffer({ resolveWithObject: true });
  return { image: data, width: info.width, height: info.pageHeight ?? info.height, pages: info.pages ?? 1 };
}
