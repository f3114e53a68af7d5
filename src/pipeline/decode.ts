import sharp, { type Metadata } from 'sharp';
import type { Limits, SizeSpec } from '../config/schema.js';
import { InputError } from '../errors.js';
import { decodeTarget, toFrames, type Frames } from './resize.js';

/** What the header says about an input, read without decoding pixels. */
export interface InputInfo {
  format: string;
  /** Dimensions after EXIF orientation is applied. */
  width: number;
  height: number;
  pages: number;
}

/** The one decode of an input: sRGB pixels at the size the largest variant needs (frames: see `toFrames`). */
export interface Decoded extends Frames {
  input: InputInfo;
}

/** Formats we decode; anything else sharp might sniff (PDF, raw vips, magick...) is refused. */
const DECODABLE = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'svg']);

/** Markup after an optional BOM and any amount of XML whitespace (librsvg skips all of it, not just a few bytes). */
function looksLikeMarkup(input: Buffer): boolean {
  let i = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? 3 : 0;
  while (input[i] === 0x20 || input[i] === 0x09 || input[i] === 0x0a || input[i] === 0x0d) i += 1;
  return input[i] === 0x3c;
}

/** gzip's magic number: librsvg inflates gzipped SVG (SVGZ), and no raster format we take starts this way. */
function looksGzipped(input: Buffer): boolean {
  return input[0] === 0x1f && input[1] === 0x8b;
}

function svgRefused(): InputError {
  return new InputError('INPUT_REFUSED', 'SVG/XML input is refused because it is untrusted markup; pass --allow-svg to process it');
}

/** Reads the header, applying the safety checks, before any pixel is allocated. */
export async function inspectInput(input: Buffer, limits: Limits): Promise<InputInfo> {
  if (input.length === 0) throw new InputError('INPUT_EMPTY', 'empty file (0 bytes)');
  if (input.length > limits.maxFileSize) {
    throw new InputError('INPUT_TOO_LARGE', `file is ${input.length} bytes, over the limit of ${limits.maxFileSize} (limits.maxFileSize)`);
  }
  // Refuse SVG before anything parses it: it is untrusted markup that can reference other files and URLs.
  if (!limits.allowSvg && looksLikeMarkup(input)) throw svgRefused();
  if (!limits.allowSvg && looksGzipped(input)) {
    throw new InputError('INPUT_REFUSED', 'gzip-compressed input is refused: it may be SVG (SVGZ), which is untrusted markup; pass --allow-svg to process it');
  }
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new InputError('INPUT_NOT_IMAGE', `not a readable image (${(error as Error).message.split('\n')[0]})`, { cause: error });
  }
  const format = meta.format === 'heif' && meta.compression === 'hevc' ? 'heic' : meta.format;
  // Whatever slipped past the sniff above and still reads as SVG is refused before anything renders it.
  if (format === 'svg' && !limits.allowSvg) throw svgRefused();
  if (!DECODABLE.has(format)) {
    const hint = format === 'heic' ? ': this sharp build decodes AVIF but not HEIC (HEVC is patent-encumbered)' : '';
    throw new InputError('INPUT_UNSUPPORTED', `unsupported format ${format}${hint}`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new InputError('INPUT_NOT_IMAGE', `image header of ${format} has no dimensions`);
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw new InputError('INPUT_TOO_MANY_PIXELS', `image declares ${width}×${height} = ${pixels} pixels, over the limit of ${limits.maxPixels} (limits.maxPixels)`);
  }
  return { format, width, height, pages: meta.pages ?? 1 };
}

/**
 * Decodes once, oriented and in sRGB, shrinking on load to the smallest size every variant can be cut from.
 * sharp's JPEG and WebP loaders then skip most of the work for large photos.
 */
export async function decodeInput(input: Buffer, info: InputInfo, sizes: readonly SizeSpec[], limits: Limits, keepMetadata: boolean, animated = false): Promise<Decoded> {
  const target = decodeTarget(info.width, info.height, sizes);
  const animate = animated && info.pages > 1;
  // Every frame is decoded at once, so the limit applies to all of them together.
  if (animate && info.width * info.height * info.pages > limits.maxPixels) {
    throw new InputError('INPUT_TOO_MANY_PIXELS', `animation of ${info.pages} frames of ${info.width}×${info.height} is over the limit of ${limits.maxPixels} pixels (limits.maxPixels)`);
  }
  // Frames are stacked into one tall image; sharp resizes each frame and TIFF keeps them as pages.
  let image = sharp(input, { limitInputPixels: limits.maxPixels * (animate ? info.pages : 1), failOn: 'error', sequentialRead: true, ...(animate ? { pages: -1 } : {}) }).autoOrient();
  if (target) image = image.resize(target.width, target.height, { fit: 'fill' });
  image = image.toColourspace('srgb');
  if (keepMetadata) image = image.keepExif().keepXmp();
  try {
    return { ...(await toFrames(image, keepMetadata, animate ? info.pages : 1)), input: info };
  } catch (error) {
    // libvips prefixes its loader name ("VipsJpeg: premature end of JPEG image"); keep only the reason.
    const reason = ((error as Error).message.split('\n')[0] ?? '').replace(/^Vips\w+:\s*/, '') || 'unknown decoder error';
    throw new InputError('INPUT_CORRUPT', `corrupt or truncated ${info.format}: ${reason}`, { cause: error });
  }
}
