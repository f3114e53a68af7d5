import sharp, { type Metadata, type Sharp } from 'sharp';
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
const DECODABLE = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'heic', 'svg']);

/** An 8×8 HEVC HEIC (heif-enc 1.15, x265): decoding it tells whether this sharp's libheif has an HEVC decoder. */
const HEVC_PROBE = Buffer.from(
  'AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAa1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAAAA5waXRtAAAAAAACAAAAEGlkYXQAAAAAAAgACAAAADhpbG9jAQAAAERAAAIAAQAAAAAAAAHRAAEAAAAAAAAAJgACAAEAAAAAAAAAAQAAAAAAAAAIAAAAOGlpbmYAAAAAAAIAAAAVaW5mZQIAAAEAAQAAaHZjMQAAAAAVaW5mZQIAAAAAAgAAZ3JpZAAAAADYaXBycAAAALZpcGNvAAAAdmh2Y0MBA3AAAAAAAAAAAAAe8AD8/fj4AAAPAyAAAQAYQAEMAf//A3AAAAMAkAAAAwAAAwAeugJAIQABACpCAQEDcAAAAwCQAAADAAADAB6gIIEFluqumubgQEDAgAAAAwCAAAADAIQiAAEABkQBwXPBiQAAABRpc3BlAAAAAAAAAEAAAABAAAAAFGlzcGUAAAAAAAAACAAAAAgAAAAQcGl4aQAAAAADCAgIAAAAGmlwbWEAAAAAAAAAAgABAoECAAICA4QAAAAaaXJlZgAAAAAAAAAOZGltZwACAAEAAQAAAC5tZGF0AAAAIigBrxMhHZb4W1MJiOssQLlMWCl5VyCTbsB4rzKHjr2vmmA=',
  'base64',
);

let sharpHevc: Promise<boolean> | undefined;

/** Whether sharp itself decodes HEVC (a libvips built with libde265 does); asked once per process. */
export function sharpDecodesHevc(): Promise<boolean> {
  sharpHevc ??= sharp(HEVC_PROBE).raw().toBuffer().then(() => true, () => false);
  return sharpHevc;
}

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
  if (!DECODABLE.has(format)) throw new InputError('INPUT_UNSUPPORTED', `unsupported format ${format}`);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new InputError('INPUT_NOT_IMAGE', `image header of ${format} has no dimensions`);
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw new InputError('INPUT_TOO_MANY_PIXELS', `image declares ${width}×${height} = ${pixels} pixels, over the limit of ${limits.maxPixels} (limits.maxPixels)`);
  }
  // A HEIC's other images (bursts, depth, alternates) are not frames of an animation: only the primary is read.
  return { format, width, height, pages: format === 'heic' ? 1 : (meta.pages ?? 1) };
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
  if (info.format === 'heic' && !(await sharpDecodesHevc())) return decodeHeicInput(input, info, target, limits);
  // Frames are stacked into one tall image; sharp resizes each frame and TIFF keeps them as pages.
  let image = sharp(input, { limitInputPixels: limits.maxPixels * (animate ? info.pages : 1), failOn: 'error', sequentialRead: true, ...(animate ? { pages: -1 } : {}) }).autoOrient();
  if (target) image = image.resize(target.width, target.height, { fit: 'fill' });
  image = image.toColourspace('srgb');
  if (keepMetadata) image = image.keepExif().keepXmp();
  return finishDecode(image, info, keepMetadata, animate ? info.pages : 1);
}

async function finishDecode(image: Sharp, info: InputInfo, keepMetadata: boolean, pages: number): Promise<Decoded> {
  try {
    return { ...(await toFrames(image, keepMetadata, pages)), input: info };
  } catch (error) {
    // libvips prefixes its loader name ("VipsJpeg: premature end of JPEG image"); keep only the reason.
    const reason = ((error as Error).message.split('\n')[0] ?? '').replace(/^Vips\w+:\s*/, '') || 'unknown decoder error';
    throw new InputError('INPUT_CORRUPT', `corrupt or truncated ${info.format}: ${reason}`, { cause: error });
  }
}

/**
 * HEIC through the WASM libheif (pipeline/heic.ts, imported on the first HEIC), then the same shrink and
 * sRGB conversion as any input. The pixels come upright, so sharp must not rotate them again (a HEIC's
 * EXIF orientation only repeats what irot/imir did). An embedded profile (iPhones: Display P3) reaches
 * sharp's conversion inside a PNG, made after the shrink so that it costs little. EXIF/XMP are not
 * carried over from HEIC, even with keepMetadata: all.
 */
async function decodeHeicInput(input: Buffer, info: InputInfo, target: { width: number; height: number } | undefined, limits: Limits): Promise<Decoded> {
  const { decodeHeic, embedIccProfile } = await import('./heic.js');
  const { data, raw } = await decodeHeic(input, limits.maxPixels);
  let image = sharp(data, { raw, limitInputPixels: limits.maxPixels });
  if (target) image = image.resize(target.width, target.height, { fit: 'fill' });
  const { icc } = await sharp(input, { limitInputPixels: false }).metadata();
  if (icc) image = sharp(embedIccProfile(await image.png({ compressionLevel: 0 }).toBuffer(), icc), { limitInputPixels: limits.maxPixels });
  return finishDecode(image.toColourspace('srgb'), info, false, 1);
}
