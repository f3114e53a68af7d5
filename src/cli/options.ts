import { Option, type Command } from 'commander';
import { FITS, FORMATS, GRAVITIES, METADATA_MODES, CROP_POSITIONS, type ConfigInput } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/** The pipeline flags, shared by `run` and `deploy` so both build the same config. */
export function addPipelineOptions(command: Command): Command {
  // Help groups (commander's optionsGroup) head the --help sections and the tables of docs/cli.md.
  return command
    .optionsGroup('Image options:')
    .option('-c, --config <file>', 'JSON config file (default: ./img-pipeline.config.json if present)')
    .option('--sizes <list>', 'named boxes name=WIDTHxHEIGHT, comma-separated, each name once (default thumb=128x128,medium=512x512)')
    .option('--fit <fit>', `how an image fits each box: ${FITS.join(' | ')} (default inside)`)
    .option('--crop <strategy>', `which part a cover crop keeps: ${CROP_POSITIONS.join(' | ')} (needs --fit cover; default center)`)
    .option('-f, --format <list>', `output formats, comma-separated: ${FORMATS.join(', ')} (jpg = jpeg; default jpeg)`)
    .option('-q, --quality <1-100>', 'encoder quality for jpeg, webp and avif (default 85)')
    .optionsGroup('Watermark options:')
    .option('--watermark <text>', 'draw this text on every output')
    .option('--watermark-image <file>', 'overlay this image (PNG with alpha) on every output')
    .option('--watermark-position <gravity>', `${GRAVITIES.join(' | ')} (default bottom-right)`)
    .option('--watermark-opacity <0-1>', 'watermark opacity (default 0.6)')
    .option('--watermark-size <0-1>', 'watermark width as a fraction of the output width (default 0.3)')
    .option('--watermark-margin <0-0.25>', 'gap to the edges as a fraction of the shorter side (default 0.03)')
    .option('--no-watermark', 'no watermark, even if the config file sets one')
    .optionsGroup('Image options:')
    .option('--background <hex>', 'colour that transparency is flattened onto for JPEG (default #ffffff)')
    // A required value: `--keep-metadata photos` must not take the input as its mode, and no bare flag
    // should mean `all`, which keeps GPS.
    .addOption(new Option('--keep-metadata <mode>', 'none: strip all; icc: tag outputs with the sRGB profile; all: also keep EXIF and XMP, GPS included (default none)').choices(METADATA_MODES))
    .option('--png-palette', 'PNG as 256 dithered colours: smaller files, banding in gradients (default: lossless truecolour)')
    .option('--animated', 'keep animation for WebP output (default: first frame only)')
    .option('--sidecar', 'also write <out>/meta/<input path>.json per image: size, colour, ThumbHash and blur placeholders, outputs, srcset')
    .optionsGroup('Limits (untrusted input):')
    .option('--max-pixels <n>', 'refuse inputs with more pixels than this (default 100000000)')
    .option('--max-file-size <size>', 'refuse inputs larger than this: bytes, or with KB, MB or GB, e.g. 512KB (default 50MB)')
    .option('--allow-svg', 'process SVG input (refused by default: untrusted markup)');
}

/** Flags for S3 inputs and outputs (the `s3` config section); `run` has them, `deploy` may add them too. */
export function addS3Options(command: Command): Command {
  return command
    .optionsGroup('S3 options:')
    .option('--profile <name>', 'AWS profile for S3 (default: the standard credential chain)')
    .option('--region <region>', 'AWS region of the buckets (default: AWS_REGION or the profile\'s region)')
    .option('--endpoint <url>', 'S3-compatible endpoint, path-style (MinIO, R2, LocalStack); AWS_ENDPOINT_URL_S3 also works')
    .option('--max-attempts <n>', 'attempts per S3 request, retries included (default 5)')
    .option('--cache-control <value>', 'Cache-Control of uploaded outputs (default "public, max-age=31536000, immutable")')
    .option('--connections <n>', 'HTTP connections to S3, kept alive: half download, half upload (default 32)')
    .option('--read-ahead <size>', 'S3 input bytes downloaded ahead of the decoders, at most, e.g. 256MB (default 64MB)')
    .option('--write-behind <size>', 'encoded bytes waiting for their S3 uploads, at most, e.g. 128MB (default 32MB)')
    // Keys per ListObjectsV2 page: only tests need anything but S3's 1000.
    .addOption(new Option('--s3-page-size <n>').hideHelp());
}

/** The account flags of `deploy` and `destroy`, which must name the same region and profile. */
export function addAccountOptions(command: Command): Command {
  return command
    .optionsGroup('AWS account options:')
    .option('--region <region>', 'AWS region (default: from the environment or profile)')
    .option('--profile <name>', 'AWS shared config profile');
}

/**
 * Lists -h, --help with the options of its own command (the group of the first one), here and in every
 * subcommand. Left alone, commander gives it a group of its own: a lone "Options:" heading ending --help.
 */
export function groupHelpOptions(command: Command): void {
  const heading = command.options.find((option) => option.helpGroupHeading)?.helpGroupHeading;
  if (heading) command.optionsGroup(heading).helpOption(true);
  for (const sub of command.commands) groupHelpOptions(sub);
}

/** The `s3` config layer from the S3 flags; undefined when none is given, so the file's values stand. */
function s3Flags(opts: Record<string, unknown>): Record<string, unknown> | undefined {
  const str = stringOptions(opts);
  const fields = {
    profile: str('profile'),
    region: str('region'),
    endpoint: str('endpoint'),
    maxAttempts: number(str('maxAttempts')),
    cacheControl: str('cacheControl'),
    connections: number(str('connections')),
    readAheadBytes: parseByteSize('--read-ahead', str('readAhead')),
    writeBehindBytes: parseByteSize('--write-behind', str('writeBehind')),
  };
  return Object.values(fields).some((v) => v !== undefined) ? fields : undefined;
}

/** A reader of commander's option bag: a flag's text, or undefined when it was not given (or is a switch). */
function stringOptions(opts: Record<string, unknown>): (name: string) => string | undefined {
  return (name) => (typeof opts[name] === 'string' ? (opts[name] as string) : undefined);
}

function number(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  // Non-numeric text goes through unchanged so the schema reports it as received.
  return /^[-+]?(\d+\.?\d*|\.\d+)(e\d+)?$/i.test(value.trim()) ? Number(value) : value;
}

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean);
}

const SIZE_PATTERN = /^([^=\s]+)=(\d+)x(\d+)$/i;

function parseSizes(value: string, fit: string | undefined, crop: string | undefined): Record<string, unknown> {
  const sizes: Record<string, unknown> = {};
  for (const item of list(value) ?? []) {
    const match = SIZE_PATTERN.exec(item);
    if (!match) throw new ConfigError('FLAG_INVALID', `--sizes: expected name=WIDTHxHEIGHT items separated by commas, received "${item}"`);
    // A second `a=` would silently replace the first: one output folder cannot hold two sizes.
    if (Object.hasOwn(sizes, match[1]!)) throw new ConfigError('FLAG_INVALID', `--sizes: expected each name once, received "${match[1]}" twice ("${value}")`);
    sizes[match[1]!] = { width: Number(match[2]), height: Number(match[3]), ...(fit ? { fit } : {}), ...(crop ? { position: crop } : {}) };
  }
  return sizes;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

function parseByteSize(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?b?)$/i.exec(value.trim());
  if (!match) throw new ConfigError('FLAG_INVALID', `${flag}: expected a size such as 500KB, 50MB or 1GB (a number of bytes, optionally followed by B, KB, MB or GB), received "${value}"`);
  return Math.round(Number(match[1]) * BYTE_UNITS[match[2]!.toLowerCase()]!);
}

/** Pairs of flags that contradict each other: given together, neither can be said to win. */
const CONTRADICTIONS = [
  ['--watermark', '--no-watermark'],
  ['--watermark-image', '--no-watermark'],
  ['--quiet', '--verbose'],
  ['--quiet', '--json'],
] as const;

/** Refuses contradictory flags on the command line (commander keeps only the last of `--x` / `--no-x`). */
export function refuseContradictions(args: readonly string[]): void {
  const end = args.indexOf('--');
  const flags = end < 0 ? args : args.slice(0, end);
  const given = (flag: string) => flags.some((a) => a === flag || a.startsWith(`${flag}=`));
  for (const [a, b] of CONTRADICTIONS) {
    if (given(a) && given(b)) throw new ConfigError('FLAG_CONFLICT', `${a} and ${b} contradict each other: give one of them`);
  }
}

/** Checks a flag's value against its choices here, so the message names the flag, not a config field. */
function oneOf(flag: string, value: string | undefined, choices: readonly string[]): string | undefined {
  if (value !== undefined && !choices.includes(value)) throw new ConfigError('FLAG_INVALID', `${flag}: expected one of ${choices.join(', ')}, received "${value}"`);
  return value;
}

/** What the pipeline flags say, as a config layer; flags not given are undefined. */
export interface PipelineFlags {
  layer: ConfigInput;
  /** `--fit` / `--crop` without `--sizes` apply to every configured size. */
  sizeOverrides: { fit?: string; position?: string };
}

/** Fails a flag whose text is empty or blank: it would name nothing, and the schema would say it twice. */
function nonBlank(flag: string, value: string | undefined, hint: string): string | undefined {
  if (value !== undefined && value.trim() === '') throw new ConfigError('FLAG_INVALID', `${flag}: expected ${hint}, received ${JSON.stringify(value)}`);
  return value;
}

/**
 * Turns commander's option bag into a config layer. Shapes are checked here, and mistakes only the flags can
 * make (an empty --watermark, a --crop that cannot crop), so that their errors name the flag; values are
 * checked by the schema.
 */
export function pipelineFlags(opts: Record<string, unknown>): PipelineFlags {
  const str = stringOptions(opts);
  const fit = oneOf('--fit', str('fit'), FITS);
  const crop = oneOf('--crop', str('crop'), CROP_POSITIONS);
  const sizesFlag = str('sizes');
  // With --sizes, or with --fit, the flags set every size's fit: a crop position only matters for cover.
  // (With neither, the config file decides the fit; loadConfig checks that case.)
  if (crop !== undefined && (fit !== undefined || sizesFlag !== undefined) && fit !== 'cover') {
    throw new ConfigError('FLAG_INVALID', `--crop ${crop} needs --fit cover: with --fit ${fit ?? 'inside'} the whole image is kept, so there is nothing to crop`);
  }
  let watermark: Record<string, unknown> | null | undefined;
  if (opts['watermark'] === false) watermark = null;
  else {
    const text = nonBlank('--watermark', str('watermark'), 'the text to draw (--no-watermark turns the watermark off)');
    const image = nonBlank('--watermark-image', str('watermarkImage'), 'an image file');
    if (text !== undefined && image !== undefined) {
      throw new ConfigError('FLAG_INVALID', '--watermark and --watermark-image: expected one of them, received both (the mark is either text or an image)');
    }
    const fields = {
      text,
      image,
      position: str('watermarkPosition'),
      opacity: number(str('watermarkOpacity')),
      size: number(str('watermarkSize')),
      margin: number(str('watermarkMargin')),
    };
    if (Object.values(fields).some((v) => v !== undefined)) watermark = fields;
  }
  const limits = {
    maxPixels: number(str('maxPixels')),
    maxFileSize: parseByteSize('--max-file-size', str('maxFileSize')),
    allowSvg: opts['allowSvg'] === true ? true : undefined,
  };
  const layer = {
    sizes: sizesFlag !== undefined ? parseSizes(sizesFlag, fit, crop) : undefined,
    formats: list(str('format')),
    quality: number(str('quality')),
    background: str('background'),
    keepMetadata: str('keepMetadata'),
    animated: opts['animated'] === true ? true : undefined,
    sidecar: opts['sidecar'] === true ? true : undefined,
    pngPalette: opts['pngPalette'] === true ? true : undefined,
    watermark,
    limits: Object.values(limits).some((v) => v !== undefined) ? limits : undefined,
    concurrency: number(str('concurrency')),
    s3: s3Flags(opts),
  } as ConfigInput;
  return { layer, sizeOverrides: sizesFlag === undefined ? { ...(fit ? { fit } : {}), ...(crop ? { position: crop } : {}) } : {} };
}
