// A local stand-in for S3 Batch Operations running a LambdaInvoke job against the unpacked zip, each
// "execution environment" a separate node process (batch-worker.mjs). What it plays, from AWS's docs:
// - one task per invocation, schema 2.0 events with the job's userArguments
//   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html);
// - TemporaryFailure is redriven, up to `maxAttempts`; a function error fails the task;
// - the job fails once more than half of its tasks have failed after `threshold` tasks (1,000 on AWS)
//   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html, "Tracking job failure");
// - the completion report: `<prefix>/job-<id>/manifest.json` listing `results/<sha>.csv` files of
//   Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage rows
//   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-examples-reports.html).
// What Batch does that it does not: throttle to the account's concurrency, or retry function errors.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { encodeManifestKey, parseManifestLine } from '../../src/backfill/manifest.js';

const WORKER = fileURLToPath(new URL('./batch-worker.mjs', import.meta.url));

export interface BatchJobOptions {
  fnDir: string;
  env: NodeJS.ProcessEnv;
  /** The client the driver reads the manifest and writes the report with (Batch's own access). */
  s3: S3Client;
  jobId: string;
  manifest: { bucket: string; key: string };
  report: { bucket: string; prefix: string; scope: 'AllTasks' | 'FailedTasksOnly' };
  userArguments: Record<string, string>;
  concurrency: number;
  /** Attempts per task while it answers TemporaryFailure. */
  maxAttempts?: number;
  /** Tasks that must have ended before the failure rate can fail the job (AWS: 1,000). */
  threshold?: number;
}

export interface BatchJobResult {
  status: 'Complete' | 'Failed';
  total: number;
  succeeded: number;
  failed: number;
  invocations: number;
  redriven: number;
  failureReasons: { FailureCode: string; FailureReason: string }[];
}

interface TaskOutcome {
  bucket: string;
  key: string;
  succeeded: boolean;
  resultCode: string;
  resultString: string;
}

interface Worker {
  child: ChildProcess;
  invoke(event: unknown): Promise<{ response?: { results?: { resultCode: string; resultString?: string }[] }; error?: { errorType: string; errorMessage: string } }>;
}

async function startWorker(fnDir: string, env: NodeJS.ProcessEnv): Promise<Worker> {
  const child = fork(WORKER, [fnDir], { cwd: fnDir, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const pending = new Map<number, (message: never) => void>();
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`batch worker exited with ${code}: ${stderr}`)));
    child.on('message', (message: { ready?: boolean; id?: number }) => {
      if (message.ready) return resolve();
      pending.get(message.id!)?.(message as never);
      pending.delete(message.id!);
    });
  });
  return {
    child,
    invoke: (event) => new Promise((resolve) => {
      next += 1;
      pending.set(next, resolve as never);
      child.send({ id: next, event });
    }),
  };
}

const csv = (field: string) => (/[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field);

/** Runs the job to its end; writes the completion report; never throws for a task. */
export async function runBatchJob(options: BatchJobOptions): Promise<BatchJobResult> {
  const maxAttempts = options.maxAttempts ?? 3;
  const threshold = options.threshold ?? 1000;
  const object = await options.s3.send(new GetObjectCommand({ Bucket: options.manifest.bucket, Key: options.manifest.key }));
  const lines = ((await object.Body?.transformToString('utf8')) ?? '').split('\n').filter(Boolean);
  const queue = lines.map((line, index) => ({ line, taskId: Buffer.from(`task-${index}`).toString('base64'), attempt: 1 }));
  const result: BatchJobResult = { status: 'Complete', total: lines.length, succeeded: 0, failed: 0, invocations: 0, redriven: 0, failureReasons: [] };
  const outcomes: TaskOutcome[] = [];
  const workers = await Promise.all(Array.from({ length: options.concurrency }, () => startWorker(options.fnDir, options.env)));
  const failing = () => result.succeeded + result.failed >= threshold && result.failed / (result.succeeded + result.failed) > 0.5;
  try {
    await Promise.all(workers.map(async (worker) => {
      for (let task = queue.shift(); task && !failing(); task = queue.shift()) {
        const { bucket } = parseManifestLine(task.line);
        const encodedKey = task.line.slice(task.line.indexOf(',') + 1);
        const event = {
          invocationSchemaVersion: '2.0',
          invocationId: randomBytes(18).toString('base64'),
          job: { id: options.jobId, userArguments: options.userArguments },
          tasks: [{ taskId: task.taskId, s3Bucket: bucket, s3Key: encodedKey, s3VersionId: null }],
        };
        result.invocations += 1;
        const answer = await worker.invoke(event);
        const r = answer.response?.results?.[0];
        const resultCode = answer.error ? 'PermanentFailure' : r?.resultCode ?? 'PermanentFailure';
        const resultString = answer.error ? `Lambda returned function error: ${JSON.stringify(answer.error)}` : r?.resultString ?? '';
        if (resultCode === 'TemporaryFailure' && task.attempt < maxAttempts) {
          result.redriven += 1;
          queue.push({ ...task, attempt: task.attempt + 1 });
          continue;
        }
        const succeeded = resultCode === 'Succeeded';
        result[succeeded ? 'succeeded' : 'failed'] += 1;
        outcomes.push({ bucket, key: encodedKey, succeeded, resultCode, resultString });
      }
    }));
  } finally {
    for (const worker of workers) worker.child.kill();
  }
  if (failing()) {
    result.status = 'Failed';
    result.failureReasons.push({ FailureCode: 'Job Task failure threshold', FailureReason: `more than 50% of tasks failed after ${result.succeeded + result.failed} tasks` });
  }
  await writeReport(options, outcomes);
  return result;
}

async function writeReport(options: BatchJobOptions, outcomes: TaskOutcome[]): Promise<void> {
  const folder = `${options.report.prefix.replace(/\/+$/, '')}/job-${options.jobId}/`;
  const results: { TaskExecutionStatus: string; Bucket: string; MD5Checksum: string; Key: string }[] = [];
  for (const status of ['succeeded', 'failed'] as const) {
    if (status === 'succeeded' && options.report.scope === 'FailedTasksOnly') continue;
    const rows = outcomes.filter((o) => o.succeeded === (status === 'succeeded'));
    if (rows.length === 0) continue;
    // As AWS's example has it: the HTTP status, then the result code, then the result string.
    const body = rows.map((o) => [o.bucket, o.key, '', status, '200', o.succeeded ? '' : o.resultCode, csv(o.resultString)].join(',')).join('\n') + '\n';
    const key = `${folder}results/${createHash('sha1').update(body).digest('hex')}.csv`;
    await options.s3.send(new PutObjectCommand({ Bucket: options.report.bucket, Key: key, Body: body }));
    results.push({ TaskExecutionStatus: status, Bucket: options.report.bucket, MD5Checksum: createHash('md5').update(body).digest('hex'), Key: key });
  }
  const manifest = { Format: 'Report_CSV_20180820', ReportCreationDate: new Date().toISOString(), Results: results, ReportSchema: 'Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage' };
  await options.s3.send(new PutObjectCommand({ Bucket: options.report.bucket, Key: `${folder}manifest.json`, Body: JSON.stringify(manifest) }));
}

/** The manifest line Batch would read for a key, for tests that build one by hand. */
export function manifestFor(bucket: string, keys: readonly string[]): string {
  return keys.map((key) => `${bucket},${encodeManifestKey(key)}\n`).join('');
}
