import type { Config, OutputFormat } from '../config/schema.js';
import { openFrames, type Frames } from './resize.js';
import { markLayers, type Mark } from './watermark.js';

export interface Encoded {
  data: Buffer;
  width: number;
  height: number;
}

/**
 * Encodes one variant in one format: the mark on top (when not already blended in), alpha flattened for
 * JPEG, metadata as configured. A variant of several frames stays animated in WebP; other formats take frame 1.
 */
export async function encodeVariant(
  variant: Frames,
  format: OutputFormat,
  config: Pick<Config, 'quality' | 'background' | 'keepMetadata'> & Partial<Pick<Config, 'pngPalette'>>,
  mark: Mark | undefined,
): Promise<Encoded> {
  const pages = format === 'webp' ? variant.pages : 1;
  let image = openFrames(variant, pages > 1);
  if (mark) image = image.composite(markLayers(mark, pages, variant.height));
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
      // sharp's `effort` and `quality` for PNG switch on palette quantisation (256 colours, dithered):
      // only on request. Lossless otherwise, at zlib level 9 (outputs are written once, read often).
      image = image.png(config.pngPalette ? { palette: true, quality, effort: 7, compressionLevel: 9 } : { compressionLevel: 9 });
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
