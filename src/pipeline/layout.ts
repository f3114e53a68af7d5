import type { OutputFormat } from '../config/schema.js';

/**
 * The output layout, shared by the local CLI, the S3 backfill and the Lambda:
 * `<out>/<variant>/<key relative to the input root, extension replaced by the format's>`.
 */

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

/** Records the pipeline config that the outputs under a destination were made with. */
export const STATE_KEY = '.img-pipeline.json';

/** The lower-cased extension of a key, with its dot, or '' when it has none. */
export function extensionOf(key: string): string {
  const base = key.slice(key.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}

/** Whether a key names an image we would try to process, judged by its extension alone. */
export function isImageKey(key: string): boolean {
  return IMAGE_EXTENSIONS.has(extensionOf(key));
}

/** The key of one output, relative to the destination root. */
export function outputKey(relativeKey: string, variant: string, format: OutputFormat): string {
  const base = relativeKey.slice(relativeKey.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? relativeKey.slice(0, relativeKey.length - (base.length - dot)) : relativeKey;
  return `${variant}/${stem}.${FORMAT_EXTENSIONS[format]}`;
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
 * User metadata on every output object. S3 metadata must be ASCII, so the source URI is percent-encoded.
 * The marker lets the backfill and the Lambda recognise our outputs and never process them again.
 */
export function outputMetadata(source: { uri: string; etag?: string | undefined }): Record<string, string> {
  const metadata: Record<string, string> = { [OUTPUT_MARKER]: 'true', [SOURCE_KEY_METADATA]: encodeURI(source.uri) };
  if (source.etag) metadata[SOURCE_ETAG_METADATA] = source.etag.replace(/"/g, '');
  return metadata;
}
