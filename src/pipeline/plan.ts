import { createHash } from 'node:crypto';
import type { Config, OutputFormat } from '../config/schema.js';
import type { Source, SourceEntry } from '../storage/types.js';
import { isImageKey, outputKey, outputStem, sidecarKey, unsafeKeyReason } from './layout.js';

/** One output a job will write, relative to the destination root. */
export interface PlannedOutput {
  variant: string;
  format: OutputFormat;
  key: string;
}

/**
 * What to do with one listed entry. `ignore` entries (not images) never reach a report. `sidecar` is the
 * key of the entry's sidecar, with sidecars on: written after every output, and part of freshness.
 */
export type Job =
  | { action: 'process'; entry: SourceEntry; outputs: PlannedOutput[]; sidecar?: string }
  | { action: 'skip'; entry: SourceEntry; outputs: PlannedOutput[]; sidecar?: string; reason: string }
  | { action: 'fail'; entry: SourceEntry; outputs: PlannedOutput[]; sidecar?: string; code: string; reason: string }
  | { action: 'ignore'; entry: SourceEntry };

type PlanConfig = Pick<Config, 'sizes' | 'formats' | 'sidecar'>;

/**
 * What the destination already holds: output times, and since when outputs count as made by this config.
 * `outputs` may answer only for keys near the current position of a run (runner/destination.ts); a key it
 * cannot answer for is treated as missing, so it is redone, never wrongly skipped.
 */
export interface DestinationIndex {
  /** When an output was written (the earliest it may have been), or undefined when absent or unknown. */
  outputs: { get(key: string): number | undefined };
  /** Outputs older than this were made with another config; undefined: none are known to match. */
  freshSince: number | undefined;
}

export interface PlanOptions {
  force: boolean;
  /**
   * Zero-byte entries are skipped as placeholders rather than failed, for entries planned without their
   * source (the Lambda); otherwise the source's `emptyObjectsArePlaceholders` decides.
   */
  skipEmpty?: boolean;
  maxFileSize: number;
  /** How many recent stems the collision check remembers (default COLLISION_WINDOW). */
  collisionWindow?: number;
}

/**
 * Stems the collision check remembers. Keys that would write the same outputs share a stem (`cat.jpg`,
 * `cat.png`) and so sit next to each other in a sorted listing, give or take the keys that sort between
 * them (`cat.jpg.png`, `cat.jpg/...`, `cat.k...`): a window this size catches them without a map that
 * grows with the listing.
 */
const COLLISION_WINDOW = 4096;

/** The settings that change output pixels, hashed: a different hash means existing outputs are stale. */
export function pipelineFingerprint(config: Config, watermarkImage?: Buffer): string {
  const { sizes, formats, quality, background, keepMetadata, animated, watermark, pngPalette } = config;
  const hash = createHash('sha256');
  // The PNG encoding only where PNG is written: PNG outputs from before it was lossless are stale, others not.
  const png = formats.includes('png') ? { png: pngPalette ? 'palette' : 'lossless' } : {};
  hash.update(JSON.stringify({ layout: 1, sizes, formats, quality, background, keepMetadata, animated, watermark: watermark && { ...watermark, image: undefined }, ...png }));
  if (watermarkImage) hash.update(watermarkImage);
  return hash.digest('hex').slice(0, 16);
}

/** The outputs of one source key, in config order (variants, then formats). */
export function plannedOutputs(key: string, config: Pick<Config, 'sizes' | 'formats'>): PlannedOutput[] {
  return Object.keys(config.sizes).flatMap((variant) => config.formats.map((format) => ({ variant, format, key: outputKey(key, variant, format) })));
}

/** Every destination key one source key writes: its outputs, then its sidecar when sidecars are on. */
export function destinationKeys(key: string, config: PlanConfig): string[] {
  const keys = plannedOutputs(key, config).map((o) => o.key);
  return config.sidecar ? [...keys, sidecarKey(key)] : keys;
}

/**
 * Returns a pure planner for a stream of entries (sorted by key, as listings come). It remembers the stems
 * of the last `collisionWindow` images, so `cat.jpg` and `cat.png` side by side cannot silently overwrite
 * each other's `thumb/cat.jpg`; memory stays the same however long the listing.
 */
export function createPlanner(config: PlanConfig, destination: DestinationIndex, options: PlanOptions): (entry: SourceEntry, from?: Pick<Source, 'emptyObjectsArePlaceholders'>) => Job {
  const claimed = new Map<string, string>();
  const window = options.collisionWindow ?? COLLISION_WINDOW;
  return (entry, from) => {
    if (entry.error) return { action: 'fail', entry, outputs: [], code: entry.error.code, reason: entry.error.message };
    if (entry.key.endsWith('/')) return { action: 'skip', entry, outputs: [], reason: 'folder marker' };
    if (!isImageKey(entry.key)) return { action: 'ignore', entry };
    const unsafe = unsafeKeyReason(entry.key);
    if (unsafe) return { action: 'fail', entry, outputs: [], code: 'UNSAFE_KEY', reason: `${unsafe}; not processed` };
    const outputs = plannedOutputs(entry.key, config);
    const sidecar = config.sidecar ? { sidecar: sidecarKey(entry.key) } : {};
    const stem = outputStem(entry.key);
    const owner = claimed.get(stem);
    if (owner !== undefined) {
      return { action: 'fail', entry, outputs, ...sidecar, code: 'OUTPUT_COLLISION', reason: `its output ${outputs[0]!.key} is already produced from ${owner}; rename one of them` };
    }
    // The other input's full path or URI: with several inputs, a key alone does not say which one it is.
    claimed.set(stem, entry.uri);
    if (claimed.size > window) claimed.delete(claimed.keys().next().value!);
    if (entry.size === 0 && (from?.emptyObjectsArePlaceholders ?? options.skipEmpty ?? false)) return { action: 'skip', entry, outputs, ...sidecar, reason: 'empty object' };
    if (entry.size > options.maxFileSize) {
      return { action: 'fail', entry, outputs, ...sidecar, code: 'INPUT_TOO_LARGE', reason: `file is ${entry.size} bytes, over the limit of ${options.maxFileSize} (limits.maxFileSize); not read` };
    }
    if (!options.force && isFresh(entry, outputs, sidecar.sidecar, destination)) return { action: 'skip', entry, outputs, ...sidecar, reason: 'up to date' };
    return { action: 'process', entry, outputs, ...sidecar };
  };
}

/**
 * Fresh when every output exists, is no older than the source, and was made with this config. Source and
 * state times are the latest they may be and output times the earliest (see SourceEntry.mtimeMs), so
 * outputs from the same second as an S3 source are redone rather than wrongly skipped. A sidecar must
 * also be no older than the outputs: one written before them (a run without sidecars redid the outputs
 * since) may describe other bytes.
 */
function isFresh(entry: SourceEntry, outputs: PlannedOutput[], sidecar: string | undefined, destination: DestinationIndex): boolean {
  const since = destination.freshSince;
  if (since === undefined) return false;
  let newest = -Infinity;
  const fresh = outputs.every((o) => {
    const mtime = destination.outputs.get(o.key);
    if (mtime !== undefined) newest = Math.max(newest, mtime);
    return mtime !== undefined && mtime >= entry.mtimeMs && mtime >= since;
  });
  if (!fresh || sidecar === undefined) return fresh;
  const mtime = destination.outputs.get(sidecar);
  return mtime !== undefined && mtime >= entry.mtimeMs && mtime >= since && mtime >= newest;
}

/**
 * Plans a whole listing held in memory at once (a library convenience). runPipeline, `--dry-run` included,
 * plans entry by entry with createPlanner as the listing streams, so its memory does not grow with it.
 */
export function planJobs(config: PlanConfig, listing: Iterable<SourceEntry>, destination: DestinationIndex, options: PlanOptions): Job[] {
  const plan = createPlanner(config, destination, options);
  return [...listing].map((entry) => plan(entry));
}
