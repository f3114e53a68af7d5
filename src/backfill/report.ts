import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { attempt, must } from '../deploy/aws.js';
import { DeployError } from '../errors.js';
import { formatS3Uri } from '../storage/s3.js';

/**
 * Splits CSV text, arriving in chunks, into records: fields may be quoted, with `""` for a quote and line
 * breaks inside quotes (Batch quotes a ResultMessage that holds commas or quotes). Streams: only the
 * record being read is held.
 */
export async function* parseCsv(chunks: AsyncIterable<string>): AsyncGenerator<string[]> {
  let field = '';
  let record: string[] = [];
  let quoted = false;
  let afterQuote = false;
  for await (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i += 1) {
      const c = chunk[i]!;
      if (quoted) {
        if (c !== '"') field += c;
        else if (chunk[i + 1] === '"') {
          field += '"';
          i += 1;
        } else {
          quoted = false;
          afterQuote = true;
        }
        continue;
      }
      if (c === '"' && field === '' && !afterQuote) quoted = true;
      else if (c === ',') {
        record.push(field);
        field = '';
        afterQuote = false;
      } else if (c === '\n' || c === '\r') {
        if (c === '\r' && chunk[i + 1] === '\n') i += 1;
        record.push(field);
        if (record.length > 1 || record[0] !== '') yield record;
        record = [];
        field = '';
        afterQuote = false;
      } else field += c;
    }
  }
  // A quote split across chunks ("" at a boundary) is rare enough in reports to read as one quote here.
  if (field !== '' || record.length > 0) {
    record.push(field);
    yield record;
  }
}

/** One task of the completion report: Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage. */
export interface ReportedTask {
  bucket: string;
  key: string;
  status: string;
  errorCode: string;
  httpStatus: string;
  message: string;
}

/**
 * The fields of Report_CSV_20180820. The documented schema names ErrorCode before HTTPStatusCode, but
 * AWS's own example of a Lambda task has `200,PermanentFailure` there: whichever of the two is a number
 * is taken for the HTTP status. https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-examples-reports.html
 */
export function reportedTask(fields: readonly string[]): ReportedTask {
  const [bucket = '', key = '', , status = '', fifth = '', sixth = '', message = ''] = fields;
  const [httpStatus, errorCode] = /^\d+$/.test(fifth) ? [fifth, sixth] : [sixth, fifth];
  let decoded = key;
  try {
    decoded = decodeURIComponent(key);
  } catch {
    // Kept as written: a key that is not an escape sequence is shown as it is.
  }
  return { bucket, key: decoded, status, errorCode, httpStatus, message };
}

/** The report's top-level manifest.json: where each results CSV is. */
interface ReportManifest {
  Format?: string;
  Results?: { TaskExecutionStatus?: string; Bucket?: string; Key?: string }[];
}

export interface CompletionReport {
  /** `s3://bucket/<prefix>/job-<id>/manifest.json` */
  location: string;
  failed: ReportedTask[];
  failedCount: number;
  succeededCount: number;
}

async function* bodyText(body: AsyncIterable<Uint8Array> | undefined): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const chunk of body ?? []) yield decoder.decode(chunk, { stream: true });
  yield decoder.decode();
}

/**
 * Reads the job's completion report (`<prefix>/job-<id>/manifest.json` and the CSVs it lists), keeping the
 * first `limit` failed tasks and counting the rest. Undefined when the report is not there (Batch writes
 * one only once at least one task ran).
 */
export async function readCompletionReport(s3: S3Client, report: { bucket: string; prefix: string }, jobId: string, limit: number): Promise<CompletionReport | undefined> {
  const folder = `${report.prefix.replace(/\/+$/, '')}/job-${jobId}/`;
  const manifestKey = `${folder}manifest.json`;
  const location = formatS3Uri(report.bucket, manifestKey);
  const object = await attempt('s3:GetObject', location, () => s3.send(new GetObjectCommand({ Bucket: report.bucket, Key: manifestKey })), ['NoSuchKey', 'NotFound']);
  if (!object) return undefined;
  let manifest: ReportManifest;
  try {
    manifest = JSON.parse((await object.Body?.transformToString('utf8')) ?? '') as ReportManifest;
  } catch (error) {
    throw new DeployError('REPORT_UNREADABLE', `the completion report ${location} is not JSON`, { cause: error });
  }
  const result: CompletionReport = { location, failed: [], failedCount: 0, succeededCount: 0 };
  for (const file of manifest.Results ?? []) {
    if (!file.Key) continue;
    const bucket = file.Bucket ?? report.bucket;
    const csv = await must('s3:GetObject', formatS3Uri(bucket, file.Key), () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: file.Key })));
    for await (const fields of parseCsv(bodyText(csv.Body as AsyncIterable<Uint8Array> | undefined))) {
      const task = reportedTask(fields);
      if (task.status === 'succeeded') {
        result.succeededCount += 1;
        continue;
      }
      result.failedCount += 1;
      if (result.failed.length < limit) result.failed.push(task);
    }
  }
  return result;
}
