import { readFile } from 'node:fs/promises';
import type { ConfigInput } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/load.js';
import { preparePipeline, processImage, type Pipeline, type ProcessedOutput } from '../../src/pipeline/process.js';
import { fixture } from './paths.js';

/** A ready pipeline for a config layer over the defaults (concurrency pinned: tests never depend on the CPU count). */
export function pipelineFor(config: ConfigInput = {}): Promise<Pipeline> {
  return preparePipeline(validateConfig({ concurrency: 1, ...config }, 'test'));
}

/** Processes one committed fixture in-process and returns its outputs keyed `variant.format`. */
export async function processFixture(path: string, config: ConfigInput = {}): Promise<Record<string, ProcessedOutput>> {
  const outputs = await processImage(await readFile(fixture(path)), await pipelineFor(config));
  return Object.fromEntries(outputs.map((o) => [`${o.variant}.${o.format}`, o]));
}
