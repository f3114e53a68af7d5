import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Config } from '../config/schema.js';
import { isImageKey } from '../pipeline/layout.js';
import { createPlanner, plannedOutputs } from '../pipeline/plan.js';
import { openDestination } from '../runner/destination.js';
import { mergeListings } from '../runner/merge-listings.js';
import type { Sink, Source } from '../storage/types.js';

/**
 * A manifest line's key, URL-encoded as S3 Batch Operations requires: spaces, `+`, `%`, commas, quotes,
 * line breaks and non-ASCII all become escapes, so every line is `bucket,key` with exactly one comma.
 * Slashes stay readable. https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-create-job.html
 */
export function encodeManifestKey(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, '/');
}

/** One manifest line (Fields Bucket, Key), with its newline. */
export function manifestLine(bucket: string, key: string): string {
  return `${bucket},${encodeManifestKey(key)}\n`;
}

/** The bucket and real key of one manifest line (without its newline). */
export function parseManifestLine(line: string): { bucket: string; key: string } {
  const comma = line.indexOf(',');
  return { bucket: line.slice(0, comma), key: decodeURIComponent(line.slice(comma + 1)) };
}

/** An object the plan keeps out of the manifest, and why. */
export interface RefusedObject {
  key: string;
  code: string;
  reason: string;
}

/** How many refusals a manifest keeps by name; the rest are only counted, so memory stays flat. */
export const REFUSED_SHOWN = 20;

export interface ManifestSummary {
  /** The local file the manifest was written to. */
  file: string;
  /** Objects in the manifest, and their bytes. */
  count: number;
  bytes: number;
  /** SHA-256 (hex) of the manifest's bytes: it names the manifest's folder, so the same work gets the same place. */
  sha256: string;
  /** The first object, for the canary: its full key and its outputs' keys relative to the destination. */
  first: { key: string; size: number; outputs: string[] } | undefined;
  /** Up to date already: not in the manifest. */
  upToDate: number;
  /** Refused by the plan (too large, unsafe key, two keys with the same outputs): not in the manifest. */
  refused: RefusedObject[];
  refusedCount: number;
}

export interface BuildManifestOptions {
  /** The S3 source: its keys are relative to `sourceKeyPrefix`. */
  source: Source;
  bucket: string;
  /** The prefix the source lists, a folder ('' or ending in '/'). */
  sourceKeyPrefix: string;
  /** The function's SOURCE_PREFIX: output keys are relative to it, as the handler lays them out. */
  layoutPrefix: string;
  sink: Sink;
  config: Pick<Config, 'sizes' | 'formats' | 'limits'>;
  fingerprint: string;
  force: boolean;
  file: string;
  signal?: AbortSignal;
}

/**
 * Writes the manifest of what still needs work to `file`, from the same merged source/destination
 * listing as `run`: no outputs yet, stale outputs, or an earlier failure (which left no fresh outputs).
 * Streamed line by line; memory does not grow with the number of keys.
 */
export async function buildManifest(options: BuildManifestOptions): Promise<ManifestSummary> {
  const { config, sink, signal } = options;
  const destination = await openDestination(sink, {
    fingerprint: options.fingerprint,
    variants: Object.keys(config.sizes),
    listOutputs: !options.force,
    ...(signal ? { signal } : {}),
  });
  const plan = createPlanner(config, destination, { force: options.force, maxFileSize: config.limits.maxFileSize });
  // The layout's key: the part of the listed prefix below SOURCE_PREFIX, then the listed key.
  const below = options.sourceKeyPrefix.slice(options.layoutPrefix.length);
  const hash = createHash('sha256');
  const out = createWriteStream(options.file, { flags: 'w' });
  const summary: ManifestSummary = { file: options.file, count: 0, bytes: 0, sha256: '', first: undefined, upToDate: 0, refused: [], refusedCount: 0 };
  try {
    for await (const { entry, source } of mergeListings([options.source], signal)) {
      const key = `${below}${entry.key}`;
      if (!options.force && isImageKey(key)) await destination.reach(plannedOutputs(key, config).map((o) => o.key));
      const job = plan({ ...entry, key }, source);
      if (job.action === 'ignore') continue;
      if (job.action === 'skip') {
        if (job.reason === 'up to date') summary.upToDate += 1;
        continue;
      }
      if (job.action === 'fail') {
        summary.refusedCount += 1;
        if (summary.refused.length < REFUSED_SHOWN) summary.refused.push({ key: `${options.sourceKeyPrefix}${entry.key}`, code: job.code, reason: job.reason });
        continue;
      }
      const fullKey = `${options.sourceKeyPrefix}${entry.key}`;
      const line = manifestLine(options.bucket, fullKey);
      hash.update(line);
      if (!out.write(line)) await once(out, 'drain');
      summary.count += 1;
      summary.bytes += entry.size;
      summary.first ??= { key: fullKey, size: entry.size, outputs: job.outputs.map((o) => o.key) };
    }
  } finally {
    await destination.close();
    out.end();
    await once(out, 'close');
  }
  return { ...summary, sha256: hash.digest('hex') };
}
