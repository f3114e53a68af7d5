import { availableParallelism } from 'node:os';
import * as z from 'zod';
import { SIDECAR_FOLDER, VARIANT_NAME } from '../pipeline/layout.js';
import { DEFAULT_SIZES } from './default-sizes.js';

/** Output formats the pipeline can encode, in the order they are written. */
export const FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
export type OutputFormat = (typeof FORMATS)[number];

/** A format name as written: `jpg` is taken for `jpeg`, since that is the extension everyone types. */
const formatName = z.enum([...FORMATS, 'jpg']).transform((f): OutputFormat => (f === 'jpg' ? 'jpeg' : f));

/** The nine places a watermark can sit. */
export const GRAVITIES = [
  'top-left', 'top', 'top-right',
  'left', 'center', 'right',
  'bottom-left', 'bottom', 'bottom-right',
] as const;
export type Gravity = (typeof GRAVITIES)[number];

export const FITS = ['inside', 'cover', 'contain'] as const;
export const CROP_POSITIONS = ['center', 'attention', 'entropy'] as const;
export const METADATA_MODES = ['none', 'icc', 'all'] as const;

const dimension = z.number().int().min(1).max(16384);

const sizeSchema = z.strictObject({
  width: dimension.describe('Box width in pixels.'),
  height: dimension.describe('Box height in pixels.'),
  fit: z.enum(FITS).default('inside').describe('`inside` keeps the aspect ratio and fits in the box; `cover` fills the box and crops; `contain` fits and pads.'),
  position: z.enum(CROP_POSITIONS).default('center').describe('What a `cover` crop keeps: the `center`, the most salient part (`attention`, sharp\'s strategy) or the busiest (`entropy`).'),
}).superRefine((size, ctx) => {
  // The same refusal as `--crop` without `--fit cover`: a position that could not take effect is a mistake.
  if (size.fit !== 'cover' && size.position !== 'center') {
    ctx.addIssue({ code: 'custom', path: ['position'], message: `expected "center" (or fit "cover") with fit "${size.fit}", received "${size.position}": only a cover crop has a part to keep, ${size.fit} keeps the whole image` });
  }
});

const variantName = z.string().regex(VARIANT_NAME, 'expected a name of letters, digits, - or _');

const watermarkSchema = z
  .strictObject({
    text: z.string().min(1).max(200).optional().describe('Text to draw, in the bundled DejaVu Sans Bold.'),
    image: z.string().min(1).optional().describe('Image to overlay instead (PNG with alpha), as a path relative to the config file.'),
    position: z.enum(GRAVITIES).default('bottom-right').describe('Where the mark sits.'),
    opacity: z.number().min(0).max(1).default(0.6).describe('Opacity of the mark.'),
    size: z.number().gt(0).max(1).default(0.3).describe('Width of the mark as a fraction of the output width.'),
    margin: z.number().min(0).max(0.25).default(0.03).describe('Gap to the edges as a fraction of the output\'s shorter side.'),
  })
  .refine((w) => Boolean(w.text) !== Boolean(w.image), {
    message: 'expected exactly one of watermark.text or watermark.image',
  });

const limitsSchema = z.strictObject({
  maxPixels: z.number().int().min(1).default(100_000_000).describe('Inputs with more pixels are refused from the header, before any pixel is allocated (pixel bombs).'),
  maxFileSize: z.number().int().min(1).default(50 * 1024 * 1024).describe('Inputs larger than this many bytes are refused without being read or downloaded.'),
  allowSvg: z.boolean().default(false).describe('Process SVG input, which is refused by default: it is markup that can reference other files and URLs.'),
});

const s3Schema = z.strictObject({
  region: z.string().min(1).optional().describe('Region of the buckets (unset: `AWS_REGION`, else the profile\'s).'),
  profile: z.string().min(1).optional().describe('AWS profile (unset: the standard credential chain).'),
  // A bare `host:port` would parse as a URL with scheme `host:`, so the scheme is checked; a path would be
  // taken for part of every key, and the bucket would not be found ("NoSuchBucket").
  endpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL, such as http://127.0.0.1:9000' })
    .refine((url) => !URL.canParse(url) || ['', '/'].includes(new URL(url).pathname), { message: 'expected an endpoint without a path, such as http://127.0.0.1:9000 (the bucket goes in s3://bucket/prefix/)' })
    .optional()
    .describe('An S3-compatible endpoint (MinIO, R2, LocalStack), addressed path-style, without a path.'),
  maxAttempts: z.number().int().min(1).max(20).default(5).describe('Attempts per S3 request, retries included.'),
  retryMode: z.enum(['standard', 'adaptive']).default('standard').describe('The SDK\'s retry mode: `adaptive` also slows the client down after throttling (`503 SlowDown`).'),
  cacheControl: z.string().min(1).default('public, max-age=31536000, immutable').describe('`Cache-Control` of every uploaded output.'),
  // 32 covers 150 ms round trips at hundreds of images a second; more only helps a faster machine.
  connections: z.number().int().min(2).max(1024).default(32)
    .describe('HTTP connections to S3, kept alive and reused: half carry downloads, half uploads (plus a few for listings).'),
  readAheadBytes: z.number().int().min(1).default(64 * 1024 * 1024)
    .describe('Bytes of S3 inputs downloading or downloaded and not yet through the decoder, at most: how far downloads run ahead. One larger object still runs, alone.'),
  writeBehindBytes: z.number().int().min(1).default(32 * 1024 * 1024)
    .describe('Bytes of encoded outputs waiting for their S3 uploads, at most: how far uploads trail the decoders. One larger image still runs, alone.'),
});

export { DEFAULT_SIZES };

/** The single source of truth for configuration; every type below is derived from it. */
export const configSchema = z.strictObject({
  sizes: z
    .record(variantName, sizeSchema)
    .refine((s) => Object.keys(s).length > 0, { message: 'expected at least one size' })
    .default(() => ({ ...DEFAULT_SIZES }))
    .describe('Named boxes; each name (letters, digits, `-`, `_`) is an output folder `<out>/<name>/`.'),
  formats: z.array(formatName).min(1).default(['jpeg'])
    .refine((f) => new Set(f).size === f.length, { message: 'expected each format at most once' })
    .describe('Output formats, each at most once, written side by side; `jpg` is taken for `jpeg`.'),
  quality: z.number().int().min(1).max(100).default(85).describe('Encoder quality for jpeg, webp and avif.'),
  background: z.string().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'expected a hex colour like #ffffff').default('#ffffff')
    .describe('Hex colour that transparency is flattened onto for JPEG, which has no alpha.'),
  keepMetadata: z.enum(METADATA_MODES).default('none')
    .describe('`none` strips EXIF, XMP and ICC; `icc` tags outputs with the sRGB profile; `all` also keeps EXIF and XMP, GPS included.'),
  pngPalette: z.boolean().default(false)
    .describe('PNG as a 256-colour palette with dithering: several times smaller, but banding in smooth gradients (skies). Off: lossless truecolour, with alpha where the input has it.'),
  animated: z.boolean().default(false).describe('Keep animation in WebP output; other formats take the first frame.'),
  sidecar: z.boolean().default(false)
    .describe('Also write `<out>/meta/<input key>.json` per image: source size, colour, ThumbHash and blur placeholders, outputs, srcset.'),
  watermark: watermarkSchema.nullable().default(null).describe('`null` (off), or a mark with exactly one of `text` or `image`.'),
  limits: limitsSchema.default(() => limitsSchema.parse({})).describe('Limits for untrusted input.'),
  // The default depends on the machine, so the docs name it instead of printing this machine's value.
  concurrency: z.number().int().min(1).max(64).default(() => availableParallelism())
    .meta({ description: 'Images processed at once.', defaultDescription: 'the number of CPU cores' }),
  s3: s3Schema.default(() => s3Schema.parse({})).describe('Settings for `s3://` inputs and outputs.'),
}).refine((c) => !c.sidecar || !Object.hasOwn(c.sizes, SIDECAR_FOLDER), {
  message: `expected no size named "${SIDECAR_FOLDER}" with sidecar on: sidecars are written under ${SIDECAR_FOLDER}/`,
  path: ['sizes', SIDECAR_FOLDER],
});

/** A fully resolved configuration (defaults applied). */
export type Config = z.output<typeof configSchema>;
/** What a config file or the flags may contain, before defaults. */
export type ConfigInput = z.input<typeof configSchema>;
export type SizeSpec = Config['sizes'][string];
export type WatermarkSpec = NonNullable<Config['watermark']>;
export type Limits = Config['limits'];
