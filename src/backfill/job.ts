import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { GetAccountSettingsCommand, GetFunctionCommand, GetFunctionConcurrencyCommand, InvokeCommand, PublishVersionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateJobCommand, type S3ControlClient } from '@aws-sdk/client-s3-control';
import type { IAMClient } from '@aws-sdk/client-iam';
import { attempt, awsErrorName, MISSING, must, type StepOptions, type StepResult } from '../deploy/aws.js';
import { tagsUnreadable } from '../deploy/function.js';
import { ensureRoleSpec } from '../deploy/iam.js';
import { isOwnedBy, OWNER_TAG, resourceNames, type Architecture } from '../deploy/plan.js';
import { findPermission, permittedBucket } from '../deploy/trigger.js';
import { DeployError } from '../errors.js';
import { joinKey } from '../pipeline/layout.js';
import { folderPrefix, formatS3Uri } from '../storage/s3.js';
import { encodeManifestKey } from './manifest.js';
import type { BackfillPlan, BatchRolePlan, DeployedFunction } from './plan.js';

/** Lambda's default account concurrency, assumed when GetAccountSettings gives nothing. */
const DEFAULT_CONCURRENCY = 1000;

/**
 * What `backfill` needs to know about the deployed function: its settings (environment, memory,
 * architecture), the bucket its trigger is on (the S3 invoke permission deploy added), and the
 * concurrency it can use. Refuses a function deploy did not create, or one that records no fingerprint.
 */
export async function readDeployedFunction(lambda: LambdaClient, functionName: string, region: string): Promise<DeployedFunction> {
  const found = await attempt('lambda:GetFunction', functionName, () => lambda.send(new GetFunctionCommand({ FunctionName: functionName })), MISSING.lambda);
  const config = found?.Configuration;
  if (!config) throw new DeployError('NO_SUCH_FUNCTION', `the Lambda function ${functionName} does not exist in this account and region: deploy it first (img-pipeline deploy --function-name ${functionName} ...), or pass --region`);
  if (found.TagsError) throw tagsUnreadable(functionName, found.TagsError);
  if (!isOwnedBy(found.Tags, functionName)) {
    throw new DeployError('NOT_OURS', `the Lambda function ${functionName} was not created by img-pipeline deploy (no ${OWNER_TAG}=${functionName} tag): backfill only drives functions deploy made`);
  }
  const env = config.Environment?.Variables ?? {};
  const processedBucket = env['PROCESSED_BUCKET'];
  if (!processedBucket) throw new DeployError('FUNCTION_UNUSABLE', `the function ${functionName} has no PROCESSED_BUCKET in its environment: redeploy it with img-pipeline deploy`);
  const permission = await findPermission(lambda, functionName, resourceNames(functionName, region).statementId);
  const sourceBucket = permittedBucket(permission);
  if (!sourceBucket) throw new DeployError('FUNCTION_UNUSABLE', `the function ${functionName} has no S3 trigger permission (${resourceNames(functionName, region).statementId}), so which bucket it was deployed for is unknown: redeploy it with img-pipeline deploy`);
  return {
    name: functionName,
    arn: (config.FunctionArn ?? '').replace(/:\$LATEST$/, ''),
    sourceBucket,
    sourcePrefix: folderPrefix(env['SOURCE_PREFIX'] ?? ''),
    processed: { bucket: processedBucket, prefix: folderPrefix(env['PROCESSED_PREFIX'] ?? '') },
    fingerprint: env['CONFIG_FINGERPRINT'],
    memoryMb: config.MemorySize ?? 128,
    architecture: (config.Architectures?.[0] ?? 'x86_64') as Architecture,
    timeoutSeconds: config.Timeout ?? 3,
    codeSha256: config.CodeSha256 ?? '',
    concurrency: await availableConcurrency(lambda, functionName),
  };
}

/** Reserved concurrency when the function has some; otherwise what the account leaves unreserved. */
async function availableConcurrency(lambda: LambdaClient, functionName: string): Promise<number> {
  const reserved = await must('lambda:GetFunctionConcurrency', functionName, () => lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: functionName })));
  if (reserved.ReservedConcurrentExecutions !== undefined) return reserved.ReservedConcurrentExecutions;
  const account = await must('lambda:GetAccountSettings', 'the account', () => lambda.send(new GetAccountSettingsCommand({})));
  return account.AccountLimit?.UnreservedConcurrentExecutions ?? account.AccountLimit?.ConcurrentExecutions ?? DEFAULT_CONCURRENCY;
}

/** Step: the job's role, created or put back like deploy's. */
export async function ensureBatchRole(iam: IAMClient, role: BatchRolePlan, options: StepOptions): Promise<StepResult> {
  return ensureRoleSpec(iam, role, { resource: 'IAM role', name: role.name, detail: 'assumed by batchoperations.s3.amazonaws.com' }, options);
}

/**
 * A published version of the function's current code and configuration, so a redeploy while the job runs
 * cannot switch the code under it. Lambda publishes nothing new when nothing changed since the last
 * version, and returns that one: a rerun gets the same version (and so the same job token). CodeSha256
 * makes Lambda refuse if the code changed since it was read.
 * https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html
 */
export async function publishVersion(lambda: LambdaClient, fn: DeployedFunction): Promise<{ version: string; arn: string }> {
  try {
    const published = await lambda.send(new PublishVersionCommand({ FunctionName: fn.name, CodeSha256: fn.codeSha256, Description: 'img-pipeline backfill' }));
    const version = published.Version ?? '';
    return { version, arn: `${fn.arn}:${version}` };
  } catch (error) {
    // ResourceConflictException: an update is in progress (a deploy running now).
    if (awsErrorName(error) === 'ResourceConflictException' || awsErrorName(error) === 'PreconditionFailedException') {
      throw new DeployError('FUNCTION_BUSY', `the function ${fn.name} is being updated (${awsErrorName(error)}: ${(error as Error).message}); run backfill again once the deploy has finished`, { cause: error });
    }
    return must('lambda:PublishVersion', fn.name, () => Promise.reject(error));
  }
}

/**
 * Uploads the manifest (streamed from the file) and returns its ETag, which CreateJob needs. The folder is
 * next to the outputs, which neither the handler nor `run` reads as images, and never under the trigger.
 */
export async function uploadManifest(s3: S3Client, plan: BackfillPlan, file: string): Promise<string> {
  const { size } = await stat(file);
  const response = await must('s3:PutObject', formatS3Uri(plan.manifest.bucket, plan.manifest.key), () =>
    s3.send(new PutObjectCommand({ Bucket: plan.manifest.bucket, Key: plan.manifest.key, Body: createReadStream(file), ContentLength: size, ContentType: 'text/csv' })));
  if (!response.ETag) throw new DeployError('AWS_FAILED', `s3:PutObject of ${formatS3Uri(plan.manifest.bucket, plan.manifest.key)} returned no ETag`);
  return response.ETag;
}

/** A real Batch Operations event (schema 2.0) for one key, as the job will send it. */
export function canaryEvent(bucket: string, key: string, userArguments: Record<string, string>): unknown {
  return {
    invocationSchemaVersion: '2.0',
    invocationId: 'img-pipeline-canary',
    job: { id: 'img-pipeline-canary', userArguments },
    tasks: [{ taskId: 'canary', s3Bucket: bucket, s3Key: encodeManifestKey(key), s3VersionId: null }],
  };
}

/** What the canary showed: the billed duration of one task, from the REPORT line of its log tail. */
export interface CanaryResult {
  billedMs: number | undefined;
  resultString: string;
}

/**
 * Invokes the published version once, synchronously, with a Batch event for the first manifest key, and
 * checks every expected output exists afterwards. This proves the deployed code answers Batch events, that
 * its permissions work and that it writes the outputs, before a job fans out to every key.
 */
export async function runCanary(lambda: LambdaClient, s3: S3Client, options: { versionArn: string; bucket: string; key: string; userArguments: Record<string, string>; outputs: { bucket: string; prefix: string; keys: string[] } }): Promise<CanaryResult> {
  const payload = JSON.stringify(canaryEvent(options.bucket, options.key, options.userArguments));
  const response = await must('lambda:InvokeFunction', options.versionArn, () =>
    lambda.send(new InvokeCommand({ FunctionName: options.versionArn, InvocationType: 'RequestResponse', LogType: 'Tail', Payload: Buffer.from(payload) })));
  const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
  const where = formatS3Uri(options.bucket, options.key);
  if (response.FunctionError) {
    const body = safeJson(text) as { errorType?: string; errorMessage?: string } | undefined;
    throw new DeployError('CANARY_FAILED', `the canary invocation of ${options.versionArn} on ${where} failed: ${body?.errorType ?? response.FunctionError}: ${body?.errorMessage ?? text}. No job was created`);
  }
  const answer = safeJson(text) as { results?: { resultCode?: string; resultString?: string }[] } | undefined;
  const result = answer?.results?.[0];
  if (!result) {
    throw new DeployError('CANARY_FAILED', `the function ${options.versionArn} did not answer the Batch event with a result (it answered ${text.slice(0, 200) || 'nothing'}): its code predates Batch support; redeploy it with this version of img-pipeline. No job was created`);
  }
  if (result.resultCode !== 'Succeeded') {
    throw new DeployError('CANARY_FAILED', `the canary task on ${where} ended ${result.resultCode}: ${result.resultString ?? ''}. No job was created`);
  }
  for (const key of options.outputs.keys) {
    const full = joinKey(options.outputs.prefix, key);
    const head = await attempt('s3:GetObject', formatS3Uri(options.outputs.bucket, full), () => s3.send(new HeadObjectCommand({ Bucket: options.outputs.bucket, Key: full })), ['NotFound', 'NoSuchKey']);
    if (!head) throw new DeployError('CANARY_FAILED', `the canary task on ${where} answered Succeeded, but its output ${formatS3Uri(options.outputs.bucket, full)} is missing. No job was created`);
  }
  return { billedMs: billedDuration(response.LogResult), resultString: result.resultString ?? '' };
}

/** The "Billed Duration: N ms" of the REPORT line in a base64 log tail. */
export function billedDuration(logResult: string | undefined): number | undefined {
  if (!logResult) return undefined;
  const match = /Billed Duration: (\d+(?:\.\d+)?) ms/.exec(Buffer.from(logResult, 'base64').toString('utf8'));
  return match ? Number(match[1]) : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Creates the job; the deterministic token makes a retried request return the same job. */
export async function createJob(s3control: S3ControlClient, request: ConstructorParameters<typeof CreateJobCommand>[0]): Promise<string> {
  const response = await must('s3:CreateJob', `a Batch Operations job for ${request.Operation?.LambdaInvoke?.FunctionArn ?? 'the function'}`, () => s3control.send(new CreateJobCommand(request)));
  if (!response.JobId) throw new DeployError('AWS_FAILED', 's3:CreateJob returned no JobId');
  return response.JobId;
}

/** What is recorded next to the manifest, so anyone can find the job and what it was made of. */
export interface JobRecord {
  tool: 'img-pipeline';
  jobId: string;
  region: string;
  accountId: string;
  functionVersionArn: string;
  source: string;
  manifest: string;
  manifestEtag: string;
  report: string;
  clientRequestToken: string;
  objects: number;
  bytes: number;
  createdAt: string;
}

/** Writes `job-<id>.json` next to the manifest. */
export async function recordJob(s3: S3Client, plan: BackfillPlan, record: JobRecord): Promise<string> {
  const key = `${plan.folder.prefix}job-${record.jobId}.json`;
  await must('s3:PutObject', formatS3Uri(plan.folder.bucket, key), () =>
    s3.send(new PutObjectCommand({ Bucket: plan.folder.bucket, Key: key, Body: `${JSON.stringify(record, null, 2)}\n`, ContentType: 'application/json' })));
  return formatS3Uri(plan.folder.bucket, key);
}
