import { ConfigError, DeployError } from '../errors.js';
import { folderPrefix } from '../storage/s3.js';

/** A runtime Lambda accepts for new functions; an existing function on a newer Node.js runtime is left alone. */
const RUNTIME = 'nodejs22.x';
const HANDLER = 'index.handler';
/**
 * Deploy tags what it creates and can tag (the role, the function, the queue and the topic) with this
 * tag, valued with the function name; it adopts, and destroy deletes, only resources tagged so.
 */
export const OWNER_TAG = 'img-pipeline:function';

/** True when `tags` say deploy created the resource for this function. */
export function isOwnedBy(tags: Record<string, string> | undefined, functionName: string): boolean {
  return tags?.[OWNER_TAG] === functionName;
}

const ARCHITECTURES = ['arm64', 'x86_64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** What the user asked for, checked and normalised (prefixes are '' or end in '/'). */
export interface DeployRequest {
  bucket: string;
  prefix: string;
  out: { bucket: string; prefix: string };
  functionName: string;
  arch: Architecture;
  memory: number;
  timeout: number;
  snsTopicArn?: string | undefined;
  notifyEmail?: string | undefined;
}

/** Where it goes. Without credentials (--dry-run) the account is a placeholder. */
export interface Account {
  accountId: string;
  region: string;
  partition: string;
}

export type TopicPlan =
  | { kind: 'none' }
  | { kind: 'existing'; arn: string }
  | { kind: 'create'; name: string; arn: string; email: string };

interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow';
  Principal?: { Service: string };
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** Everything deploy will create or update, computed without any I/O. */
export interface DeployPlan {
  request: DeployRequest;
  account: Account;
  tags: Record<string, string>;
  role: { name: string; arn: string; policyName: string; trustPolicy: PolicyDocument; policy: PolicyDocument };
  queue: { name: string; arn: string; retentionSeconds: number };
  topic: TopicPlan;
  fn: {
    name: string;
    arn: string;
    runtime: string;
    handler: string;
    architecture: Architecture;
    memory: number;
    timeout: number;
    description: string;
    environment: Record<string, string>;
    logGroup: string;
  };
  /** Asynchronous invocations (S3 events): retries, then the failure queue. */
  asyncInvoke: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number; onFailure: string };
  permission: { statementId: string; principal: 's3.amazonaws.com'; sourceArn: string; sourceAccount: string };
  notification: { id: string; bucket: string; prefix: string; events: string[] };
  testCommand: string;
}

/** The names deploy uses for a function; destroy derives the same ones from the function name alone. */
export function resourceNames(functionName: string): { role: string; policy: string; queue: string; topic: string; statementId: string; notificationId: string; logGroup: string } {
  return {
    role: `${functionName}-role`,
    policy: 'img-pipeline',
    queue: `${functionName}-failures`,
    topic: `${functionName}-notifications`,
    statementId: 'img-pipeline-s3-invoke',
    notificationId: `img-pipeline-${functionName}`,
    logGroup: `/aws/lambda/${functionName}`,
  };
}

/** '' stays '' (the whole bucket); anything else becomes a folder ending in '/'. */
export function normalizePrefix(prefix: string | undefined): string {
  return folderPrefix((prefix ?? '').replace(/^\/+/, ''));
}

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,59}$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** `--function-name`: Lambda's rule, short enough for the "-role" and "-notifications" the other names add. */
export function checkFunctionName(name: string): string {
  if (!FUNCTION_NAME.test(name)) {
    throw new ConfigError('FLAG_INVALID', `--function-name: expected 1-59 letters, digits, - or _ (the role adds "-role"), received "${name}"`);
  }
  return name;
}

/** A bucket name S3 accepts; `flag` names where it came from. */
export function checkBucketName(flag: string, bucket: string): string {
  if (!BUCKET_NAME.test(bucket)) throw new ConfigError('FLAG_INVALID', `${flag}: expected an S3 bucket name (3-63 lower-case letters, digits, . or -), received "${bucket}"`);
  return bucket;
}

function integerIn(flag: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError('FLAG_INVALID', `${flag}: expected an integer from ${min} to ${max}, received ${String(value)}`);
  }
  return value;
}

/** `--arch`: arm64 (Graviton, the cheaper per GB-second) or x86_64. */
export function parseArchitecture(value: string): Architecture {
  if (!(ARCHITECTURES as readonly string[]).includes(value)) {
    throw new ConfigError('FLAG_INVALID', `--arch: expected ${ARCHITECTURES.join(' or ')}, received "${value}"`);
  }
  return value as Architecture;
}

/** Validates the flags (before any I/O) and refuses setups whose outputs would re-trigger the function. */
export function checkDeployRequest(input: DeployRequest): DeployRequest {
  const request: DeployRequest = { ...input, prefix: normalizePrefix(input.prefix), out: { bucket: input.out.bucket, prefix: normalizePrefix(input.out.prefix) } };
  checkFunctionName(request.functionName);
  checkBucketName('--bucket', request.bucket);
  checkBucketName('--out', request.out.bucket);
  parseArchitecture(request.arch);
  integerIn('--memory', request.memory, 128, 10240);
  integerIn('--timeout', request.timeout, 1, 900);
  if (request.snsTopicArn !== undefined && request.notifyEmail !== undefined) {
    throw new ConfigError('FLAG_INVALID', '--sns-topic and --notify-email: give one (an existing topic, or an email address for a new topic), not both');
  }
  if (request.snsTopicArn !== undefined && !TOPIC_ARN.test(request.snsTopicArn)) {
    throw new ConfigError('FLAG_INVALID', `--sns-topic: expected a topic ARN like arn:aws:sns:us-east-1:123456789012:name, received "${request.snsTopicArn}"`);
  }
  if (request.notifyEmail !== undefined && !EMAIL.test(request.notifyEmail)) {
    throw new ConfigError('FLAG_INVALID', `--notify-email: expected an email address, received "${request.notifyEmail}"`);
  }
  refuseLoop(request);
  return request;
}

/**
 * Outputs land in the output bucket under `<out prefix><variant>/`. In the upload bucket they would fire
 * the trigger again whenever the trigger prefix is empty or overlaps the output prefix; and when the output
 * prefix covers the trigger prefix, the handler would take every upload for one of its own outputs.
 */
export function refuseLoop(request: Pick<DeployRequest, 'bucket' | 'prefix' | 'out'>): void {
  if (request.bucket !== request.out.bucket) return;
  const trigger = request.prefix;
  const out = request.out.prefix;
  const overlap = trigger === '' || out === '' || out.startsWith(trigger) || trigger.startsWith(out);
  if (!overlap) return;
  const triggerText = trigger === '' ? `every new object in s3://${request.bucket}/` : `new objects under s3://${request.bucket}/${trigger}`;
  const outText = `s3://${request.out.bucket}/${out}`;
  const why = trigger === '' || out.startsWith(trigger)
    ? `the trigger fires on ${triggerText}, and the outputs are written to ${outText}, inside it: every output would invoke the function again`
    : `the outputs are written to ${outText}, which contains the trigger prefix ${trigger}: the function would take every upload for one of its own outputs`;
  throw new DeployError('DEPLOY_REFUSED', `refusing to deploy: ${why}. Nothing was created. Use another --out bucket, or separate prefixes in the same bucket, e.g. --prefix uploads/ --out s3://${request.bucket}/processed/`);
}

function s3Arn(partition: string, bucket: string, keyPattern?: string): string {
  return `arn:${partition}:s3:::${bucket}${keyPattern === undefined ? '' : `/${keyPattern}`}`;
}

function topicPlan(request: DeployRequest, account: Account, topicName: string): TopicPlan {
  if (request.snsTopicArn) return { kind: 'existing', arn: request.snsTopicArn };
  if (request.notifyEmail) {
    return { kind: 'create', name: topicName, arn: `arn:${account.partition}:sns:${account.region}:${account.accountId}:${topicName}`, email: request.notifyEmail };
  }
  return { kind: 'none' };
}

/** The whole deployment as data: names, ARNs, policy documents, settings. Pure. */
export function planDeploy(request: DeployRequest, account: Account): DeployPlan {
  const { partition, region, accountId } = account;
  const names = resourceNames(request.functionName);
  const queueArn = `arn:${partition}:sqs:${region}:${accountId}:${names.queue}`;
  const topic = topicPlan(request, account, names.topic);
  const logGroupArn = `arn:${partition}:logs:${region}:${accountId}:log-group:${names.logGroup}`;

  const statements: PolicyStatement[] = [
    { Sid: 'ReadUploads', Effect: 'Allow', Action: 's3:GetObject', Resource: s3Arn(partition, request.bucket, `${request.prefix}*`) },
    // Without s3:ListBucket, S3 answers a GET of a deleted key with 403 AccessDenied instead of 404, and the
    // handler could not tell a stale event (skip it) from a real failure (retry it). Limited to the prefix.
    { Sid: 'KnowDeletedUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: s3Arn(partition, request.bucket), ...(request.prefix ? { Condition: { StringLike: { 's3:prefix': `${request.prefix}*` } } } : {}) },
    // Every output is one PutObject (S3Sink.write): never a multipart upload, so nothing to abort.
    { Sid: 'WriteOutputs', Effect: 'Allow', Action: 's3:PutObject', Resource: s3Arn(partition, request.out.bucket, `${request.out.prefix}*`) },
    { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [logGroupArn, `${logGroupArn}:*`] },
    { Sid: 'FailureQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
  ];
  if (topic.kind !== 'none') statements.push({ Sid: 'Notify', Effect: 'Allow', Action: 'sns:Publish', Resource: topic.arn });

  const environment: Record<string, string> = { PROCESSED_BUCKET: request.out.bucket };
  // Lambda keeps empty values, but leaving them out keeps `get-function-configuration` readable.
  if (request.out.prefix) environment['PROCESSED_PREFIX'] = request.out.prefix;
  if (request.prefix) environment['SOURCE_PREFIX'] = request.prefix;
  if (topic.kind !== 'none') environment['SNS_TOPIC_ARN'] = topic.arn;

  return {
    request,
    account,
    tags: { [OWNER_TAG]: request.functionName },
    role: {
      name: names.role,
      arn: `arn:${partition}:iam::${accountId}:role/${names.role}`,
      policyName: names.policy,
      trustPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      policy: { Version: '2012-10-17', Statement: statements },
    },
    // Fourteen days (the maximum) to look at a failed event before it is gone.
    queue: { name: names.queue, arn: queueArn, retentionSeconds: 1_209_600 },
    topic,
    fn: {
      name: request.functionName,
      arn: `arn:${partition}:lambda:${region}:${accountId}:function:${request.functionName}`,
      runtime: RUNTIME,
      handler: HANDLER,
      architecture: request.arch,
      memory: request.memory,
      timeout: request.timeout,
      // Lambda allows 256 characters.
      description: `img-pipeline: variants of s3://${request.bucket}/${request.prefix} into s3://${request.out.bucket}/${request.out.prefix}`.slice(0, 256),
      environment,
      logGroup: names.logGroup,
    },
    // Lambda's defaults, written down so a console change is put back on the next deploy.
    asyncInvoke: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 21_600, onFailure: queueArn },
    permission: { statementId: names.statementId, principal: 's3.amazonaws.com', sourceArn: s3Arn(partition, request.bucket), sourceAccount: accountId },
    notification: { id: names.notificationId, bucket: request.bucket, prefix: request.prefix, events: ['s3:ObjectCreated:*'] },
    testCommand: `aws s3 cp photo.jpg s3://${request.bucket}/${request.prefix}`,
  };
}
