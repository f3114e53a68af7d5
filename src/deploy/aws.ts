import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { STSClient } from '@aws-sdk/client-sts';
import pRetry from 'p-retry';
import { DeployError } from '../errors.js';
import { isNoCredentials, isNoRegion } from '../storage/s3.js';

/** The AWS clients deploy and destroy use; built once at the CLI edge and passed in. */
export interface AwsClients {
  sts: STSClient;
  iam: IAMClient;
  lambda: LambdaClient;
  s3: S3Client;
  sqs: SQSClient;
  logs: CloudWatchLogsClient;
  /** SNS in the deploy region. */
  sns: SNSClient;
  /** SNS in another region: a topic given with --sns-topic is only reachable through its own region's endpoint. */
  snsIn: (region: string) => SNSClient;
}

/** What a step is about: the same words for a dry run's plan and for what the step did. */
export interface StepTarget {
  resource: string;
  name: string;
  /** What a first deploy would create. */
  detail?: string;
  arn?: string;
  /** The exact settings, for the JSON plan. */
  settings?: Record<string, unknown>;
}

export type StepStatus =
  | 'created' | 'updated' | 'unchanged'
  | 'would create' | 'would update'
  | 'deleted' | 'would delete' | 'absent' | 'kept'
  | 'passed';

/** What one idempotent step did (or, with --dry-run, would do). */
export interface StepResult {
  resource: string;
  name: string;
  status: StepStatus;
  detail?: string;
  arn?: string;
  settings?: Record<string, unknown>;
}

/** A step's result for `target`; `detail` replaces the target's own (undefined: keep it, '': drop it). */
export function stepResult(target: StepTarget, status: StepStatus, detail?: string): StepResult {
  const text = detail ?? target.detail;
  return {
    resource: target.resource, name: target.name, status,
    ...(text ? { detail: text } : {}),
    ...(target.arn ? { arn: target.arn } : {}),
    ...(target.settings ? { settings: target.settings } : {}),
  };
}

export interface StepOptions {
  dryRun: boolean;
  /** Progress that is not a step's result: why deploy is waiting. */
  log: (line: string) => void;
}

/** The error names each service uses for "no such resource"; `attempt` turns them into undefined. */
export const MISSING = {
  iam: ['NoSuchEntityException', 'NoSuchEntity'],
  lambda: ['ResourceNotFoundException'],
  sqs: ['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'],
  sns: ['NotFoundException', 'NotFound', 'ResourceNotFoundException'],
  logs: ['ResourceNotFoundException'],
} as const;

export type TagList = { Key?: string | undefined; Value?: string | undefined }[];

/** Tags as a list of Key/Value pairs, the form IAM and SNS take. */
export function tagList(tags: Record<string, string>): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** Tags as IAM and SNS return them, as one object (Lambda and SQS use this form already). */
export function tagMap(tags: TagList | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']])));
}

/** How long to keep retrying one kind of eventual consistency, and how the waits grow. */
export interface RetryPolicy {
  /** Gives up once this much time has passed since the first call. */
  maxRetryTime: number;
  /** The first wait; each next one doubles, with jitter, up to `maxTimeout`. */
  minTimeout: number;
  maxTimeout: number;
}

/**
 * IAM changes can take minutes to reach Lambda: public reports show more than 5 minutes for a new role
 * (https://github.com/hashicorp/terraform-provider-aws/issues/44517).
 */
export const IAM_PROPAGATION: RetryPolicy = { maxRetryTime: 300_000, minTimeout: 2_000, maxTimeout: 30_000 };

/**
 * Retries `call` while `isRetryable(error)`, with exponential backoff and jitter (p-retry), until
 * `policy.maxRetryTime`; the last error is rethrown as it is. Before each wait, `onWait` gets the seconds
 * waited so far, to say why nothing seems to happen.
 */
export async function retryAws<T>(call: () => Promise<T>, options: { isRetryable: (error: unknown) => boolean; policy: RetryPolicy; onWait: (waitedSeconds: number) => void }): Promise<T> {
  const started = performance.now();
  return pRetry(call, {
    retries: Number.POSITIVE_INFINITY,
    factor: 2,
    randomize: true,
    ...options.policy,
    shouldRetry: ({ error }) => {
      if (!options.isRetryable(error)) return false;
      options.onWait(Math.round((performance.now() - started) / 1000));
      return true;
    },
  });
}

interface AwsErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** The SDK's error name ("NoSuchEntityException", "AccessDenied", ...). */
export function awsErrorName(error: unknown): string {
  const e = (error ?? {}) as AwsErrorShape;
  return e.name ?? e.Code ?? e.code ?? 'Error';
}

export function httpStatusOf(error: unknown): number | undefined {
  return ((error ?? {}) as AwsErrorShape).$metadata?.httpStatusCode;
}

export function responseHeader(error: unknown, name: string): string | undefined {
  return ((error ?? {}) as AwsErrorShape).$response?.headers?.[name];
}

const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'AuthorizationError', 'AuthorizationErrorException', 'UnauthorizedOperation', 'Forbidden', '403']);
const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired', 'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch']);

/** Turns an SDK failure into one line a person can act on, naming the action and the resource. */
export function explainAwsError(error: unknown, action: string, resource: string): DeployError {
  if (error instanceof DeployError) return error;
  const name = awsErrorName(error);
  if (isNoCredentials(error)) {
    return new DeployError('NO_CREDENTIALS', 'no AWS credentials found: run `aws configure` or `aws sso login`, set AWS_PROFILE, or pass --profile (--dry-run works without credentials)', { cause: error });
  }
  if (isNoRegion(error)) {
    return new DeployError('NO_REGION', 'no AWS region configured: pass --region or set AWS_REGION', { cause: error });
  }
  if (EXPIRED.has(name)) {
    return new DeployError('BAD_CREDENTIALS', `AWS rejected the credentials (${name}) on ${action}: refresh them (aws sso login) or check --profile`, { cause: error });
  }
  if (ACCESS_DENIED.has(name) || httpStatusOf(error) === 403) {
    return new DeployError('ACCESS_DENIED', `access denied: ${action} on ${resource}; the deploying identity needs this permission (see "Permissions for the deploying user" in docs/lambda.md)`, { cause: error });
  }
  const message = (error as Error | undefined)?.message ?? String(error);
  const quota = QUOTAS.find((q) => q.test(name, message));
  if (quota) {
    return new DeployError('QUOTA_EXCEEDED', `${action} on ${resource}: the account's ${quota.quota} quota is too low (${message.trim()}). ${quota.raise}`, { cause: error });
  }
  return new DeployError('AWS_FAILED', `${action} on ${resource} failed: ${name}: ${message}`, { cause: error });
}

const SERVICE_QUOTAS = 'Service Quotas console (https://console.aws.amazon.com/servicequotas/home)';

/**
 * Quotas a new account hits first: its Lambda concurrency (10 instead of 1,000) and memory (3,008 MB
 * instead of 10,240) start reduced, and AWS names them only in the message
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
 * https://github.com/alexcasalboni/aws-lambda-power-tuning/pull/181).
 */
const QUOTAS: { test: (name: string, message: string) => boolean; quota: string; raise: string }[] = [
  {
    test: (_name, message) => /UnreservedConcurrentExecution below its minimum value/i.test(message),
    quota: 'Lambda "Concurrent executions"',
    raise: `Raise it in the ${SERVICE_QUOTAS} > AWS Lambda > Concurrent executions, for this region`,
  },
  {
    test: (_name, message) => /'MemorySize' value failed to satisfy constraint/i.test(message),
    quota: 'Lambda memory (new accounts are held at 3008 MB until AWS lifts it)',
    raise: `Deploy with --memory 3008 or less, or ask AWS Support to lift it (${SERVICE_QUOTAS} > AWS Lambda)`,
  },
  {
    test: (name) => name === 'CodeStorageExceededException',
    quota: 'Lambda "Function and layer storage"',
    raise: `Delete old function versions, or raise it in the ${SERVICE_QUOTAS} > AWS Lambda > Function and layer storage`,
  },
  {
    // IAM's code is LimitExceeded; the SDK names the error LimitExceededException.
    test: (name, message) => (name === 'LimitExceeded' || name === 'LimitExceededException') && /quota for RolesPerAccount/i.test(message),
    quota: 'IAM roles per account',
    raise: `Delete unused roles, or raise it in the ${SERVICE_QUOTAS} > AWS Identity and Access Management (IAM) > Roles per account (us-east-1)`,
  },
  {
    test: (name) => name === 'LimitExceededException',
    quota: 'service',
    raise: `Find the quota the message names in the ${SERVICE_QUOTAS} and raise it there`,
  },
];

/**
 * Runs one AWS call. Errors named in `missing` mean "does not exist" and give undefined; every other
 * failure becomes a one-line DeployError that names the IAM action and the resource.
 */
export async function attempt<T>(action: string, resource: string, call: () => Promise<T>, missing: readonly string[] = []): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (missing.includes(awsErrorName(error))) return undefined;
    throw explainAwsError(error, action, resource);
  }
}

/** Like `attempt`, for calls whose target must exist. */
export async function must<T>(action: string, resource: string, call: () => Promise<T>): Promise<T> {
  return (await attempt(action, resource, call)) as T;
}

/** IAM and Lambda return policy documents URL-encoded; S3 and Lambda's resource policy return plain JSON. */
export function parsePolicyDocument(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  const plain = text.trimStart().startsWith('{') ? text : decodeURIComponent(text);
  return JSON.parse(plain) as unknown;
}

/**
 * Policy documents compare equal regardless of key order, and a single Action/Resource as a string
 * or a one-element array (IAM may hand either back).
 */
export function samePolicy(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => canonical(v));
    if (key === 'Action' || key === 'Resource' || key === 'NotAction' || key === 'Service') {
      const sorted = items.map((v) => JSON.stringify(v)).sort();
      return sorted.length === 1 ? JSON.parse(sorted[0]!) : sorted.map((v) => JSON.parse(v) as unknown);
    }
    return items;
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k], k)]));
  }
  return value;
}
