import sharp, { type OverlayOptions } from 'sharp';
import type { Config, OutputFormat } from '../config/schema.js';

export interface Encoded {
  data: Buffer;
  width: number;
  height: number;
}

/**
 * Encodes one variant in one format: watermark on top, alpha flattened for JPEG, metadata as configured.
 * A variant of several frames (its `height` is one frame's) stays animated in WebP; other formats take frame 1.
 */
export async function encodeVariant(
  variant: Buffer,
  format: OutputFormat,
  config: Pick<Config, 'quality' | 'background' | 'keepMetadata'>,
  overlay: OverlayOptions | undefined,
  frames: { pages: number; height: number } = { pages: 1, height: 0 },
): Promise<Encoded> {
  const pages = format === 'webp' ? frames.pages : 1;
  let image = sharp(variant, pages > 1 ? { pages: -1 } : {});
  // Frames are stacked vertically in one image: the mark goes on each of them.
  if (overlay) image = image.composite(Array.from({ length: pages }, (_, p) => ({ ...overlay, top: (overlay.top ?? 0) + p * frames.height })));
  if (format === 'jpeg') image = image.flatten({ background: config.background });
  // Pixels are already sRGB; tagging them says so to colour-managed viewers.
  if (config.keepMetadata !== 'none') image = image.withIccProfile('srgb');
  if (config.keepMetadata === 'all') image = image.keepExif().keepXmp();
  const quality = config.quality;
  switch (format) {
    case 'jpeg':
      // Baseline, not progressive: progressive scans cost ~30% more encode time for little gain at thumbnail sizes.
      image = image.jpeg({ quality, optimiseCoding: true });
      break;
    case 'png':
      image = image.png({ compressionLevel: 9, effort: 4 });
      break;
    case 'webp':
      image = image.webp({ quality, effort: 4 });
      break;
    case 'avif':
      image = image.avif({ quality, effort: 4 });
      break;
  }
  const { data, info } = await image.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.pageHeight ?? info.height };
}
