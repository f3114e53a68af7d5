import type { Placeholder } from '../pipeline/placeholder.js';

/** One output as reported to subscribers. */
export interface NotifiedOutput {
  variant: string;
  format: string;
  bucket: string;
  key: string;
  width: number | undefined;
  height: number | undefined;
  bytes: number | undefined;
}

/** The outcome of one record, as logged and (for processed or failed) published. */
export interface RecordResult {
  status: 'processed' | 'failed' | 'skipped' | 'ignored';
  bucket: string;
  key: string;
  outputs: NotifiedOutput[];
  /** Bytes read from the source object. */
  bytes: number;
  ms: number;
  /** With sidecars on (config `sidecar`): where the sidecar went, and the placeholder it holds. */
  sidecar?: { bucket: string; key: string };
  placeholder?: Placeholder;
  /** Why it was skipped or ignored. */
  reason?: string;
  error?: string;
  code?: string;
}

/** The JSON message of one record; replaces the original's plain text "Processed X successfully". */
export interface NotificationMessage {
  tool: 'img-pipeline';
  status: 'processed' | 'failed';
  source: { bucket: string; key: string };
  outputs: NotifiedOutput[];
  sidecar?: { bucket: string; key: string };
  placeholder?: Placeholder;
  error?: string;
  code?: string;
}

/** Processed and failed records are published; skipped and ignored ones are only logged. */
export function notificationFor(result: RecordResult): NotificationMessage | undefined {
  if (result.status !== 'processed' && result.status !== 'failed') return undefined;
  return {
    tool: 'img-pipeline',
    status: result.status,
    source: { bucket: result.bucket, key: result.key },
    outputs: result.outputs,
    ...(result.sidecar !== undefined ? { sidecar: result.sidecar } : {}),
    ...(result.placeholder !== undefined ? { placeholder: result.placeholder } : {}),
    ...(result.error !== undefined ? { error: result.error } : {}),
    ...(result.code !== undefined ? { code: result.code } : {}),
  };
}

/**
 * SNS subjects "must be ASCII text that begins with a letter, number, or punctuation mark; must not
 * include line breaks or control characters; and must be less than 100 characters long"
 * (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html); one more fails the Publish with
 * InvalidParameter "Invalid parameter: Subject". One "?" per code point that is not printable ASCII.
 */
export const SUBJECT_MAX = 99;

/** The email subject of one record's message: at most SUBJECT_MAX printable ASCII characters. */
export function subjectFor(message: NotificationMessage): string {
  const name = message.source.key.slice(message.source.key.lastIndexOf('/') + 1);
  const text = Array.from(`img-pipeline: ${message.status} ${name}`, (c) => (/^[\x20-\x7e]$/.test(c) ? c : '?')).join('');
  return text.length > SUBJECT_MAX ? `${text.slice(0, SUBJECT_MAX - 3)}...` : text;
}
