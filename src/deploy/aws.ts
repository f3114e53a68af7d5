import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { STSClient } from '@aws-sdk/client-sts';
import { DeployError } from '../errors.js';
import { isNoCredentials, isNoRegion } from '../storage/s3.js';

/** The AWS clients deploy and destroy use; built once at the CLI edge and passed in. */
export interface AwsClients {
  sts: STSClient;
  iam: IAMClient;
  lambda: LambdaClient;
  s3: S3Client;
  sqs: SQSClient;
  /** SNS in the deploy region. */
  sns: SNSClient;
  /** SNS in another region: a topic given with --sns-topic is only reachable through its own region's endpoint. */
  snsIn: (region: string) => SNSClient;
}

/** Waits between polls; injected so tests never wait. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a step is about: the same words for a dry run's plan and for what the step did. */
export interface StepTarget {
  resource: string;
  name: string;
  /** What a first deploy would create. */
  detail?: string;
}

export type StepStatus =
  | 'created' | 'updated' | 'unchanged'
  | 'would create' | 'would update'
  | 'deleted' | 'would delete' | 'absent' | 'kept';

/** What one idempotent step did (or, with --dry-run, would do). */
export interface StepResult {
  resource: string;
  name: string;
  status: StepStatus;
  detail?: string;
}

/** A step's result for `target`; `detail` replaces the target's own (undefined: keep it, '': drop it). */
export function stepResult(target: StepTarget, status: StepStatus, detail?: string): StepResult {
  const text = detail ?? target.detail;
  return { resource: target.resource, name: target.name, status, ...(text ? { detail: text } : {}) };
}

export interface StepOptions {
  dryRun: boolean;
  sleep: Sleep;
}

/** The error names each service uses for "no such resource"; `attempt` turns them into undefined. */
export const MISSING = {
  iam: ['NoSuchEntityException', 'NoSuchEntity'],
  lambda: ['ResourceNotFoundException'],
  sqs: ['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'],
  sns: ['NotFoundException', 'NotFound', 'ResourceNotFoundException'],
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

/**
 * Retries `call` while `isRetryable(error)`, up to `attempts` calls, sleeping `delayMs` between them; the
 * last error is rethrown as it is. For AWS's eventual consistency (a new role not yet visible to Lambda).
 */
export async function retryWhile<T>(isRetryable: (error: unknown) => boolean, options: { attempts: number; delayMs: number; sleep: Sleep }, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= options.attempts || !isRetryable(error)) throw error;
      await options.sleep(options.delayMs);
    }
  }
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
  return new DeployError('AWS_FAILED', `${action} on ${resource} failed: ${name}: ${message}`, { cause: error });
}

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
