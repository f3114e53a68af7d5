import { createHash } from 'node:crypto';
import type { OutputFormat } from '../config/schema.js';

/**
 * The output layout, shared by the local CLI, the S3 backfill and the Lambda:
 * `<out>/<variant>/<key relative to the input root, extension replaced by the format's>`, and with
 * sidecars on, `<out>/meta/<key relative to the input root>.json` (sidecarKey).
 */

/**
 * A size's name, which is also its output folder's: nothing that could name another path. Here rather
 * than in the config schema, so the state file (which the Lambda bundles) reads it without loading zod.
 */
export const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Extensions picked up when scanning, compared case-insensitively. */
export const IMAGE_EXTENSIONS = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg',
]);

export const FORMAT_EXTENSIONS: Record<OutputFormat, string> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  avif: 'avif',
};

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
};

/** Object metadata (S3 `x-amz-meta-*`) that marks a file as one of our outputs. */
export const OUTPUT_MARKER = 'img-pipeline-output';
export const SOURCE_KEY_METADATA = 'img-pipeline-source';
export const SOURCE_ETAG_METADATA = 'img-pipeline-source-etag';

/** The destination folder that holds the sidecars; no variant may take its name while they are on. */
export const SIDECAR_FOLDER = 'meta';

/**
 * The top-level folders a run writes under its destination: one per variant, and `meta/` with sidecars on.
 * Scans leave them out, so a run never takes its own outputs (or sidecars) for inputs.
 */
export function destinationFolders(config: { sizes: Record<string, unknown>; sidecar: boolean }): string[] {
  return [...Object.keys(config.sizes), ...(config.sidecar ? [SIDECAR_FOLDER] : [])];
}

/** The sidecar of a source key: `meta/<key, extension kept>.json`, so `a.jpg` and `a.png` never share one. */
export function sidecarKey(relativeKey: string): string {
  return `${SIDECAR_FOLDER}/${relativeKey}.json`;
}

/** Records the pipeline config that the outputs under a destination were made with. */
export const STATE_KEY = '.img-pipeline.json';

/** Held by the run writing a destination, so a second run on the same `--out` is refused (runner/run-lock.ts). */
export const LOCK_KEY = '.img-pipeline.lock';

/**
 * Written into every local `<variant>/` folder that receives an output: local files have nowhere to carry
 * OUTPUT_MARKER, so the folder carries it. A scan never enters a folder holding it, whatever the sizes are
 * called now, wherever `--out` points, and even after the folder was moved or renamed.
 */
export const OUTPUT_FOLDER_MARKER = '.img-pipeline-output.json';

/**
 * Where a key's extension starts (the index of its dot), or -1 when it has none. Only the last segment
 * counts, and a leading dot names a hidden file (`.env`), not an extension.
 */
function extensionStart(key: string): number {
  const dot = key.lastIndexOf('.');
  return dot > key.lastIndexOf('/') + 1 ? dot : -1;
}

/** The lower-cased extension of a key, with its dot, or '' when it has none. */
export function extensionOf(key: string): string {
  const dot = extensionStart(key);
  return dot < 0 ? '' : key.slice(dot).toLowerCase();
}

/** Whether a key names an image we would try to process, judged by its extension alone. */
export function isImageKey(key: string): boolean {
  return IMAGE_EXTENSIONS.has(extensionOf(key));
}

/** A key without its extension: every output of the key is `<variant>/<stem>.<ext>`. */
export function outputStem(relativeKey: string): string {
  const dot = extensionStart(relativeKey);
  return dot < 0 ? relativeKey : relativeKey.slice(0, dot);
}

/** The key of one output, relative to the destination root. */
export function outputKey(relativeKey: string, variant: string, format: OutputFormat): string {
  return `${variant}/${outputStem(relativeKey)}.${FORMAT_EXTENSIONS[format]}`;
}

/**
 * Why a source key cannot be laid out safely, or undefined when it can. An S3 key is any string someone
 * uploaded: a `..` segment (`in/../../x.jpg`) would put a local output outside `--out`, and `.` or empty
 * segments (`in//a.jpg`) name the same file as another key, or none.
 */
export function unsafeKeyReason(relativeKey: string): string | undefined {
  const segments = relativeKey.split('/');
  if (segments.includes('..')) return `its key "${relativeKey}" has a ".." segment, which would place its outputs outside the destination`;
  if (segments.includes('.')) return `its key "${relativeKey}" has a "." segment, which does not name a folder of its own`;
  if (segments.includes('')) return `its key "${relativeKey}" has an empty segment (a leading or doubled "/"), which does not name a folder of its own`;
  return undefined;
}

/** A key relative to a prefix, or undefined when the key is not under it. */
export function relativeTo(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return rest.length > 0 ? rest : undefined;
}

/** Joins an S3 prefix and a relative key with exactly one slash between them. */
export function joinKey(prefix: string, key: string): string {
  if (prefix === '') return key;
  return prefix.endsWith('/') ? `${prefix}${key}` : `${prefix}/${key}`;
}

/**
 * Longest `img-pipeline-source` value recorded as it is. S3 allows 2 KB of user metadata in all (names and
 * values); an S3 key may be 1024 bytes, and percent-encoding can triple that.
 */
export const MAX_SOURCE_METADATA = 1024;

/**
 * User metadata on every output object. The marker lets the backfill and the Lambda recognise our outputs
 * and never process them again. The source is named by its `s3://bucket/key` URI for an S3 source, and by
 * its key relative to the input folder for a local one (never an absolute path, which would publish the
 * uploader's folder names). S3 metadata must be ASCII, so the value is percent-encoded; when that would be
 * longer than MAX_SOURCE_METADATA, `sha256:<hex>` of the unencoded value is recorded instead.
 */
export function outputMetadata(source: { key: string; uri: string; etag?: string | undefined }): Record<string, string> {
  const name = /^s3:\/\//i.test(source.uri) ? source.uri : source.key;
  const encoded = encodeURI(name);
  const value = encoded.length <= MAX_SOURCE_METADATA ? encoded : `sha256:${createHash('sha256').update(name).digest('hex')}`;
  const metadata: Record<string, string> = { [OUTPUT_MARKER]: 'true', [SOURCE_KEY_METADATA]: value };
  if (source.etag) metadata[SOURCE_ETAG_METADATA] = source.etag.replace(/"/g, '');
  return metadata;
}
