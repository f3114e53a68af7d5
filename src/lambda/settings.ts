import { resolve } from 'node:path';
import { mergeConfig, validateConfig } from '../config/load.js';
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
 * The config the user deployed with, validated by the same schema as the CLI's. WATERMARK_TEXT replaces
 * the bundled watermark's text (or image) and keeps its position, opacity and size. A watermark image
 * travels in the zip under a relative path, resolved against `root`.
 */
export function loadBundledConfig(text: string, options: { root: string; watermarkText?: string | undefined }): Config {
  let parsed: ConfigInput;
  try {
    parsed = JSON.parse(text) as ConfigInput;
  } catch (error) {
    throw new ConfigError('CONFIG_NOT_JSON', `the bundled ${BUNDLED_CONFIG} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const layer: ConfigInput = options.watermarkText ? { watermark: { text: options.watermarkText } as ConfigInput['watermark'] } : {};
  const where = `the bundled ${BUNDLED_CONFIG}${options.watermarkText ? ' with WATERMARK_TEXT' : ''}`;
  const config = validateConfig(mergeConfig(parsed, layer), where);
  if (config.watermark?.image) config.watermark.image = resolve(options.root, config.watermark.image);
  return config;
}
