import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import { describeError, InputError, StorageError } from '../errors.js';
import { isImageKey, joinKey, relativeTo } from '../pipeline/layout.js';
import { createPlanner } from '../pipeline/plan.js';
import type { Pipeline } from '../pipeline/process.js';
import { executeJob, type FileReport, type OutputReport } from '../runner/run-pipeline.js';
import { formatS3Uri, S3Source, toStorageError } from '../storage/s3.js';
import type { Sink, SourceEntry } from '../storage/types.js';
import { notificationFor, type RecordResult } from './notify.js';
import { batchResultOf, type BatchResponse } from './batch-result.js';
import { parseBatchEvent, parseEvent, unreadableBatchSchema, type BatchEvent, type ObjectRef } from './parse-event.js';
import type { LambdaSettings } from './settings.js';

/** Everything the handler needs, built once at module scope and injected. */
export interface HandlerDeps {
  s3: S3Client;
  sns: SNSClient | undefined;
  pipeline: Pipeline;
  settings: LambdaSettings;
  /** The processed bucket and prefix (an S3Sink). */
  sink: Sink;
  /** One JSON line per record, for CloudWatch. */
  log: (line: string) => void;
}

export interface EventSummary {
  processed: number;
  skipped: number;
  ignored: number;
  failed: number;
  records: RecordResult[];
}

/** Failures that no retry can fix: the event is stale, so it is skipped rather than retried. */
const SUPERSEDED: Record<string, string> = {
  S3_CHANGED: 'the object changed after this event; the newer version has its own event',
  S3_NO_SUCH_KEY: 'the object was deleted after this event',
};

const NOTHING_FRESH = { outputs: new Map<string, number>(), freshSince: undefined };

/**
 * A 403 on the upload itself. Whether the role's prefix-conditioned s3:ListBucket turns a deleted key's
 * 403 into a 404 is not documented, so a 403 may mean either: the message says both, with the key.
 */
function sourceDenied(uri: string): { error: string; code: string } {
  return { error: `${uri} is missing, or not readable by the function's role (S3 answered AccessDenied)`, code: 'S3_SOURCE_UNREADABLE' };
}

/** A Batch task's object, which its event does not describe: its size, and the ETag of the version measured. */
async function headOf(deps: HandlerDeps, ref: ObjectRef): Promise<{ size: number; etag: string | undefined }> {
  try {
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    return { size: head.ContentLength ?? 0, etag: head.ETag };
  } catch (error) {
    const uri = formatS3Uri(ref.bucket, ref.key);
    const mapped = toStorageError(error, 's3:GetObject', uri);
    if (mapped.code !== 'S3_ACCESS_DENIED') throw mapped;
    const denied = sourceDenied(uri);
    throw new StorageError(denied.code, denied.error, { cause: error });
  }
}

/**
 * Processes one object into every variant and format; never throws. `onEncoded` gets the result the
 * record will have if its uploads succeed, as soon as the outputs are encoded (and before they are written).
 */
async function processRecord(ref: ObjectRef, deps: HandlerDeps, onEncoded?: (result: RecordResult) => void): Promise<RecordResult> {
  const started = performance.now();
  const { settings, pipeline } = deps;
  const done = (fields: Partial<RecordResult> & Pick<RecordResult, 'status'>): RecordResult => ({
    bucket: ref.bucket,
    key: ref.key,
    outputs: [],
    bytes: 0,
    ...fields,
    ms: Math.round(performance.now() - started),
  });

  // Our own outputs never go round again, whatever the trigger's filter says.
  if (ref.bucket === settings.processedBucket && ref.key.startsWith(settings.processedPrefix)) {
    return done({ status: 'ignored', reason: `an output (under s3://${settings.processedBucket}/${settings.processedPrefix})` });
  }
  const relative = relativeTo(settings.sourcePrefix, ref.key);
  if (relative === undefined) {
    return ref.key === settings.sourcePrefix
      ? done({ status: 'skipped', reason: 'folder marker' })
      : done({ status: 'ignored', reason: `outside SOURCE_PREFIX ${settings.sourcePrefix}` });
  }
  // Before the HEAD a Batch task (no size in the event) needs: a non-image costs no request.
  if (!relative.endsWith('/') && !isImageKey(relative)) return done({ status: 'ignored', reason: 'not an image (by extension)' });
  try {
    const head = ref.size === undefined ? await headOf(deps, ref) : undefined;
    const size = ref.size ?? head!.size;
    // Events carry the ETag bare; If-Match (S3Source reads only that version) wants it quoted. A Batch task
    // has none: the HEAD's pins the GET to the version whose size the limits were checked against, so an
    // object replaced in between (by a bigger one) is not downloaded unchecked.
    const bare = ref.etag ?? head?.etag;
    const etag = bare ? `"${bare.replace(/"/g, '')}"` : undefined;
    const entry: SourceEntry = { key: relative, uri: formatS3Uri(ref.bucket, ref.key), size, mtimeMs: Date.now(), ...(etag ? { etag } : {}) };
    // A planner per record: one invocation behaves the same whether S3 batched its records or not.
    const job = createPlanner(pipeline.config, NOTHING_FRESH, { force: true, skipEmpty: true, maxFileSize: pipeline.config.limits.maxFileSize })(entry);
    if (job.action === 'ignore') return done({ status: 'ignored', reason: 'not an image (by extension)' });
    const source = new S3Source({ client: deps.s3, bucket: ref.bucket, prefix: settings.sourcePrefix });
    const sidecar = job.sidecar !== undefined ? { sidecar: { bucket: settings.processedBucket, key: joinKey(settings.processedPrefix, job.sidecar) } } : {};
    const processed = (outputs: OutputReport[], placeholder: FileReport['placeholder']) => done({
      status: 'processed',
      bytes: size,
      ...sidecar,
      ...(placeholder ? { placeholder } : {}),
      outputs: outputs.map((o, i) => ({
        variant: o.variant,
        format: o.format,
        bucket: settings.processedBucket,
        key: joinKey(settings.processedPrefix, job.outputs[i]!.key),
        width: o.width,
        height: o.height,
        bytes: o.bytes,
      })),
    });
    const report = await executeJob(job, source, deps.sink, pipeline, false, undefined, onEncoded ? { onEncoded: (outputs, extra) => onEncoded(processed(outputs, extra.placeholder)) } : {});
    if (report.status === 'skipped') return done({ status: 'skipped', bytes: 0, reason: report.reason ?? 'skipped' });
    if (report.status === 'failed') {
      const superseded = report.code ? SUPERSEDED[report.code] : undefined;
      // The code stays on the record: a Batch task for a deleted key is a failure to report, not a skip.
      if (superseded) return done({ status: 'skipped', reason: superseded, code: report.code! });
      if (report.code === 'S3_ACCESS_DENIED' && report.error?.includes(` on ${entry.uri}`)) return done({ status: 'failed', bytes: 0, ...sourceDenied(entry.uri) });
      return done({ status: 'failed', bytes: 0, error: report.error ?? 'failed', ...(report.code ? { code: report.code } : {}) });
    }
    return { ...processed(report.outputs, report.placeholder), bytes: report.bytesIn };
  } catch (error) {
    return done({ status: 'failed', error: describeError(error), code: (error as { code?: string }).code ?? 'UNEXPECTED' });
  }
}

let publisher: Promise<typeof import('./publish.js')> | undefined;

/** The SNS half (publish.ts), loaded only once there is a client to publish with: see there. */
function loadPublisher(): Promise<typeof import('./publish.js')> {
  publisher ??= import('./publish.js');
  return publisher;
}

/** Publishes the record's message when a topic is configured; resolves with why it failed, if it did. */
async function publish(result: RecordResult, deps: HandlerDeps): Promise<string | undefined> {
  const message = notificationFor(result);
  if (!message || !deps.sns || !deps.settings.snsTopicArn) return undefined;
  try {
    const { publishNotification } = await loadPublisher();
    await publishNotification(deps.sns, deps.settings.snsTopicArn, message);
    return undefined;
  } catch (error) {
    return `the notification to ${deps.settings.snsTopicArn} failed: ${describeError(error)}`;
  }
}

/** A failed publish fails the record (so the invocation is retried and the message sent again). */
function withPublishFailure(result: RecordResult, failure: string | undefined): RecordResult {
  if (failure === undefined) return result;
  return { ...result, status: 'failed', error: result.error ? `${result.error}; ${failure}` : failure, code: result.code ?? 'NOTIFY_FAILED' };
}

/**
 * Processes one record and publishes its outcome. The "processed" message goes out while the outputs
 * upload, not after: publish and PUTs are independent round trips, so the record takes one instead of
 * two. Should an upload then fail, the "failed" message follows and the invocation fails (Lambda retries).
 */
async function processAndNotify(ref: ObjectRef, deps: HandlerDeps): Promise<RecordResult> {
  let early: Promise<string | undefined> | undefined;
  const result = await processRecord(ref, deps, (expected) => (early = publish(expected, deps)));
  if (early === undefined) return withPublishFailure(result, await publish(result, deps));
  const earlyFailure = await early;
  if (result.status === 'processed') return withPublishFailure(result, earlyFailure);
  return withPublishFailure(result, await publish(result, deps));
}

function logLine(result: RecordResult, via: string): string {
  return JSON.stringify({
    level: result.status === 'failed' ? 'error' : 'info',
    status: result.status,
    bucket: result.bucket,
    key: result.key,
    via,
    outputs: result.outputs.map((o) => o.key),
    ms: result.ms,
    bytes: result.bytes,
    ...(result.reason ? { reason: result.reason } : {}),
    ...(result.error ? { error: result.error, code: result.code } : {}),
  });
}

/**
 * An S3 Batch Operations invocation: one result per task, and never a throw for a task's failure (a throw
 * would fail every task of the invocation alike). No notification per task unless the job passed
 * notify=true: a million-object backfill must not send a million messages.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html
 */
async function respondToBatch(batch: BatchEvent, deps: HandlerDeps): Promise<BatchResponse> {
  const notifies = batch.userArguments['notify'] === 'true';
  const results = [];
  for (const task of batch.tasks) {
    if (!task.object) {
      results.push({ taskId: task.taskId, resultCode: 'PermanentFailure' as const, resultString: 'BATCH_TASK_INVALID: the task names no bucket or key' });
      continue;
    }
    const result = notifies ? await processAndNotify(task.object, deps) : await processRecord(task.object, deps);
    deps.log(logLine(result, 'batch'));
    results.push({ taskId: task.taskId, ...batchResultOf(result) });
  }
  return { invocationSchemaVersion: batch.schema, treatMissingKeysAs: 'PermanentFailure', invocationId: batch.invocationId, results };
}

/**
 * The handler body: every record is tried; if any failed, the invocation throws an error naming the
 * failed keys, so Lambda retries it and then hands it to the on-failure destination.
 */
export function createEventHandler(deps: HandlerDeps): (event: unknown) => Promise<EventSummary> {
  // Loaded now, not at the first publish: the "processed" message must start before the PUTs do. A failed
  // load is reported by the publish that awaits it.
  if (deps.sns) loadPublisher().catch(() => undefined);
  return async (event) => {
    const parsed = parseEvent(event);
    for (const reason of parsed.ignored) deps.log(JSON.stringify({ level: 'info', status: 'ignored', reason }));
    const summary: EventSummary = { processed: 0, skipped: 0, ignored: 0, failed: 0, records: [] };
    for (const ref of parsed.objects) {
      const result = await processAndNotify(ref, deps);
      deps.log(logLine(result, ref.via));
      summary[result.status] += 1;
      summary.records.push(result);
    }
    const failed = summary.records.filter((r) => r.status === 'failed');
    if (failed.length > 0) {
      const list = failed.map((r) => `${formatS3Uri(r.bucket, r.key)} (${r.error ?? 'failed'})`).join('; ');
      throw new Error(`img-pipeline: ${failed.length} of ${summary.records.length} records failed: ${list}`);
    }
    return summary;
  };
}

/** The function's entry: a Batch Operations event gets its per-task answer, any other event the body above. */
export function createLambdaHandler(deps: HandlerDeps): (event: unknown) => Promise<EventSummary | BatchResponse> {
  const events = createEventHandler(deps);
  return async (event) => {
    const batch = parseBatchEvent(event);
    if (batch) return respondToBatch(batch, deps);
    // Read as an S3 event it would be ignored, and its summary pass for a success with nothing processed.
    const schema = unreadableBatchSchema(event);
    if (schema !== undefined) {
      const error = new InputError('BATCH_SCHEMA_UNSUPPORTED', `a Batch Operations event this function cannot read (invocationSchemaVersion ${schema}): it reads schema 1.0 or 2.0, with an invocationId; create the job with one of those`);
      deps.log(JSON.stringify({ level: 'error', status: 'failed', error: error.message, code: error.code }));
      throw error;
    }
    return events(event);
  };
}
