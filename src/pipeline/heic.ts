import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { deflateSync } from 'node:zlib';
import { ImgPipelineError, InputError, PipelineError } from '../errors.js';
import type { RawLayout } from './resize.js';

/**
 * HEIC (HEVC in HEIF) through libheif compiled to WebAssembly (the `libheif-js` package), for sharp builds
 * whose libheif has no HEVC decoder (the prebuilt ones: HEVC is patent-encumbered). Loaded on the first
 * HEIC only, so JPEG-only runs and Lambda cold starts never pay for it.
 */

/** The part of libheif-js's embind API used here (libheif-wasm/libheif.d.ts has all of it). */
interface HeifError {
  code: unknown;
  message: string;
}
interface HeifChannel {
  id: unknown;
  width: number;
  height: number;
  stride: number;
  data: Uint8Array;
}
interface HeifDecodedImage {
  code?: unknown;
  image: unknown;
  channels: HeifChannel[];
}
interface Libheif {
  heif_error_Ok: unknown;
  heif_colorspace_RGB: unknown;
  heif_chroma_interleaved_RGB: unknown;
  heif_chroma_interleaved_RGBA: unknown;
  heif_channel_interleaved: unknown;
  heif_context_alloc(): unknown;
  heif_context_free(context: unknown): void;
  heif_context_read_from_memory(context: unknown, data: Uint8Array): HeifError;
  heif_js_context_get_primary_image_handle(context: unknown): unknown;
  heif_image_handle_get_width(handle: unknown): number;
  heif_image_handle_get_height(handle: unknown): number;
  heif_image_handle_has_alpha_channel(handle: unknown): number;
  heif_image_handle_release(handle: unknown): void;
  /** Synchronous in 1.23; libheif-js's own code awaits it, so this does too. */
  heif_js_decode_image2(handle: unknown, colorspace: unknown, chroma: unknown): HeifDecodedImage | undefined | Promise<HeifDecodedImage | undefined>;
  heif_image_release(image: unknown): void;
}

let loading: Promise<Libheif> | undefined;
/** The decode in progress: the next one waits for it (see decodeHeic). */
let previous: Promise<unknown> = Promise.resolve();

/**
 * The WASM build, instantiated once per process. The `.wasm` is read from the package (not the variant
 * that inlines it as base64, 40% larger), resolved from this file so it is found from dist/, from the
 * bundled CLI and from the Lambda zip, which carries node_modules/libheif-js (deploy/package.ts).
 */
async function loadLibheif(): Promise<Libheif> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmBinary = await readFile(require.resolve('libheif-js/libheif-wasm/libheif.wasm'));
    const factory = require('libheif-js/libheif-wasm/libheif.js') as (options: { wasmBinary: Buffer }) => Libheif;
    // Given the bytes, Emscripten instantiates synchronously: the module is usable on return.
    return factory({ wasmBinary });
  })().catch((error: unknown) => {
    loading = undefined;
    throw new PipelineError('HEIC_DECODER_UNAVAILABLE', `cannot load the HEIC decoder (libheif-js): ${(error as Error).message}`, { cause: error });
  });
  return loading;
}

/** Pixels of a HEIC's primary image, upright (libheif applies irot/imir/clap itself). */
export interface HeicPixels {
  data: Buffer;
  raw: RawLayout;
}

/**
 * Decodes the primary image of a HEIC to 8-bit RGB(A). libheif applies the file's rotation, mirroring and
 * crop while decoding, and HEIF readers must ignore EXIF orientation, so the caller must not rotate again.
 */
export function decodeHeic(input: Buffer, maxPixels: number): Promise<HeicPixels> {
  // One at a time per process: there is one WASM instance, and a second decode growing its memory would
  // detach the views of the first one's pixels ("Cannot perform Construct on a detached ArrayBuffer").
  const decoding = previous.then(() => decodeExclusive(input, maxPixels)).catch((error: unknown) => {
    if (error instanceof ImgPipelineError) throw error;
    // A trap inside the WASM (a file that drives libheif out of bounds) may leave the instance broken:
    // the next HEIC gets a new one, and this file fails alone.
    loading = undefined;
    throw new InputError('INPUT_CORRUPT', `corrupt or truncated heic: the decoder failed (${(error as Error).message})`, { cause: error });
  });
  previous = decoding.catch(() => undefined);
  return decoding;
}

async function decodeExclusive(input: Buffer, maxPixels: number): Promise<HeicPixels> {
  const libheif = await loadLibheif();
  const context = libheif.heif_context_alloc();
  let handle: unknown;
  try {
    const error = libheif.heif_context_read_from_memory(context, input);
    if (error.code !== libheif.heif_error_Ok) throw corrupt(error.message);
    handle = libheif.heif_js_context_get_primary_image_handle(context);
    if (!handle || (handle as { code?: unknown }).code !== undefined) throw corrupt('no primary image');
    const width = libheif.heif_image_handle_get_width(handle);
    const height = libheif.heif_image_handle_get_height(handle);
    // Already checked on sharp's reading of the header; libheif's own reading is what it would allocate.
    if (width * height > maxPixels) {
      throw new InputError('INPUT_TOO_MANY_PIXELS', `image declares ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels} (limits.maxPixels)`);
    }
    const channels = libheif.heif_image_handle_has_alpha_channel(handle) ? 4 : 3;
    const chroma = channels === 4 ? libheif.heif_chroma_interleaved_RGBA : libheif.heif_chroma_interleaved_RGB;
    const image = await libheif.heif_js_decode_image2(handle, libheif.heif_colorspace_RGB, chroma);
    if (!image || image.code !== undefined) throw corrupt('the HEVC data does not decode');
    try {
      const plane = image.channels.find((c) => c.id === libheif.heif_channel_interleaved);
      if (!plane) throw corrupt('no interleaved RGB plane');
      return { data: unstride(plane, channels), raw: { width: plane.width, height: plane.height, channels } };
    } finally {
      libheif.heif_image_release(image.image);
    }
  } finally {
    if (handle) libheif.heif_image_handle_release(handle);
    libheif.heif_context_free(context);
  }
}

function corrupt(reason: string): InputError {
  return new InputError('INPUT_CORRUPT', `corrupt or truncated heic: ${reason}`);
}

/** Copies a plane out of WASM memory into a tightly packed Buffer (rows may be padded to `stride`). */
function unstride(plane: HeifChannel, channels: number): Buffer {
  const row = plane.width * channels;
  if (plane.stride === row) return Buffer.from(plane.data.subarray(0, row * plane.height));
  const out = Buffer.allocUnsafe(row * plane.height);
  for (let y = 0; y < plane.height; y += 1) out.set(plane.data.subarray(y * plane.stride, y * plane.stride + row), y * row);
  return out;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** PNG's CRC-32 (zlib.crc32 is only in Node 20.15+). */
function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A PNG with an ICC profile inserted (an iCCP chunk after IHDR). sharp takes no colour profile with raw
 * pixels, but converts an embedded one to sRGB when it decodes: this is how a HEIC's Display P3 (or any
 * other) profile reaches that conversion.
 */
export function embedIccProfile(png: Buffer, icc: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]);
  const chunk = Buffer.alloc(body.length + 12);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  // Signature (8 bytes), then IHDR: length (4), type (4), 13 bytes of data, CRC (4).
  const afterHeader = 8 + 4 + 4 + 13 + 4;
  return Buffer.concat([png.subarray(0, afterHeader), chunk, png.subarray(afterHeader)]);
}
