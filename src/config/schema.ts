import { availableParallelism } from 'node:os';
import { z } from 'zod';

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
  width: dimension,
  height: dimension,
  fit: z.enum(FITS).default('inside'),
  /** Where a `cover` crop keeps its pixels; `attention` uses sharp's saliency strategy. */
  position: z.enum(CROP_POSITIONS).default('center'),
});

/** A size's name, which is also its output folder's: nothing that could name another path. */
export const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const variantName = z.string().regex(VARIANT_NAME, 'expected a name of letters, digits, - or _');

const watermarkSchema = z
  .strictObject({
    text: z.string().min(1).max(200).optional(),
    image: z.string().min(1).optional(),
    position: z.enum(GRAVITIES).default('bottom-right'),
    opacity: z.number().min(0).max(1).default(0.6),
    /** Width of the mark as a fraction of the output width. */
    size: z.number().gt(0).max(1).default(0.3),
    /** Gap to the edges as a fraction of the output's shorter side. */
    margin: z.number().min(0).max(0.25).default(0.03),
  })
  .refine((w) => Boolean(w.text) !== Boolean(w.image), {
    message: 'expected exactly one of watermark.text or watermark.image',
  });

const limitsSchema = z.strictObject({
  /** Decoding stops before allocating anything larger (pixel bombs). */
  maxPixels: z.number().int().min(1).default(100_000_000),
  /** Larger inputs are refused without being read. */
  maxFileSize: z.number().int().min(1).default(50 * 1024 * 1024),
  /** SVG is untrusted markup: off unless asked for. */
  allowSvg: z.boolean().default(false),
});

const s3Schema = z.strictObject({
  region: z.string().min(1).optional(),
  profile: z.string().min(1).optional(),
  /** An S3-compatible endpoint; a bare `host:port` would parse as a URL with scheme `host:`, so the scheme is checked. */
  endpoint: z
    .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL, such as http://127.0.0.1:9000' })
    // A path would be taken for part of every key, and the bucket would not be found ("NoSuchBucket").
    .refine((url) => !URL.canParse(url) || ['', '/'].includes(new URL(url).pathname), { message: 'expected an endpoint without a path, such as http://127.0.0.1:9000 (the bucket goes in s3://bucket/prefix/)' })
    .optional(),
  maxAttempts: z.number().int().min(1).max(20).default(5),
  /** The SDK's retry modes; `adaptive` also rate-limits the client after throttling (503 SlowDown). */
  retryMode: z.enum(['standard', 'adaptive']).default('standard'),
  cacheControl: z.string().min(1).default('public, max-age=31536000, immutable'),
});

/** The original Python Lambda's two boxes. */
export const DEFAULT_SIZES = {
  thumb: { width: 128, height: 128, fit: 'inside', position: 'center' },
  medium: { width: 512, height: 512, fit: 'inside', position: 'center' },
} as const;

/** The single source of truth for configuration; every type below is derived from it. */
export const configSchema = z.strictObject({
  sizes: z
    .record(variantName, sizeSchema)
    .refine((s) => Object.keys(s).length > 0, { message: 'expected at least one size' })
    .default(() => ({ ...DEFAULT_SIZES })),
  formats: z.array(formatName).min(1).default(['jpeg'])
    .refine((f) => new Set(f).size === f.length, { message: 'expected each format at most once' }),
  quality: z.number().int().min(1).max(100).default(85),
  /** JPEG has no alpha: transparent pixels are flattened onto this colour. */
  background: z.string().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'expected a hex colour like #ffffff').default('#ffffff'),
  keepMetadata: z.enum(METADATA_MODES).default('none'),
  /**
   * PNG output as a 256-colour palette with dithering: several times smaller, but banding in smooth
   * gradients (skies). Off: PNG is lossless truecolour, with alpha where the input has it.
   */
  pngPalette: z.boolean().default(false),
  /** Keep animation (WebP output only); otherwise the first frame is used. */
  animated: z.boolean().default(false),
  watermark: watermarkSchema.nullable().default(null),
  limits: limitsSchema.default(() => limitsSchema.parse({})),
  concurrency: z.number().int().min(1).max(64).default(() => availableParallelism()),
  s3: s3Schema.default(() => s3Schema.parse({})),
});

/** A fully resolved configuration (defaults applied). */
export type Config = z.output<typeof configSchema>;
/** What a config file or the flags may contain, before defaults. */
export type ConfigInput = z.input<typeof configSchema>;
export type SizeSpec = Config['sizes'][string];
export type WatermarkSpec = NonNullable<Config['watermark']>;
export type Limits = Config['limits'];
