/** One object or file found under a source root. */
export interface SourceEntry {
  /** Path relative to the source root, with `/` separators: the key the output layout is built from. */
  key: string;
  /** Where it lives, for reports: an absolute path or an `s3://` URI. */
  uri: string;
  size: number;
  /**
   * The latest moment it may have been modified. S3 times are whole seconds, so an S3 source counts as
   * modified at the end of its second: an output from that same second is then not taken as newer, and
   * the ambiguity means a redo, never a wrong skip. A local file's mtime can be set back (`cp -p`,
   * `rsync -a`, unzip), so its change time counts too, which nothing but the clock sets.
   */
  mtimeMs: number;
  /** S3 ETag, recorded on outputs so a backfill can name what it was made from. */
  etag?: string;
  /**
   * Set when this entry stands for something the listing could not read (a local folder it cannot open):
   * it is reported as failed with this code and message, and the listing goes on past it.
   */
  error?: { code: string; message: string };
}

/** One file or object already present under a destination root. */
export interface SinkEntry {
  key: string;
  /** The earliest moment it may have been written (S3: LastModified as it is, cut to the second). */
  mtimeMs: number;
  size: number;
}

/** A small text object (the run state) and the latest moment it may have been written. */
export interface TextEntry {
  text: string;
  mtimeMs: number;
  /** The version read, where the store names versions (S3: its ETag), for a conditional write or delete. */
  etag?: string;
}

/** What a conditional write left at its key: its version, where the store names versions (S3: its ETag). */
export interface Stored {
  etag?: string;
}

/** A precondition on the run lock's write or delete: only the version with this ETag (S3 `If-Match`). */
export interface IfMatch {
  ifMatch?: string;
}

export interface SinkListOptions {
  /** A folder relative to the root, ending in `/` (such as `thumb/`); '' or absent for everything. */
  under?: string;
  /** When aborted, the listing ends quietly. */
  signal?: AbortSignal;
}

export interface WriteOptions {
  contentType: string;
  /** Recorded as S3 user metadata; local files have nowhere to keep it. */
  metadata: Record<string, string>;
}

/** Where images are read from: a local folder or file, or an S3 prefix. */
export interface Source {
  readonly uri: string;
  /**
   * Every entry under the root, streamed as it is found (S3 pages arrive while work goes on), in the byte
   * order of `key` in UTF-8 (S3's order; see key-order.ts). When the signal is aborted the listing ends
   * quietly.
   */
  list(signal?: AbortSignal): AsyncIterable<SourceEntry>;
  read(entry: SourceEntry, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Whether a zero-byte entry is a folder placeholder (S3 consoles leave them: skipped) rather than a
   * broken image (an empty local file: failed).
   */
  readonly emptyObjectsArePlaceholders: boolean;
  /**
   * Whether the runner should start reading queued inputs before a slot frees up. Worth it when a read is
   * a download (S3: it overlaps the images being processed); for local files it only adds memory.
   */
  readonly readAhead: boolean;
  /**
   * Whether writing at `uri` (a path or URI) would land on one of this source's inputs: an input file
   * given by name, or a place its scan would list. The runner never writes an output there.
   */
  contains?(uri: string): boolean;
  /** Folders a scan left out because they hold an earlier run's outputs (local: they hold the state file). */
  readonly skippedFolders?: readonly string[];
  /** Symlinks a scan found dangling or looping (local folders): reported under --verbose, not failures. */
  readonly brokenLinks?: readonly { path: string; loops: boolean }[];
  /** Payload bytes downloaded so far, for sources that go over the network (S3). */
  readonly bytesTransferred?: number;
  /**
   * Settles once the source is known to be listable, when that is only known from a request (S3: its first
   * listing page, asked for by openSources): rejects with what keeps the run from starting (no such
   * bucket, access denied, refused credentials, another region, no endpoint). The runner writes nothing
   * before it resolves. Absent when opening the source checked it already (local).
   */
  readonly ready?: Promise<void>;
}

/** Where outputs go. Writes are atomic: a reader never sees a partial object at `key`. */
export interface Sink {
  readonly uri: string;
  /**
   * The entries under a folder of the destination, streamed a page at a time in the byte order of `key`
   * in UTF-8 (see key-order.ts), so resume can walk them in step with the sources.
   */
  list(options?: SinkListOptions): AsyncIterable<SinkEntry>;
  readText(key: string): Promise<string | undefined>;
  /** Like readText, with the object's time; optional so that minimal sinks (test doubles) can leave it out. */
  readTextEntry?(key: string): Promise<TextEntry | undefined>;
  write(key: string, data: Buffer, options: WriteOptions, signal?: AbortSignal): Promise<void>;
  /**
   * Creates `key` only if nothing is there yet, atomically where the store can (local: `O_EXCL`; S3:
   * `If-None-Match: *`); false when something already is. With `ifMatch` (only for a sink whose
   * readTextEntry gives ETags), replaces instead only the version with that ETag (S3 `If-Match`): false
   * when another is there, or none. For the run lock (runner/run-lock.ts).
   */
  createExclusive?(key: string, data: Buffer, options?: IfMatch): Promise<Stored | false>;
  /**
   * Whether createExclusive is known to be atomic, so that a lock can be created before it is looked for
   * (runner/run-lock.ts). S3: AWS itself; not a custom endpoint, as some S3-compatible stores ignore
   * If-None-Match and overwrite. Absent: not known.
   */
  createIsAtomic?(): Promise<boolean>;
  /**
   * Deletes `key` (nothing there is not an error). With `ifMatch`, only the version with that ETag (S3
   * `If-Match`): another version is left, quietly. For the run lock.
   */
  remove?(key: string, options?: IfMatch): Promise<void>;
  /** The URI an output key will have, for reports. */
  uriOf(key: string): string;
  /**
   * Checks, before anything is read or written, that the destination can take outputs (local: the root is
   * a folder, or can be made one, and is writable), and with `create` makes the folder. Throws StorageError.
   */
  prepare?(options: { create: boolean }): Promise<void>;
  /** How coarse the times the sink records are, in ms (S3: 1000, whole seconds); absent when exact. */
  readonly timeResolutionMs?: number;
  /** Writes are uploads (S3): worth overlapping with other images' processing. */
  readonly remote?: boolean;
  /** Payload bytes uploaded (and state read back) so far, for sinks that go over the network (S3). */
  readonly bytesTransferred?: number;
}
