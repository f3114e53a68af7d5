import { DescribeJobCommand, ListJobsCommand, UpdateJobStatusCommand, type JobDescriptor, type JobStatus, type S3ControlClient } from '@aws-sdk/client-s3-control';
import { awsErrorName, explainAwsError } from '../deploy/aws.js';
import { DeployError } from '../errors.js';

/** Waits between DescribeJob polls; injected so tests never wait. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** States a job never leaves. https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html */
const TERMINAL = new Set(['Complete', 'Failed', 'Cancelled']);

/** What DescribeJob says about a job, as the CLI shows it. */
export interface JobView {
  id: string;
  status: string;
  total: number | undefined;
  succeeded: number;
  failed: number;
  failureReasons: { code: string; reason: string }[];
  statusUpdateReason: string | undefined;
  report: { bucket: string; prefix: string; scope: string } | undefined;
  description: string | undefined;
  elapsedSeconds: number | undefined;
  terminal: boolean;
}

function viewOf(id: string, job: JobDescriptor | undefined): JobView {
  const progress = job?.ProgressSummary;
  const report = job?.Report;
  const reportBucket = report?.Bucket ? /^arn:[^:]+:s3:::(.+)$/.exec(report.Bucket)?.[1] ?? report.Bucket : undefined;
  const status = job?.Status ?? 'Unknown';
  return {
    id,
    status,
    total: progress?.TotalNumberOfTasks,
    succeeded: progress?.NumberOfTasksSucceeded ?? 0,
    failed: progress?.NumberOfTasksFailed ?? 0,
    failureReasons: (job?.FailureReasons ?? []).map((r) => ({ code: r.FailureCode ?? '', reason: r.FailureReason ?? '' })),
    statusUpdateReason: job?.StatusUpdateReason,
    report: report?.Enabled && reportBucket ? { bucket: reportBucket, prefix: report.Prefix ?? '', scope: report.ReportScope ?? 'AllTasks' } : undefined,
    description: job?.Description,
    elapsedSeconds: progress?.Timers?.ElapsedTimeInActiveSeconds,
    terminal: TERMINAL.has(status),
  };
}

/**
 * A job id S3 Control does not know. The SDK models it as NotFoundException; AWS's troubleshooting page
 * names it NoSuchJobException ("The specified job does not exist"): both are taken.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshooting-batch-operations.html
 */
function isNoSuchJob(error: unknown): boolean {
  return ['NotFoundException', 'NoSuchJobException', 'NoSuchJob'].includes(awsErrorName(error));
}

function noSuchJob(jobId: string, region: string, error: unknown): DeployError {
  return new DeployError('NO_SUCH_JOB', `no Batch Operations job ${jobId} in this account and ${region}: check the id, and --region (jobs are regional and are deleted 90 days after they end)`, { cause: error });
}

/** DescribeJob, as a view. */
export async function describeJob(s3control: S3ControlClient, accountId: string, jobId: string, region: string): Promise<JobView> {
  try {
    const response = await s3control.send(new DescribeJobCommand({ AccountId: accountId, JobId: jobId }));
    return viewOf(jobId, response.Job);
  } catch (error) {
    if (isNoSuchJob(error)) throw noSuchJob(jobId, region, error);
    throw explainAwsError(error, 's3:DescribeJob', `job ${jobId}`);
  }
}

/** Cancels a job (UpdateJobStatus Cancelled); a job that already ended says so. */
export async function cancelJob(s3control: S3ControlClient, accountId: string, jobId: string, region: string): Promise<string> {
  try {
    const response = await s3control.send(new UpdateJobStatusCommand({ AccountId: accountId, JobId: jobId, RequestedJobStatus: 'Cancelled', StatusUpdateReason: 'cancelled with img-pipeline backfill --cancel' }));
    return response.Status ?? 'Cancelling';
  } catch (error) {
    if (isNoSuchJob(error)) throw noSuchJob(jobId, region, error);
    if (awsErrorName(error) === 'JobStatusException') {
      throw new DeployError('JOB_NOT_CANCELLABLE', `the job ${jobId} cannot be cancelled now: ${(error as Error).message}`, { cause: error });
    }
    throw explainAwsError(error, 's3:UpdateJobStatus', `job ${jobId}`);
  }
}

export interface WatchOptions {
  sleep: Sleep;
  intervalMs: number;
  signal?: AbortSignal;
  onUpdate: (view: JobView) => void;
}

/**
 * Polls DescribeJob until the job ends or the signal fires (Ctrl-C stops the watching, never the job).
 * Returns the last view, and whether watching was interrupted.
 */
export async function watchJob(s3control: S3ControlClient, accountId: string, jobId: string, region: string, options: WatchOptions): Promise<{ view: JobView; interrupted: boolean }> {
  // One listener for the whole watch, not one per poll.
  const stopped = aborted(options.signal);
  for (;;) {
    const view = await describeJob(s3control, accountId, jobId, region);
    options.onUpdate(view);
    if (view.terminal) return { view, interrupted: false };
    if (options.signal?.aborted) return { view, interrupted: true };
    await Promise.race([options.sleep(options.intervalMs), stopped]);
    if (options.signal?.aborted) return { view, interrupted: true };
  }
}

function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** 0 when every task succeeded, 1 when some failed, 2 when the job failed or was cancelled. */
export function exitCodeOf(view: JobView): number {
  if (view.status === 'Failed' || view.status === 'Cancelled') return 2;
  return view.failed > 0 ? 1 : 0;
}

/** Every state before a job ends. */
const ACTIVE: JobStatus[] = ['New', 'Preparing', 'Suspended', 'Ready', 'Active', 'Pausing', 'Paused', 'Completing', 'Failing', 'Cancelling'];

/**
 * A job not yet ended whose description starts with `description`: the backfill of the same source by the
 * same function. A rerun finds it instead of starting a second job over the same keys (a rerun's
 * manifest differs from the first's once the first job or its canary wrote outputs, so its token does too).
 */
export async function findActiveJob(s3control: S3ControlClient, accountId: string, description: string): Promise<{ id: string; status: string } | undefined> {
  let token: string | undefined;
  do {
    const page = await s3control.send(new ListJobsCommand({ AccountId: accountId, JobStatuses: ACTIVE, ...(token ? { NextToken: token } : {}) })).catch((error: unknown) => {
      throw explainAwsError(error, 's3:ListJobs', `the account ${accountId}`);
    });
    const found = page.Jobs?.find((job) => job.Description?.startsWith(description) && job.JobId);
    if (found) return { id: found.JobId!, status: found.Status ?? 'Active' };
    token = page.NextToken;
  } while (token);
  return undefined;
}
