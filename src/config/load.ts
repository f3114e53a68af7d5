import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, DEFAULT_SIZES, type Config, type ConfigInput } from './schema.js';

/** Read when no `--config` is given and it exists in the working directory. */
export const DEFAULT_CONFIG_FILE = 'img-pipeline.config.json';

/** Where the resolved config came from, for messages and `--dry-run`. */
export interface LoadedConfig {
  config: Config;
  file: string | undefined;
}

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The one place precedence is decided: defaults < config file < flags.
 * - Plain objects merge key by key, so a flag can change `watermark.opacity` and keep the file's text.
 * - Arrays, strings and numbers replace: `--format webp` means only webp.
 * - `sizes` replaces as a whole: `--sizes` names the complete list of variants.
 * - A flag's `watermark.text` drops the file's `watermark.image` and vice versa, since only one can apply;
 *   `watermark: null` (`--no-watermark`) turns the watermark off whatever the file says.
 * - `undefined` means "not given" and never overrides.
 */
export function mergeConfig(file: ConfigInput, flags: ConfigInput): ConfigInput {
  const merged: Plain = { ...file };
  for (const [key, value] of Object.entries(flags) as [string, unknown][]) {
    if (value === undefined) continue;
    const base = merged[key];
    if (key === 'watermark' && isPlain(value) && isPlain(base)) {
      const source = value['text'] !== undefined ? { image: undefined } : value['image'] !== undefined ? { text: undefined } : {};
      merged[key] = { ...base, ...source, ...dropUndefined(value) };
    } else if (key !== 'sizes' && isPlain(value) && isPlain(base)) {
      merged[key] = { ...base, ...dropUndefined(value) };
    } else {
      merged[key] = value;
    }
  }
  return merged as ConfigInput;
}

/** `--fit` / `--crop` given without `--sizes`: they apply to every size of the file (or the defaults). */
export interface SizeOverrides {
  fit?: string;
  position?: string;
}

/**
 * One size under `--fit` / `--crop`: `--crop` alone positions only the sizes that crop (cover), and
 * `--fit inside|contain` drops the file's position, which nothing would crop any more.
 */
function overrideSize(size: Record<string, unknown>, overrides: SizeOverrides): Record<string, unknown> {
  const merged = { ...size, ...overrides };
  if (merged['fit'] === 'cover') return merged;
  if (overrides.fit === undefined) return size;
  return Object.fromEntries(Object.entries(merged).filter(([key]) => key !== 'position'));
}

function applySizeOverrides(config: ConfigInput, overrides: SizeOverrides): ConfigInput {
  if (overrides.fit === undefined && overrides.position === undefined) return config;
  const sizes = (isPlain(config.sizes) ? config.sizes : DEFAULT_SIZES) as Record<string, unknown>;
  const overridden = Object.fromEntries(Object.entries(sizes).map(([name, size]) => [name, isPlain(size) ? overrideSize(size, overrides) : size]));
  return { ...config, sizes: overridden } as ConfigInput;
}

function dropUndefined(value: Plain): Plain {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (!isPlain(current) && !Array.isArray(current)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return `${json && json.length > 60 ? `${json.slice(0, 57)}...` : json} (${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value})`;
}

/** Turns schema issues into one line per field, naming it, what was expected and what was received. */
function formatIssues(input: unknown, issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    // zod words it "Invalid input: expected number, received string"; keep the expectation, we show the value.
    const expected = issue.message.replace(/^(Invalid (input|option)|Too (big|small)): /, '').replace(/, received \w+$/, '');
    if (issue.code === 'unrecognized_keys') return `${field}: unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${field}: ${expected}, received ${describeValue(valueAt(input, issue.path))}`;
  });
}

/** Parses and validates one layer, throwing a ConfigError that names its origin. */
export function validateConfig(input: unknown, where: string): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError('CONFIG_INVALID', `invalid configuration in ${where}`, { details: formatIssues(input, result.error.issues) });
  return result.data;
}

/** The command-line flag of a watermark field (loadConfig's `flags` layer is the command line). */
const WATERMARK_FLAGS: Record<string, string> = {
  position: '--watermark-position',
  opacity: '--watermark-opacity',
  size: '--watermark-size',
  margin: '--watermark-margin',
};

/**
 * Flags that only adjust something the file must provide, checked once the layers are merged so that the
 * message names the flag rather than the config field it fills in.
 */
function checkFlagsApply(flags: ConfigInput, merged: ConfigInput, overrides: SizeOverrides): void {
  const fromFlags: unknown = flags.watermark;
  const mark: unknown = merged.watermark;
  if (isPlain(fromFlags) && isPlain(mark) && mark['text'] === undefined && mark['image'] === undefined) {
    const given = Object.keys(WATERMARK_FLAGS).filter((k) => fromFlags[k] !== undefined).map((k) => WATERMARK_FLAGS[k]);
    if (given.length > 0) {
      throw new ConfigError('FLAG_INVALID', `${given.join(', ')} ${given.length > 1 ? 'need' : 'needs'} a watermark to adjust: add --watermark TEXT or --watermark-image FILE (or set watermark.text or watermark.image in the config file)`);
    }
  }
  // --crop without --fit: the sizes keep the file's fit (or the default, inside), and only cover crops.
  if (overrides.position !== undefined && overrides.fit === undefined && isPlain(merged.sizes)) {
    const covers = Object.values(merged.sizes).some((size) => isPlain(size) && size['fit'] === 'cover');
    if (!covers) throw new ConfigError('FLAG_INVALID', `--crop ${overrides.position} needs --fit cover: no size fits cover, so the whole image is kept and there is nothing to crop`);
  }
}

async function readConfigFile(path: string, required: boolean): Promise<ConfigInput | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError('CONFIG_UNREADABLE', `cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    // Editors on Windows save UTF-8 with a byte order mark, which JSON.parse refuses.
    return JSON.parse(text.replace(/^\uFEFF/, '')) as ConfigInput;
  } catch (error) {
    throw new ConfigError('CONFIG_NOT_JSON', `config file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Loads the config: the file (explicit, or `img-pipeline.config.json` in `cwd` if present) merged with
 * the flags, validated. The file is validated alone first so that its errors name the file.
 */
export async function loadConfig(options: { cwd: string; file?: string | undefined; flags: ConfigInput; sizeOverrides?: SizeOverrides }): Promise<LoadedConfig> {
  const explicit = options.file !== undefined;
  const path = resolve(options.cwd, options.file ?? DEFAULT_CONFIG_FILE);
  const fileInput = await readConfigFile(path, explicit);
  if (fileInput !== undefined) validateConfig(fileInput, path);
  const merged = applySizeOverrides(mergeConfig(fileInput ?? {}, options.flags), options.sizeOverrides ?? {});
  checkFlagsApply(options.flags, merged, options.sizeOverrides ?? {});
  const config = validateConfig(merged, fileInput ? `${path} with command-line flags` : 'command-line flags');
  if (config.watermark?.image) {
    // A relative watermark path is relative to the file that named it.
    const fromFlags = isPlain(options.flags.watermark) && options.flags.watermark['image'] !== undefined;
    config.watermark.image = resolve(fromFlags ? options.cwd : resolve(path, '..'), config.watermark.image);
  }
  return { config, file: fileInput ? path : undefined };
}
