/** One object an event says was created. */
export interface ObjectRef {
  bucket: string;
  /** The real key: URL-decoded where the event encodes it. */
  key: string;
  /** From the event; undefined when the event does not say. */
  size: number | undefined;
  etag: string | undefined;
  /** How it arrived, for logs. */
  via: 's3' | 'sns' | 'sqs' | 'eventbridge' | 'batch';
}

export interface ParsedEvent {
  objects: ObjectRef[];
  /** Records that are not object creations (removals, S3's test event, unknown shapes), described. */
  ignored: string[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** S3 notifications encode keys as in a form: '+' is a space, and a real '+' arrives as %2B. */
export function decodeS3Key(encoded: string): string {
  const spaced = encoded.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A malformed escape cannot come from S3; keep the text rather than lose the record.
    return spaced;
  }
}

function fromS3Record(record: Json, via: ObjectRef['via'], out: ParsedEvent): void {
  const eventName = str(record['eventName']) ?? '';
  const s3 = isObject(record['s3']) ? record['s3'] : undefined;
  const bucket = isObject(s3?.['bucket']) ? str(s3['bucket']['name']) : undefined;
  const object = isObject(s3?.['object']) ? s3['object'] : undefined;
  const key = str(object?.['key']);
  if (!eventName.startsWith('ObjectCreated:')) {
    out.ignored.push(`${eventName || 'unnamed S3 event'}${key ? ` for ${key}` : ''}: not an object creation`);
    return;
  }
  if (!bucket || key === undefined) {
    out.ignored.push(`${eventName}: no bucket or key in the record`);
    return;
  }
  const size = typeof object?.['size'] === 'number' ? object['size'] : undefined;
  out.objects.push({ bucket, key: decodeS3Key(key), size, etag: str(object?.['eTag']), via });
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Walks any of the shapes S3 events reach a Lambda in, including one wrapped in another. */
function collect(event: unknown, via: ObjectRef['via'] | undefined, out: ParsedEvent): void {
  if (!isObject(event)) {
    out.ignored.push('an event that is not a JSON object');
    return;
  }
  // S3's "s3:TestEvent", sent once when a notification is configured.
  if (event['Event'] === 's3:TestEvent') {
    out.ignored.push('s3:TestEvent');
    return;
  }
  // EventBridge: keys in its "Object Created" detail are not URL-encoded.
  if (event['source'] === 'aws.s3' && isObject(event['detail'])) {
    const detail = event['detail'];
    if (event['detail-type'] !== 'Object Created') {
      out.ignored.push(`EventBridge ${String(event['detail-type'])}: not an object creation`);
      return;
    }
    const bucket = isObject(detail['bucket']) ? str(detail['bucket']['name']) : undefined;
    const object = isObject(detail['object']) ? detail['object'] : undefined;
    const key = str(object?.['key']);
    if (!bucket || key === undefined) {
      out.ignored.push('EventBridge Object Created: no bucket or key');
      return;
    }
    out.objects.push({ bucket, key, size: typeof object?.['size'] === 'number' ? object['size'] : undefined, etag: str(object?.['etag']), via: 'eventbridge' });
    return;
  }
  // An SNS notification delivered to SQS without raw message delivery.
  if (event['Type'] === 'Notification' && typeof event['Message'] === 'string') {
    collect(parseJson(event['Message']), via ?? 'sns', out);
    return;
  }
  const records = event['Records'];
  if (!Array.isArray(records)) {
    out.ignored.push('an event of an unknown shape (no Records)');
    return;
  }
  for (const record of records) {
    if (!isObject(record)) {
      out.ignored.push('a record that is not a JSON object');
      continue;
    }
    const source = str(record['eventSource']) ?? str(record['EventSource']);
    if (source === 'aws:sns' && isObject(record['Sns'])) {
      const message = parseJson(str(record['Sns']['Message']));
      if (message === undefined) out.ignored.push('an SNS message that is not JSON');
      else collect(message, via ?? 'sns', out);
    } else if (source === 'aws:sqs') {
      const body = parseJson(str(record['body']));
      if (body === undefined) out.ignored.push('an SQS message that is not JSON');
      else collect(body, via ?? 'sqs', out);
    } else if (isObject(record['s3'])) {
      fromS3Record(record, via ?? 's3', out);
    } else {
      out.ignored.push(`a record from ${source ?? 'an unknown source'}`);
    }
  }
}

/**
 * The objects an invocation is about: S3 records (several per event), the same records inside SNS or SQS
 * messages, or an EventBridge "Object Created" event. Never throws.
 */
export function parseEvent(event: unknown): ParsedEvent {
  const out: ParsedEvent = { objects: [], ignored: [] };
  collect(event, undefined, out);
  return out;
}

/** One task of an S3 Batch Operations invocation, its key decoded. */
export interface BatchTask {
  taskId: string;
  /** Undefined when the task names no bucket or key: it is answered PermanentFailure, never dropped. */
  object: ObjectRef | undefined;
}

/** An S3 Batch Operations LambdaInvoke event, schema 1.0 or 2.0. */
export interface BatchEvent {
  schema: '1.0' | '2.0';
  invocationId: string;
  jobId: string | undefined;
  /** Schema 2.0 only; 1.0 has none. */
  userArguments: Record<string, string>;
  tasks: BatchTask[];
}

/**
 * The `invocationSchemaVersion` of an event shaped like a Batch Operations invocation (tasks and a
 * version) that parseBatchEvent cannot read: another schema, or no invocationId. Undefined otherwise.
 */
export function unreadableBatchSchema(event: unknown): string | undefined {
  if (!isObject(event) || !Array.isArray(event['tasks']) || !('invocationSchemaVersion' in event)) return undefined;
  return parseBatchEvent(event) ? undefined : JSON.stringify(event['invocationSchemaVersion']);
}

/**
 * The event when it is an S3 Batch Operations invocation, undefined otherwise. Schema 1.0 names the bucket
 * by ARN (`s3BucketArn`) and has no user arguments; 2.0 names it (`s3Bucket`) and passes the job's
 * `userArguments`. Keys arrive URL-encoded as the manifest has them.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html
 */
export function parseBatchEvent(event: unknown): BatchEvent | undefined {
  if (!isObject(event) || !Array.isArray(event['tasks'])) return undefined;
  const schema = event['invocationSchemaVersion'];
  const invocationId = str(event['invocationId']);
  if ((schema !== '1.0' && schema !== '2.0') || invocationId === undefined) return undefined;
  const job = isObject(event['job']) ? event['job'] : {};
  const args = isObject(job['userArguments']) ? job['userArguments'] : {};
  const userArguments = Object.fromEntries(Object.entries(args).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])));
  const tasks = event['tasks'].map((task, index): BatchTask => {
    const fields = isObject(task) ? task : {};
    const taskId = str(fields['taskId']) ?? `task-${index}`;
    const bucket = str(fields['s3Bucket']) ?? /^arn:[^:]+:s3:::([^/]+)$/.exec(str(fields['s3BucketArn']) ?? '')?.[1];
    const key = str(fields['s3Key']);
    return { taskId, object: bucket && key ? { bucket, key: decodeS3Key(key), size: undefined, etag: undefined, via: 'batch' } : undefined };
  });
  return { schema, invocationId, jobId: str(job['id']), userArguments, tasks };
}
