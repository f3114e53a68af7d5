/** One object or file found under a source root. */
export interface SourceEntry {
  /** Path relative to the source root, with `/` separators: the key the output layout is built from. */
  key: string;
  /** Where it lives, for reports: an absolute path or an `s3://` URI. */
  uri: string;
  size: number;
  mtimeMs: number;
  /** S3 ETag, recorded on outputs so a backfill can name what it was made from. */
  etag?: string;
}

/** One file or object already present under a destination root. */
export interface SinkEntry {
  key: string;
  mtimeMs: number;
  size: number;
}

export interface WriteOptions {
  contentType: string;
  /** Recorded as S3 user metadata; local files have nowhere to keep it. */
  metadata: Record<string, string>;
}

/** Where images are read from: a local folder or file, or an S3 prefix. */
export interface Source {
  readonly uri: string;
  /** Every entry under the root, streamed as it is found (S3 pages arrive while work goes on). */
  list(signal?: AbortSignal): AsyncIterable<SourceEntry>;
  read(entry: SourceEntry, signal?: AbortSignal): Promise<Buffer>;
  /** Payload bytes downloaded so far, for sources that go over the network (S3). */
  readonly bytesTransferred?: number;
}

/** Where outputs go. Writes are atomic: a reader never sees a partial object at `key`. */
export interface Sink {
  readonly uri: string;
  /** Every entry under the root, in one listing (used to skip fresh outputs without a request per file). */
  list(signal?: AbortSignal): AsyncIterable<SinkEntry>;
  readText(key: string): Promise<string | undefined>;
  write(key: string, data: Buffer, options: WriteOptions, signal?: AbortSignal): Promise<void>;
  /** The URI an output key will have, for reports. */
  uriOf(key: string): string;
  /** Payload bytes uploaded (and state read back) so far, for sinks that go over the network (S3). */
  readonly bytesTransferred?: number;
}
