import type { RecordResult } from './notify.js';

/** What S3 Batch Operations does with a task: keeps it, retries it, or reports it failed. */
export type BatchResultCode = 'Succeeded' | 'TemporaryFailure' | 'PermanentFailure';

export interface BatchTaskResult {
  taskId: string;
  resultCode: BatchResultCode;
  resultString: string;
}

/** The answer Batch Operations expects from a LambdaInvoke function (same schema and invocationId as the event). */
export interface BatchResponse {
  invocationSchemaVersion: '1.0' | '2.0';
  treatMissingKeysAs: BatchResultCode;
  invocationId: string;
  results: BatchTaskResult[];
}

/**
 * Failures that another attempt can cure: throttling, an endpoint that did not answer, a 5xx, a download
 * cut short, a topic that refused the publish. Anything else (a corrupt or refused image, a missing key,
 * access denied) fails the same way every time, and a retry would only cost an invocation.
 */
const TEMPORARY = new Set(['S3_THROTTLED', 'S3_UNREACHABLE', 'INTERRUPTED', 'NOTIFY_FAILED']);

/** Batch Operations keeps resultString in the completion report; long ones only make the CSV unreadable. */
const MAX_RESULT_STRING = 1024;

function isTemporary(code: string | undefined, error: string | undefined): boolean {
  if (code !== undefined && TEMPORARY.has(code)) return true;
  // S3_REQUEST_FAILED is the catch-all: a 5xx (InternalError, ServiceUnavailable) is worth retrying, a 4xx is not.
  return code === 'S3_REQUEST_FAILED' && /\(HTTP 5\d\d\)/.test(error ?? '');
}

/**
 * The Batch result of one record. Succeeded when the outputs were written or there was nothing to write
 * (a folder marker, an empty placeholder); TemporaryFailure only for what a retry can cure; PermanentFailure
 * with the code and message otherwise. A key that no longer exists is permanent: a retry finds it missing too.
 */
export function batchResultOf(result: RecordResult): { resultCode: BatchResultCode; resultString: string } {
  // One line each: a report row per task, and a message from sharp may span several.
  const text = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' ').slice(0, MAX_RESULT_STRING);
  if (result.status === 'processed') return { resultCode: 'Succeeded', resultString: text(`processed: ${result.outputs.map((o) => o.key).join(' ')}`) };
  if (result.status === 'skipped' && result.code === undefined) return { resultCode: 'Succeeded', resultString: text(`skipped: ${result.reason ?? 'nothing to do'}`) };
  if (result.status === 'failed' && isTemporary(result.code, result.error)) return { resultCode: 'TemporaryFailure', resultString: text(`${result.code}: ${result.error ?? 'failed'}`) };
  const code = result.code ?? (result.status === 'ignored' ? 'NOT_PROCESSED' : 'UNEXPECTED');
  return { resultCode: 'PermanentFailure', resultString: text(`${code}: ${result.error ?? result.reason ?? 'failed'}`) };
}
