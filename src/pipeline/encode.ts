import sharp, { type OverlayOptions } from 'sharp';
import type { Config, OutputFormat } from '../config/schema.js';

export interface Encoded {
  data: Buffer;
  width: number;
  height: number;
}

/** Encodes one variant in one format: watermark on top, alpha flattened for JPEG, metadata as configured. */
export async function encodeVariant(
  variant: Buffer,
  format: OutputFormat,
  config: Pick<Config, 'quality' | 'background' | 'keepMetadata'>,
  overlay: OverlayOptions | undefined,
): Promise<Encoded> {
  let image = sharp(variant);
  if (overlay) image = image.composite([overlay]);
  if (format === 'jpeg') image = image.flatten({ background: config.background });
  // Pixels are already sRGB; tagging them says so to colour-managed viewers.
  if (config.keepMetadata !== 'none') image = image.withIccProfile('srgb');
  if (config.keepMetadata === 'all') image = image.keepExif().keepXmp();
  const quality = config.quality;
  switch (format) {
    case 'jpeg':
      image = image.jpeg({ quality, progressive: true, mozjpeg: false, optimiseCoding: true });
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
  return { data, width: info.width, height: info.height };
}
