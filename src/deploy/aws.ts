import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { STSClient } from '@aws-sdk/client-sts';
import { DeployError } from '../errors.js';

/** The AWS clients deploy and destroy use; built once at the CLI edge and passed in. */
export interface AwsClients {
  sts: STSClient;
  iam: IAMClient;
  lambda: LambdaClient;
  s3: S3Client;
  sqs: SQSClient;
  sns: SNSClient;
}

/** Waits between polls; injected so tests never wait. */
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

export interface StepOptions {
  dryRun: boolean;
  sleep: Sleep;
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

/** True when the SDK could not find any credentials (nothing was sent). */
export function isNoCredentials(error: unknown): boolean {
  const name = awsErrorName(error);
  const message = (error as Error | undefined)?.message ?? '';
  return name === 'CredentialsProviderError' || /could not load credentials/i.test(message);
}

/** Turns an SDK failure into one line a person can act on, naming the action and the resource. */
export function explainAwsError(error: unknown, action: string, resource: string): DeployError {
  if (error instanceof DeployError) return error;
  const name = awsErrorName(error);
  const message = (error as Error | undefined)?.message ?? String(error);
  if (isNoCredentials(error)) {
    return new DeployError('NO_CREDENTIALS', 'no AWS credentials found: run `aws configure` or `aws sso login`, set AWS_PROFILE, or pass --profile (--dry-run works without credentials)', { cause: error });
  }
  if (/region is missing/i.test(message)) {
    return new DeployError('NO_REGION', 'no AWS region configured: pass --region or set AWS_REGION', { cause: error });
  }
  if (EXPIRED.has(name)) {
    return new DeployError('BAD_CREDENTIALS', `AWS rejected the credentials (${name}) on ${action}: refresh them (aws sso login) or check --profile`, { cause: error });
  }
  if (ACCESS_DENIED.has(name) || httpStatusOf(error) === 403) {
    return new DeployError('ACCESS_DENIED', `access denied: ${action} on ${resource}; the deploying identity needs this permission (see "Deploying the Lambda" in the README)`, { cause: error });
  }
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
