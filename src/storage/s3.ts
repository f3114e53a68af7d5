import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { ConfigError, ImgPipelineError, InputError, StorageError } from '../errors.js';
import { joinKey, OUTPUT_MARKER, relativeTo, STATE_KEY } from '../pipeline/layout.js';
import type { CustomEndpoint } from './s3-client.js';
import type { IfMatch, Sink, SinkEntry, SinkListOptions, Source, SourceEntry, Stored, TextEntry, WriteOptions } from './types.js';

// Loaded on first use, so a run over local folders never pays for importing the SDK (~0.1 s a process).
let sdk: Promise<typeof import('./s3-commands.js')> | undefined;
const loadSdk = () => (sdk ??= import('./s3-commands.js'));

/** A bucket and a key prefix, as written in `s3://bucket/prefix`. */
export interface S3Location {
  bucket: string;
  /** Everything after `bucket/`, verbatim ('' for the whole bucket). */
  prefix: string;
}

/** The IAM action a request needs, named in AccessDenied messages. */
export type S3Action = 's3:ListBucket' | 's3:GetObject' | 's3:PutObject' | 's3:DeleteObject';

/** Whether a CLI argument names an S3 location rather than a local path. */
export function isS3Uri(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

// S3's naming rules (lower-case letters, digits, dots and hyphens, a letter or digit at each end, at most
// 63 characters): https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html. A name
// outside them can only fail later with a confusing region or signature error. The 3-character minimum is
// left to the server (S3-compatible stores differ); buckets created in us-east-1 before March 2018 may have
// other names, and are not supported.
const BUCKET_PATTERN = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;

/** Splits `s3://bucket/prefix` into its bucket and prefix; throws ConfigError for anything else. */
export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/is.exec(uri);
  const bucket = match?.[1] ?? '';
  if (!match || !BUCKET_PATTERN.test(bucket)) {
    const why = match && bucket !== '' ? ` ("${bucket}" is not a valid bucket name: up to 63 lower-case letters, digits, dots and hyphens)` : '';
    throw new ConfigError('S3_URI_INVALID', `expected an S3 URI like s3://bucket/prefix/, received "${uri}"${why}`);
  }
  return { bucket, prefix: match[2] ?? '' };
}

/** The prefix as a folder: '' or ending in '/', so `s3://b/in` never lists `in2/`. */
export function folderPrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** `s3://bucket/key` for reports. Keys stay as they are (spaces, unicode, '+'), like the AWS CLI prints them. */
export function formatS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

type SdkError = Error & {
  code?: string;
  Code?: string;
  Region?: string;
  Endpoint?: string;
  hostname?: string;
  address?: string;
  port?: number;
  errors?: SdkError[];
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
};

/** True when the SDK found no credentials (nothing was sent). Shared with deploy's error mapping. */
export function isNoCredentials(error: unknown): boolean {
  const e = (error ?? {}) as SdkError;
  return (e.name ?? e.Code ?? e.code) === 'CredentialsProviderError' || /could not load credentials/i.test(e.message ?? '');
}

/** True when the SDK has no region to send to. Shared with deploy's error mapping. */
export function isNoRegion(error: unknown): boolean {
  return /region is missing/i.test((error as Error | undefined)?.message ?? String(error));
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

function regionHint(error: SdkError): string | undefined {
  const header = error.$response?.headers?.['x-amz-bucket-region'];
  if (header) return header;
  if (error.Region) return error.Region;
  const fromEndpoint = /s3[.-]([a-z0-9-]+)\.amazonaws\.com/i.exec(error.Endpoint ?? '')?.[1];
  if (fromEndpoint && fromEndpoint !== 'external-1') return fromEndpoint;
  // AuthorizationHeaderMalformed: "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
  return /expecting '([a-z0-9-]+)'/i.exec(error.message)?.[1];
}

function networkCode(error: SdkError): SdkError | undefined {
  if (error.code && NETWORK_CODES.has(error.code)) return error;
  // Node's happy-eyeballs connect reports one error per address inside an AggregateError.
  return error.errors?.find((e) => e.code && NETWORK_CODES.has(e.code));
}

/** What to name in "cannot reach" messages: the URL with its scheme, and the setting to check. */
function unreachable(endpoint: CustomEndpoint | undefined, network: SdkError | undefined): { where: string; check: string } {
  if (endpoint) return { where: endpoint.url, check: `check ${endpoint.origin} and the network` };
  const host = network?.hostname ?? network?.address;
  // Without a custom endpoint the SDK talks HTTPS to AWS.
  return { where: host ? `https://${host}${network?.port && network.port !== 443 ? `:${network.port}` : ''}` : 'the AWS S3 endpoint', check: 'check the network (and --region)' };
}

/**
 * Turns an SDK error into one line a person can act on, with a stable code; the SDK error stays as `cause`.
 * `endpoint` is the custom endpoint of the run, if any, for "cannot reach" messages.
 */
export function toStorageError(error: unknown, action: S3Action, uri: string, endpoint?: CustomEndpoint): ImgPipelineError {
  if (error instanceof ImgPipelineError) return error;
  const e = (error instanceof Error ? error : new Error(String(error))) as SdkError;
  const name = e.name === 'Error' || e.name === 'AggregateError' ? (e.Code ?? e.code ?? e.name) : e.name;
  const status = e.$metadata?.httpStatusCode;
  const bucket = /^s3:\/\/([^/]*)/.exec(uri)?.[1] ?? uri;
  const options = { cause: error };
  if (isNoCredentials(e)) {
    return new StorageError('S3_NO_CREDENTIALS', `no AWS credentials found (${e.message.split('\n')[0]}): pass --profile, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "aws sso login"`, options);
  }
  if (isNoRegion(e)) {
    return new StorageError('S3_NO_REGION', 'no AWS region configured: pass --region (or set AWS_REGION, or a region in your profile)', options);
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || (status === 403 && (name === 'Forbidden' || name === '403' || name === 'UnknownError'))) {
    return new StorageError('S3_ACCESS_DENIED', `AccessDenied: ${action} on ${uri}`, options);
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'ExpiredToken' || name === 'InvalidToken') {
    return new StorageError('S3_CREDENTIALS_REFUSED', `${name}: the credentials were refused for ${action} on ${uri}; check the profile or keys in use`, options);
  }
  if (name === 'NoSuchBucket') {
    return new StorageError('S3_NO_SUCH_BUCKET', `NoSuchBucket: the bucket ${bucket} does not exist (${action} on ${uri})`, options);
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || name === 'IllegalLocationConstraintException' || status === 301) {
    const region = regionHint(e);
    const hint = region ? `it is in ${region}: run again with --region ${region}` : 'run again with --region set to the bucket\'s region';
    return new StorageError('S3_WRONG_REGION', `the bucket ${bucket} is in another region (${action} on ${uri}); ${hint}`, options);
  }
  const network = networkCode(e);
  // The SDK's own connect and socket timeouts (requestHandler in s3-client.ts) are named TimeoutError.
  if (network || name === 'TimeoutError') {
    const { where, check } = unreachable(endpoint, network);
    const why = network?.code ?? `timed out: ${e.message.split('\n')[0]}`;
    return new StorageError('S3_UNREACHABLE', `cannot reach the S3 endpoint ${where} (${why}); ${check}`, options);
  }
  if (name === 'NoSuchKey' || (status === 404 && action === 's3:GetObject')) {
    return new StorageError('S3_NO_SUCH_KEY', `NoSuchKey: ${uri} does not exist (it may have been deleted since it was listed)`, options);
  }
  if (status === 404) {
    // A bucket that exists never answers 404 to a listing or an upload; a web page (a console port, a
    // proxy, a typo in the path) does.
    const where = endpoint?.url ?? 'the S3 endpoint';
    const check = endpoint ? `; check ${endpoint.origin}` : '';
    return new StorageError('S3_NOT_S3_API', `${where} answered HTTP 404 to ${action} on ${uri}: it does not look like an S3 API${check}`, options);
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return new StorageError('S3_CHANGED', `${uri} changed since it was listed; run again to process the new version`, options);
  }
  if (name === 'SlowDown' || status === 503) {
    return new StorageError('S3_THROTTLED', `SlowDown: ${action} on ${uri} was throttled after every retry; lower -j or raise --max-attempts`, options);
  }
  const detail = e.message && e.message !== name ? `: ${e.message.split('\n')[0]}` : '';
  return new StorageError('S3_REQUEST_FAILED', `${name}${status ? ` (HTTP ${status})` : ''}: ${action} on ${uri} failed${detail}`, options);
}

/**
 * Whether S3 refused a conditional request for the state of the key (412 PreconditionFailed, 409
 * ConditionalRequestConflict; with `ifMatch`, also 404 NoSuchKey: nothing to match), not for a fault.
 */
function isPreconditionRefusal(error: unknown, ifMatch: boolean): boolean {
  const e = error as SdkError;
  const status = e.$metadata?.httpStatusCode;
  if (status === 412 || status === 409 || e.name === 'PreconditionFailed' || e.name === 'ConditionalRequestConflict') return true;
  return ifMatch && (e.name === 'NoSuchKey' || (status === 404 && e.name !== 'NoSuchBucket'));
}

/**
 * A response body as one Buffer. In Node the body is a Readable: gathering its chunks with Buffer.concat
 * copies once into memory that is not zero-filled first, which the SDK's transformToByteArray does not
 * (it showed up at about 3% of an S3 run's main-thread time).
 */
async function collectBody(body: { transformToByteArray(): Promise<Uint8Array> }): Promise<Buffer> {
  if (!(Symbol.asyncIterator in body)) {
    const bytes = await body.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    received += chunk.length;
  }
  return Buffer.concat(chunks, received);
}

/** A download stopped by Ctrl-C: the runner reports the object as not done rather than as failed. */
function interrupted(uri: string, cause: unknown): StorageError {
  return new StorageError('INTERRUPTED', `the download of ${uri} was interrupted`, { cause });
}

/** What S3Source and S3Sink share: the client, where they point, and settings from the run. */
export interface S3PrefixOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  /** Keys per ListObjectsV2 page (S3's maximum and default is 1000); small values exercise paging in tests. */
  pageSize?: number;
  /** The run's custom endpoint, if any, so "cannot reach" messages name it and the setting it came from. */
  endpoint?: CustomEndpoint;
}

/** The endpoint the client was configured with (`s3.endpoint`), when the caller did not say. */
async function configuredEndpoint(client: S3Client): Promise<CustomEndpoint | undefined> {
  const provider = client.config.endpoint;
  if (!provider) return undefined;
  try {
    const ep = await provider();
    return { url: `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ''}${ep.path === '/' ? '' : ep.path}`, origin: '--endpoint' };
  } catch {
    return undefined;
  }
}

/** Whether a failed request was given up because the run's signal fired (Ctrl-C), not for its own sake. */
function isAbort(signal: AbortSignal | undefined): boolean {
  return signal?.aborted ?? false;
}

/**
 * Per-request abort signals that follow one run signal through a single listener. The SDK adds an
 * 'abort' listener to the signal of every request in flight: with the run's one signal, a run with a dozen
 * downloads and uploads in flight passed Node's limit of 10 (MaxListenersExceededWarning). Each request
 * gets its own child signal instead, dropped when the request settles.
 */
class RequestSignals {
  private readonly children = new Set<AbortController>();
  private parent: AbortSignal | undefined;
  private readonly onAbort = () => {
    for (const child of this.children) child.abort(this.parent?.reason);
  };

  /** Runs `send` with a signal that aborts when `signal` does; `send` alone when there is no signal. */
  async around<T>(signal: AbortSignal | undefined, send: (child: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (!signal) return send(undefined);
    if (signal !== this.parent) {
      this.parent?.removeEventListener('abort', this.onAbort);
      this.parent = signal;
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    const child = new AbortController();
    if (signal.aborted) child.abort(signal.reason);
    this.children.add(child);
    try {
      return await send(child.signal);
    } finally {
      this.children.delete(child);
    }
  }
}

/** Shared by source and sink: paged listing and error mapping. */
abstract class S3Prefix {
  protected readonly signals = new RequestSignals();
  readonly uri: string;
  protected readonly client: S3Client;
  protected readonly bucket: string;
  protected readonly prefix: string;
  protected readonly pageSize: number | undefined;
  protected readonly endpoint: CustomEndpoint | undefined;
  protected transferred = 0;

  constructor(options: S3PrefixOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.pageSize = options.pageSize;
    this.endpoint = options.endpoint;
    this.uri = formatS3Uri(options.bucket, options.prefix);
  }

  /** Payload bytes downloaded or uploaded so far (listing requests not included). */
  get bytesTransferred(): number {
    return this.transferred;
  }

  protected async fail(error: unknown, action: S3Action, uri: string): Promise<never> {
    throw toStorageError(error, action, uri, this.endpoint ?? (await configuredEndpoint(this.client)));
  }

  /**
   * One ListObjectsV2 page. Undefined when the signal was aborted (Ctrl-C) meanwhile; an error is mapped
   * (toStorageError) and rejects.
   */
  protected async requestPage(listPrefix: string, token: string | undefined, signal?: AbortSignal): Promise<ListObjectsV2CommandOutput | undefined> {
    const { ListObjectsV2Command } = await loadSdk();
    const command = new ListObjectsV2Command({ Bucket: this.bucket, Prefix: listPrefix, ContinuationToken: token, ...(this.pageSize ? { MaxKeys: this.pageSize } : {}) });
    try {
      return await this.signals.around(signal, (abortSignal) => this.client.send(command, { abortSignal }));
    } catch (error) {
      if (isAbort(signal)) return undefined;
      return this.fail(error, 's3:ListBucket', formatS3Uri(this.bucket, listPrefix));
    }
  }

  /**
   * Every object under `listPrefix`, in S3's order (UTF-8 bytes), one ListObjectsV2 page at a time.
   * The next page is requested as soon as the current one arrives, so a consumer working through a page
   * rarely waits for the next, and no more than two pages are ever held. When the signal is aborted
   * (Ctrl-C) the listing ends quietly: the run then reports what it did, rather than an AbortError.
   * `firstPage`, when given, is the first page already asked for (S3Source.open).
   */
  protected async *listObjects(listPrefix: string, signal?: AbortSignal, firstPage?: Promise<ListObjectsV2CommandOutput | undefined>): AsyncGenerator<{ key: string; size: number; lastModified: number; etag: string | undefined }> {
    const fetchPage = (token: string | undefined): Promise<ListObjectsV2CommandOutput | undefined> => {
      const page = this.requestPage(listPrefix, token, signal);
      page.catch(() => undefined); // awaited below; this only keeps an abandoned prefetch from being "unhandled"
      return page;
    };
    if (signal?.aborted) return;
    let next: Promise<ListObjectsV2CommandOutput | undefined> | undefined = firstPage ?? fetchPage(undefined);
    while (next) {
      const page: ListObjectsV2CommandOutput | undefined = await next;
      if (!page || signal?.aborted) return;
      next = page.IsTruncated && page.NextContinuationToken ? fetchPage(page.NextContinuationToken) : undefined;
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0, etag: object.ETag };
      }
    }
  }
}

export interface S3SourceOptions extends S3PrefixOptions {
  /** As written after the bucket: `in/` (a folder), `in` (the key `in` and the folder `in/`), or '' (all). */
  prefix: string;
}

/** Objects under an S3 prefix, listed page by page; keys are reported relative to the prefix. */
export class S3Source extends S3Prefix implements Source {
  /** S3 consoles create zero-byte objects as folder placeholders: skipped and counted, not failed. */
  readonly emptyObjectsArePlaceholders = true;
  /** Each read is a download: starting the next ones early overlaps them with the images being processed. */
  readonly readAhead = true;

  private firstPage: Promise<ListObjectsV2CommandOutput | undefined> | undefined;
  private listable: Promise<void> | undefined;

  /**
   * A source whose first listing page is asked for now, before the run lists it: `ready` settles with
   * that page, which `list` then uses. So credentials, bucket, region and access are checked by the
   * request the run needs anyway, instead of by one of their own a round trip (or a new connection's
   * two) before it. Cut short by Ctrl-C, `ready` resolves and the listing ends quietly.
   */
  static open(options: S3SourceOptions, signal?: AbortSignal): S3Source & { readonly ready: Promise<void> } {
    const source = new S3Source(options);
    source.firstPage = source.requestPage(source.prefix, undefined, signal);
    const ready = source.firstPage.then(() => undefined);
    // Awaited by the runner before anything is written; this only keeps a failure from being "unhandled" meanwhile.
    ready.catch(() => undefined);
    source.listable = ready;
    return source as S3Source & { readonly ready: Promise<void> };
  }

  /** Settled by the first listing page when the source was opened (S3Source.open); undefined otherwise. */
  get ready(): Promise<void> | undefined {
    return this.listable;
  }

  async *list(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    // The page asked for by open serves the first listing only; a second one starts afresh.
    const first = this.firstPage;
    this.firstPage = undefined;
    for await (const object of this.listObjects(this.prefix, signal, first)) {
      const key = this.relativeKey(object.key);
      if (key === undefined) continue;
      // LastModified is cut to the second: the source may have changed as late as the end of it.
      const mtimeMs = object.lastModified + 999;
      yield { key, uri: formatS3Uri(this.bucket, object.key), size: object.size, mtimeMs, ...(object.etag ? { etag: object.etag } : {}) };
    }
  }

  /**
   * Downloads one object. An object marked as our own output is refused before its body is read.
   * A body cut off midway is downloaded again (the SDK retries requests, not broken bodies), up to the
   * client's maxAttempts (`--max-attempts`).
   */
  read(entry: SourceEntry, signal?: AbortSignal): Promise<Buffer> {
    // One request signal for the headers and the body alike: Ctrl-C also stops a body halfway down.
    return this.signals.around(signal, (abortSignal) => this.download(entry, signal, abortSignal));
  }

  private async download(entry: SourceEntry, signal: AbortSignal | undefined, abortSignal: AbortSignal | undefined): Promise<Buffer> {
    const key = this.fullKey(entry);
    const { GetObjectCommand } = await loadSdk();
    const attempts = await this.maxAttempts();
    for (let attempt = 1; ; attempt += 1) {
      let response;
      try {
        // IfMatch: the ETag recorded on the outputs is then the ETag of the bytes they were made from.
        response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(entry.etag ? { IfMatch: entry.etag } : {}) }), { abortSignal });
      } catch (error) {
        if (signal?.aborted) throw interrupted(entry.uri, error);
        return this.fail(error, 's3:GetObject', entry.uri);
      }
      const body = response.Body;
      if (response.Metadata?.[OUTPUT_MARKER] !== undefined) {
        (body as { destroy?: () => void } | undefined)?.destroy?.();
        throw new InputError('INPUT_IS_OUTPUT', `${entry.uri} is an img-pipeline output (x-amz-meta-${OUTPUT_MARKER}); never processed`);
      }
      try {
        if (!body) throw new Error('the response has no body');
        const bytes = await collectBody(body);
        if (response.ContentLength !== undefined && bytes.length !== response.ContentLength) {
          throw new Error(`received ${bytes.length} of ${response.ContentLength} bytes`);
        }
        this.transferred += bytes.length;
        return bytes;
      } catch (error) {
        if (signal?.aborted) throw interrupted(entry.uri, error);
        if (attempt < attempts) continue;
        throw new StorageError('S3_READ_INCOMPLETE', `the download of ${entry.uri} broke off ${attempts} time${attempts === 1 ? '' : 's'}: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  private async maxAttempts(): Promise<number> {
    const configured = await this.client.config.maxAttempts().catch(() => 3);
    return Number.isInteger(configured) && configured >= 1 ? configured : 3;
  }

  private relativeKey(key: string): string | undefined {
    if (this.prefix === '' || this.prefix.endsWith('/')) return relativeTo(this.prefix, key);
    // `s3://b/photo.jpg` names one object: like a single local file, it maps to its base name.
    if (key === this.prefix) return key.slice(key.lastIndexOf('/') + 1);
    return relativeTo(`${this.prefix}/`, key);
  }

  private fullKey(entry: SourceEntry): string {
    const root = formatS3Uri(this.bucket, '');
    if (!entry.uri.startsWith(root)) throw new StorageError('S3_FOREIGN_ENTRY', `${entry.uri} was not listed from ${this.uri}`);
    return entry.uri.slice(root.length);
  }
}

export interface S3SinkOptions extends S3PrefixOptions {
  /** The destination prefix; `out` and `out/` mean the same folder. */
  prefix: string;
  /** Cache-Control of every output object (config `s3.cacheControl`). */
  cacheControl: string;
}

/** An S3 destination prefix. Each write is a single PutObject: atomic, and nothing to abort if it fails. */
export class S3Sink extends S3Prefix implements Sink {
  /** LastModified is whole seconds. */
  readonly timeResolutionMs = 1000;
  readonly remote = true;
  private readonly folder: string;
  private readonly cacheControl: string;

  constructor(options: S3SinkOptions) {
    const folder = folderPrefix(options.prefix);
    super({ ...options, prefix: folder });
    this.folder = folder;
    this.cacheControl = options.cacheControl;
  }

  async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
    const under = options.under ?? '';
    for await (const object of this.listObjects(this.folder + under, options.signal)) {
      const key = relativeTo(this.folder, object.key);
      if (key === undefined) continue;
      // As it is: an output counts as written at the start of its second (see SourceEntry.mtimeMs).
      yield { key, mtimeMs: object.lastModified, size: object.size };
    }
  }

  async readText(key: string): Promise<string | undefined> {
    return (await this.readTextEntry(key))?.text;
  }

  /** The object's text and the end of the second it was written in (it is compared like a source). */
  async readTextEntry(key: string): Promise<TextEntry | undefined> {
    const fullKey = joinKey(this.folder, key);
    const { GetObjectCommand } = await loadSdk();
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: fullKey }));
      const text = (await response.Body?.transformToString('utf8')) ?? '';
      this.transferred += Buffer.byteLength(text);
      return { text, mtimeMs: (response.LastModified?.getTime() ?? 0) + 999, ...(response.ETag ? { etag: response.ETag } : {}) };
    } catch (error) {
      const mapped = toStorageError(error, 's3:GetObject', this.uriOf(key));
      if (mapped.code === 'S3_NO_SUCH_KEY') return undefined;
      return this.fail(error, 's3:GetObject', this.uriOf(key));
    }
  }

  /**
   * One PutObject, whatever the size (S3 takes up to 5 GB so): atomic, and never a multipart upload that
   * could be left half-done. The body is a Buffer, so the SDK knows its length and can resend it on a retry.
   * The signal is not passed on: an upload already started completes, so Ctrl-C never wastes finished work.
   */
  async write(key: string, data: Buffer, options: WriteOptions, _signal?: AbortSignal): Promise<void> {
    const { PutObjectCommand } = await loadSdk();
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket,
        Key: joinKey(this.folder, key),
        Body: data,
        ContentType: options.contentType,
        // The state file changes when the config does; outputs never change under the same key and fingerprint.
        CacheControl: key === STATE_KEY ? 'no-cache' : this.cacheControl,
        Metadata: options.metadata,
      }));
    } catch (error) {
      await this.fail(error, 's3:PutObject', this.uriOf(key));
    }
    this.transferred += data.length;
  }

  /**
   * PutObject with `If-None-Match: *`, or with `ifMatch` `If-Match: <ETag>`: S3 answers 412
   * PreconditionFailed when the key exists (when another version is there), 409 ConditionalRequestConflict
   * when another conditional write to it is in flight
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html), and to `If-Match` on a
   * key that is gone, 404 NoSuchKey. Stores that ignore the headers (s3rver, older MinIO) overwrite
   * instead; run-lock.ts reads the lock back to catch that, and sends `ifMatch` only to AWS.
   */
  async createExclusive(key: string, data: Buffer, options: IfMatch = {}): Promise<Stored | false> {
    const { PutObjectCommand } = await loadSdk();
    const condition = options.ifMatch === undefined ? { IfNoneMatch: '*' } : { IfMatch: options.ifMatch };
    try {
      const response = await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: joinKey(this.folder, key), Body: data, ContentType: 'application/json', CacheControl: 'no-cache', ...condition }));
      return response.ETag ? { etag: response.ETag } : {};
    } catch (error) {
      if (isPreconditionRefusal(error, options.ifMatch !== undefined)) return false;
      return this.fail(error, 's3:PutObject', this.uriOf(key));
    }
  }

  /**
   * True for AWS S3 itself, which honours `If-None-Match: *` on PutObject (412 PreconditionFailed when the
   * key exists, 409 ConditionalRequestConflict when another conditional write to it is in flight:
   * https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html and
   * https://sdk.amazonaws.com/kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-put-object-request/if-none-match.html).
   * False for any custom endpoint (the run's, the client's, or one from the SDK's environment or config
   * file): s3rver ignores the header, and so do older S3-compatible stores.
   */
  async createIsAtomic(): Promise<boolean> {
    const config = this.client.config as { isCustomEndpoint?: boolean; serviceConfiguredEndpoint?: () => Promise<string | undefined> };
    if (this.endpoint || config.isCustomEndpoint) return false;
    return (await config.serviceConfiguredEndpoint?.().catch(() => 'unknown')) === undefined;
  }

  /**
   * DeleteObject; with `ifMatch`, `If-Match: <ETag>`, which AWS honours on general purpose buckets too:
   * 412 PreconditionFailed when another version is there, 409 when a PUT or DELETE of the key won
   * meanwhile, 404 NoSuchKey when it is gone, and all three leave the key as it is
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
   */
  async remove(key: string, options: IfMatch = {}): Promise<void> {
    const { DeleteObjectCommand } = await loadSdk();
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: joinKey(this.folder, key), ...(options.ifMatch === undefined ? {} : { IfMatch: options.ifMatch }) }));
    } catch (error) {
      if (options.ifMatch !== undefined && isPreconditionRefusal(error, true)) return;
      await this.fail(error, 's3:DeleteObject', this.uriOf(key));
    }
  }

  uriOf(key: string): string {
    return formatS3Uri(this.bucket, joinKey(this.folder, key));
  }
}
