import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import type { Config, OutputFormat } from '../config/schema.js';
import { ConfigError, ImgPipelineError, PipelineError } from '../errors.js';
import { decodeInput, inspectInput, type InputInfo } from './decode.js';
import { encodeVariant } from './encode.js';
import { computePlaceholder, type Placeholder } from './placeholder.js';
import { pipelineFingerprint } from './plan.js';
import { resizeVariant } from './resize.js';
import { blendMark, prepareWatermark, type TextMarks, type Watermarker } from './watermark.js';

/** A validated config with its watermark rendered once, ready to process any number of images. */
export interface Pipeline {
  config: Config;
  watermark: Watermarker | undefined;
  /** Changes whenever a setting that affects output pixels changes. */
  fingerprint: string;
}

export interface ProcessedOutput {
  variant: string;
  format: OutputFormat;
  data: Buffer;
  width: number;
  height: number;
  /** The input's dimensions, oriented: the same for every output of one image. */
  source: { width: number; height: number };
}

/** Everything one decode gave: the source's header, the outputs, and (with sidecars on) its placeholder. */
export interface ProcessedImage {
  input: InputInfo;
  outputs: ProcessedOutput[];
  placeholder?: Placeholder;
}

/**
 * Loads the watermark (if any) and fingerprints the config. Throws ConfigError for a bad watermark.
 * `onWarning` hears, once a run, that a text mark cannot be drawn legibly on some output size;
 * `textMarks` (the Lambda's, rendered by deploy) replace rendering the text when their key matches.
 */
export async function preparePipeline(config: Config, options: { fontfile?: string; textMarks?: TextMarks | undefined; onWarning?: (message: string) => void } = {}): Promise<Pipeline> {
  let markImage: Buffer | undefined;
  if (config.watermark?.image) {
    markImage = await readFile(config.watermark.image).catch((error: Error) => {
      throw new ConfigError('WATERMARK_UNREADABLE', `cannot read watermark image ${config.watermark?.image}: ${error.message}`, { cause: error });
    });
  }
  const maxOutputWidth = Math.max(...Object.values(config.sizes).map((size) => size.width));
  const watermark = config.watermark ? await prepareWatermark(config.watermark, { ...options, image: markImage, maxOutputWidth }) : undefined;
  return { config, watermark, fingerprint: pipelineFingerprint(config, markImage) };
}

/** Decodes `input` once and derives every variant and format from those pixels. */
export async function processImage(input: Buffer, pipeline: Pipeline): Promise<ProcessedOutput[]> {
  return (await processSource(input, pipeline)).outputs;
}

/** processImage, also returning the source's header and, with `config.sidecar`, its placeholder (from the same decode). */
export async function processSource(input: Buffer, pipeline: Pipeline): Promise<ProcessedImage> {
  const { config, watermark } = pipeline;
  const keepMetadata = config.keepMetadata === 'all';
  const info = await inspectInput(input, config.limits);
  const decoded = await decodeInput(input, info, Object.values(config.sizes), config.limits, keepMetadata, config.animated && config.formats.includes('webp'));
  const outputs: ProcessedOutput[] = [];
  let placeholder: Placeholder | undefined;
  const source = { width: info.width, height: info.height };
  try {
    if (config.sidecar) placeholder = await computePlaceholder(decoded);
    for (const [variant, size] of Object.entries(config.sizes)) {
      const resized = await resizeVariant(decoded, size, keepMetadata);
      const mark = watermark ? await watermark.markFor(resized.width, resized.height) : undefined;
      // Raw pixels take the mark once, for every format; containers (frames, metadata) composite it per format.
      const marked = mark && resized.raw ? { ...resized, image: blendMark(resized.image, resized.raw, mark) } : resized;
      const pending = marked === resized ? mark : undefined;
      for (const format of config.formats) {
        const encoded = await encodeVariant(marked, format, config, pending);
        outputs.push({ variant, format, ...encoded, source });
      }
    }
  } catch (error) {
    if (error instanceof ImgPipelineError) throw error;
    throw new PipelineError('PIPELINE_FAILED', `processing failed: ${(error as Error).message}`, { cause: error });
  }
  return { input: info, outputs, ...(placeholder ? { placeholder } : {}) };
}

/**
 * sharp's performance guidance, applied once per process: every input is new, so its operation cache
 * only costs memory; and libvips threads per image times images in flight should match the cores.
 */
export function configureSharp(imagesInFlight: number): void {
  sharp.cache(false);
  sharp.concurrency(Math.max(1, Math.floor(availableParallelism() / imagesInFlight)));
}
