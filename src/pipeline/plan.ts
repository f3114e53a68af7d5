import { createHash } from 'node:crypto';
import type { Config, OutputFormat } from '../config/schema.js';
import type { SourceEntry } from '../storage/types.js';
import { isImageKey, outputKey } from './layout.js';

/** One output a job will write, relative to the destination root. */
export interface PlannedOutput {
  variant: string;
  format: OutputFormat;
  key: string;
}

/** What to do with one listed entry. `ignore` entries (not images) never reach a report. */
export type Job =
  | { action: 'process'; entry: SourceEntry; outputs: PlannedOutput[] }
  | { action: 'skip'; entry: SourceEntry; outputs: PlannedOutput[]; reason: string }
  | { action: 'fail'; entry: SourceEntry; outputs: PlannedOutput[]; code: string; reason: string }
  | { action: 'ignore'; entry: SourceEntry };

/** What the destination already holds: output times, and since when outputs count as made by this config. */
export interface DestinationIndex {
  outputs: ReadonlyMap<string, number>;
  /** Outputs older than this were made with another config; undefined: none are known to match. */
  freshSince: number | undefined;
}

export interface PlanOptions {
  force: boolean;
  /** S3 consoles leave zero-byte placeholder objects: skip them there, but fail an empty local file. */
  skipEmpty: boolean;
  maxFileSize: number;
}

/** The settings that change output pixels, hashed: a different hash means existing outputs are stale. */
export function pipelineFingerprint(config: Config, watermarkImage?: Buffer): string {
  const { sizes, formats, quality, background, keepMetadata, animated, watermark } = config;
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ layout: 1, sizes, formats, quality, background, keepMetadata, animated, watermark: watermark && { ...watermark, image: undefined } }));
  if (watermarkImage) hash.update(watermarkImage);
  return hash.digest('hex').slice(0, 16);
}

/** The outputs of one source key, in config order (variants, then formats). */
export function plannedOutputs(key: string, config: Pick<Config, 'sizes' | 'formats'>): PlannedOutput[] {
  return Object.keys(config.sizes).flatMap((variant) => config.formats.map((format) => ({ variant, format, key: outputKey(key, variant, format) })));
}

/**
 * Returns a pure planner for a stream of entries. It remembers which output keys it has handed out,
 * so `cat.jpg` and `cat.png` side by side cannot silently overwrite each other's `thumb/cat.jpg`.
 */
export function createPlanner(config: Pick<Config, 'sizes' | 'formats'>, destination: DestinationIndex, options: PlanOptions): (entry: SourceEntry) => Job {
  const claimed = new Map<string, string>();
  return (entry) => {
    if (entry.key.endsWith('/')) return { action: 'skip', entry, outputs: [], reason: 'folder marker' };
    if (!isImageKey(entry.key)) return { action: 'ignore', entry };
    const outputs = plannedOutputs(entry.key, config);
    const taken = outputs.find((o) => claimed.has(o.key));
    if (taken) {
      return { action: 'fail', entry, outputs, code: 'OUTPUT_COLLISION', reason: `its output ${taken.key} is already produced from ${claimed.get(taken.key)}; rename one of them` };
    }
    for (const o of outputs) claimed.set(o.key, entry.key);
    if (entry.size === 0 && options.skipEmpty) return { action: 'skip', entry, outputs, reason: 'empty object' };
    if (entry.size > options.maxFileSize) {
      return { action: 'fail', entry, outputs, code: 'INPUT_TOO_LARGE', reason: `file is ${entry.size} bytes, over the limit of ${options.maxFileSize} (limits.maxFileSize); not read` };
    }
    if (!options.force && isFresh(entry, outputs, destination)) return { action: 'skip', entry, outputs, reason: 'up to date' };
    return { action: 'process', entry, outputs };
  };
}

function isFresh(entry: SourceEntry, outputs: PlannedOutput[], destination: DestinationIndex): boolean {
  const since = destination.freshSince;
  if (since === undefined) return false;
  return outputs.every((o) => {
    const mtime = destination.outputs.get(o.key);
    return mtime !== undefined && mtime >= entry.mtimeMs && mtime >= since;
  });
}

/** Plans a whole listing at once (for `--dry-run` and tests). */
export function planJobs(config: Pick<Config, 'sizes' | 'formats'>, listing: Iterable<SourceEntry>, destination: DestinationIndex, options: PlanOptions): Job[] {
  const plan = createPlanner(config, destination, options);
  return [...listing].map(plan);
}
