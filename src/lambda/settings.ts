import { resolve } from 'node:path';
import type { Config, ConfigInput } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { folderPrefix } from '../storage/s3.js';

/** The function's environment, read once at module scope (the Lambda edge) and passed down. */
export interface LambdaSettings {
  processedBucket: string;
  /** '' or ending in '/'. */
  processedPrefix: string;
  /** The trigger prefix, stripped from source keys: '' or ending in '/'. */
  sourcePrefix: string;
  snsTopicArn: string | undefined;
  watermarkText: string | undefined;
}

/** Parses the environment variables the original Python Lambda used; PROCESSED_BUCKET is required. */
export function readLambdaSettings(env: Record<string, string | undefined>): LambdaSettings {
  const processedBucket = env['PROCESSED_BUCKET']?.trim();
  if (!processedBucket) {
    throw new ConfigError('LAMBDA_ENV', 'the environment variable PROCESSED_BUCKET is not set: it names the bucket the outputs go to');
  }
  const optional = (name: string) => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  return {
    processedBucket,
    processedPrefix: folderPrefix(optional('PROCESSED_PREFIX') ?? ''),
    sourcePrefix: folderPrefix(optional('SOURCE_PREFIX') ?? ''),
    snsTopicArn: optional('SNS_TOPIC_ARN'),
    watermarkText: optional('WATERMARK_TEXT'),
  };
}

/** The config file name inside the zip, next to index.mjs. */
export const BUNDLED_CONFIG = 'config.json';

/**
 * The config the user deployed with. deploy validated it with the CLI's schema and stored what came out
 * (every default filled in), so it is used as it is: zod is neither loaded nor run at a cold start. Only
 * WATERMARK_TEXT is new at run time: it replaces the bundled watermark's text (or image) and keeps its
 * position, opacity and size, and that merge is validated by the same schema, loaded for it. A watermark
 * image travels in the zip under a relative path, resolved against `root`.
 */
export async function loadBundledConfig(text: string, options: { root: string; watermarkText?: string | undefined }): Promise<Config> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError('CONFIG_NOT_JSON', `the bundled ${BUNDLED_CONFIG} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  let config = parsed as Config;
  if (options.watermarkText) {
    const { mergeConfig, validateConfig } = await import('../config/load.js');
    const layer: ConfigInput = { watermark: { text: options.watermarkText } as ConfigInput['watermark'] };
    config = validateConfig(mergeConfig(parsed as ConfigInput, layer), `the bundled ${BUNDLED_CONFIG} with WATERMARK_TEXT`);
  }
  if (config.watermark?.image) config.watermark.image = resolve(options.root, config.watermark.image);
  return config;
}
