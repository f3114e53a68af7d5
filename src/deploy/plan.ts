import { createHash } from 'node:crypto';
import { ConfigError, DeployError } from '../errors.js';
import { folderPrefix } from '../storage/s3.js';

/**
 * nodejs22.x is deprecated on 2027-04-30 and blocked for new functions from 2027-06-01
 * (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html); an existing function on a newer
 * Node.js runtime is left alone. The bundle is built for the same Node (package.ts).
 */
export const RUNTIME = 'nodejs24.x';
const HANDLER = 'index.handler';
/**
 * Deploy tags what it creates and can tag (the role, the function, the queue and the topic) with this
 * tag, valued with the function name; it adopts, and destroy deletes, only resources tagged so.
 */
export const OWNER_TAG = 'img-pipeline:function';
/** IAM is global: the role also says which region's function it serves, so another region never adopts it. */
export const REGION_TAG = 'img-pipeline:region';
/** IAM's limit for role names. */
const IAM_NAME_MAX = 64;
/** The retention values CloudWatch Logs accepts (PutRetentionPolicy), in days. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

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
  logRetentionDays: number;
  /** The bundled config's fingerprint, recorded in the environment so `backfill` can compare destinations with it. */
  fingerprint?: string | undefined;
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

/**
 * What deploy found about a default encryption key: nothing to grant (SSE-S3, or an AWS managed key such
 * as aws/s3, whose key policy already admits the account's principals through the service), a customer
 * managed key to grant, or unknown (not readable, or an alias deploy cannot resolve to a key ARN).
 */
export type KeyFinding =
  | { kind: 'none' }
  | { kind: 'kms'; keyArn: string }
  | { kind: 'unknown'; why: string; keyId?: string };

/** The keys of the upload bucket, the output bucket and an existing topic (--sns-topic). */
export interface EncryptionFindings {
  source: KeyFinding;
  output: KeyFinding;
  topic: KeyFinding;
}

export interface PolicyStatement {
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
  role: { name: string; arn: string; policyName: string; trustPolicy: PolicyDocument; policy: PolicyDocument; tags: Record<string, string> };
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
  };
  logGroup: { name: string; arn: string; retentionDays: number };
  /** Asynchronous invocations (S3 events): retries, then the failure queue. */
  asyncInvoke: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number; onFailure: string };
  permission: { statementId: string; principal: 's3.amazonaws.com'; sourceArn: string; sourceAccount: string };
  /** `prefix` as given (IAM, SOURCE_PREFIX); `filterPrefix` as S3's filter wants it, URL-encoded. */
  notification: { id: string; bucket: string; prefix: string; filterPrefix: string; events: string[] };
  /** What the encryption of the buckets and the topic adds to the policy; undefined when not checked (offline). */
  encryption: EncryptionFindings | undefined;
  /** Things deploy cannot fix itself, each with what to do. */
  warnings: string[];
  testCommand: string;
}

/**
 * The name of a global (IAM) resource of the function in `region`: `<function>-<region>-<suffix>`, so a
 * deploy in a second region gets its own. Past IAM's 64 characters it is cut and ends in a hash of the
 * full name, so two long names stay distinct and the same inputs always give the same name.
 */
export function regionalName(functionName: string, region: string, suffix: string): string {
  const full = `${functionName}-${region}-${suffix}`;
  if (full.length <= IAM_NAME_MAX) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, IAM_NAME_MAX - hash.length - 1)}-${hash}`;
}

/** The names deploy uses for a function in a region; destroy derives the same ones from these two alone. */
export function resourceNames(functionName: string, region: string): { role: string; batchRole: string; policy: string; queue: string; topic: string; statementId: string; notificationId: string; logGroup: string } {
  return {
    role: regionalName(functionName, region, 'role'),
    // The role S3 Batch Operations assumes for `backfill`: deploy's role name with a suffix.
    batchRole: regionalName(functionName, region, 'role-batch'),
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

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** `--function-name`: Lambda's rule (the role's name is shortened to fit IAM's, see regionalName). */
export function checkFunctionName(name: string): string {
  if (!FUNCTION_NAME.test(name)) {
    throw new ConfigError('FLAG_INVALID', `--function-name: expected 1-64 letters, digits, - or _, received "${name}"`);
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

/** `--log-retention-days`: one of the values CloudWatch Logs accepts. */
export function checkLogRetention(days: number): number {
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(days)) {
    throw new ConfigError('FLAG_INVALID', `--log-retention-days: expected one of ${LOG_RETENTION_DAYS.join(', ')}, received ${String(days)}`);
  }
  return days;
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
  checkLogRetention(request.logRetentionDays);
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

/** Quoted for a POSIX shell only when it has to be: a prefix may hold spaces. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9._/:=@+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * A key prefix as IAM reads it literally: in a Resource or a StringLike value `*` and `?` are wildcards, so
 * a prefix holding them would grant more than its own keys; `${*}`, `${?}` and `${$}` are the characters
 * themselves (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
 */
function iamLiteral(text: string): string {
  return text.replace(/[$*?]/g, (c) => `\${${c}}`);
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

/**
 * A notification filter value as S3 wants it: "+" for a space and every other special character
 * URL-encoded, "/" kept (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html).
 * S3 matches it against the key as its events encode it ("red flower.jpg" arrives as "red+flower.jpg").
 */
export function encodeFilterValue(value: string): string {
  return value.split('/').map((part) => encodeURIComponent(part).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+')).join('/');
}

/** The statement a customer managed key needs, for `what` (uploads, outputs, notifications). */
function keyStatement(what: 'source' | 'output' | 'topic', keyArn: string): PolicyStatement {
  // Reading needs Decrypt; writing needs GenerateDataKey, and Decrypt too for a multipart upload
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html); an SNS topic the same
  // (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
  const sid = { source: 'DecryptUploads', output: 'EncryptOutputs', topic: 'EncryptNotifications' }[what];
  return { Sid: sid, Effect: 'Allow', Action: what === 'source' ? 'kms:Decrypt' : ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: keyArn };
}

function encryptionPlan(findings: EncryptionFindings | undefined, subjects: Record<keyof EncryptionFindings, string>, roleName: string, policyName: string): { statements: PolicyStatement[]; warnings: string[] } {
  const statements: PolicyStatement[] = [];
  const warnings: string[] = [];
  for (const what of ['source', 'output', 'topic'] as const) {
    const finding = findings?.[what];
    if (finding?.kind === 'kms') statements.push(keyStatement(what, finding.keyArn));
    if (finding?.kind === 'unknown') {
      const statement = keyStatement(what, finding.keyId ? `<the ARN of ${finding.keyId}>` : '<key ARN>');
      warnings.push(`${subjects[what]}: ${finding.why}. If it is encrypted with a customer managed KMS key, the function needs this statement; add it as another inline policy of ${roleName} (deploy only rewrites its own policy ${policyName}), or let deploy read the encryption and run again: ${JSON.stringify(statement)}`);
    }
  }
  return { statements, warnings };
}

/** The whole deployment as data: names, ARNs, policy documents, settings. Pure. */
export function planDeploy(request: DeployRequest, account: Account, encryption?: EncryptionFindings): DeployPlan {
  const { partition, region, accountId } = account;
  const names = resourceNames(request.functionName, region);
  const queueArn = `arn:${partition}:sqs:${region}:${accountId}:${names.queue}`;
  const topic = topicPlan(request, account, names.topic);
  const logGroupArn = `arn:${partition}:logs:${region}:${accountId}:log-group:${names.logGroup}`;

  const statements: PolicyStatement[] = [
    { Sid: 'ReadUploads', Effect: 'Allow', Action: 's3:GetObject', Resource: s3Arn(partition, request.bucket, `${iamLiteral(request.prefix)}*`) },
    // Without s3:ListBucket, S3 answers a GET of a deleted key with 403 AccessDenied instead of 404, and the
    // handler could not tell a stale event (skip it) from a real failure (retry it). Limited to the prefix.
    { Sid: 'KnowDeletedUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: s3Arn(partition, request.bucket), ...(request.prefix ? { Condition: { StringLike: { 's3:prefix': `${iamLiteral(request.prefix)}*` } } } : {}) },
    // Every output is one PutObject (S3Sink.write): never a multipart upload, so nothing to abort.
    { Sid: 'WriteOutputs', Effect: 'Allow', Action: 's3:PutObject', Resource: s3Arn(partition, request.out.bucket, `${iamLiteral(request.out.prefix)}*`) },
    { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [logGroupArn, `${logGroupArn}:*`] },
    { Sid: 'FailureQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
  ];
  if (topic.kind !== 'none') statements.push({ Sid: 'Notify', Effect: 'Allow', Action: 'sns:Publish', Resource: topic.arn });
  const keys = encryptionPlan(encryption, {
    source: `the default encryption of s3://${request.bucket} (--bucket)`,
    output: `the default encryption of s3://${request.out.bucket} (--out)`,
    topic: `the encryption of the SNS topic ${topic.kind === 'none' ? '' : topic.arn}`,
  }, names.role, names.policy);
  statements.push(...keys.statements);

  const environment: Record<string, string> = { PROCESSED_BUCKET: request.out.bucket };
  // Lambda keeps empty values, but leaving them out keeps `get-function-configuration` readable.
  if (request.out.prefix) environment['PROCESSED_PREFIX'] = request.out.prefix;
  if (request.prefix) environment['SOURCE_PREFIX'] = request.prefix;
  if (topic.kind !== 'none') environment['SNS_TOPIC_ARN'] = topic.arn;
  if (request.fingerprint) environment['CONFIG_FINGERPRINT'] = request.fingerprint;

  const tags = { [OWNER_TAG]: request.functionName };
  return {
    request,
    account,
    tags,
    role: {
      name: names.role,
      arn: `arn:${partition}:iam::${accountId}:role/${names.role}`,
      policyName: names.policy,
      trustPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      policy: { Version: '2012-10-17', Statement: statements },
      tags: { ...tags, [REGION_TAG]: region },
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
    },
    logGroup: { name: names.logGroup, arn: logGroupArn, retentionDays: request.logRetentionDays },
    // Lambda's defaults, written down so a console change is put back on the next deploy.
    asyncInvoke: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 21_600, onFailure: queueArn },
    permission: { statementId: names.statementId, principal: 's3.amazonaws.com', sourceArn: s3Arn(partition, request.bucket), sourceAccount: accountId },
    notification: { id: names.notificationId, bucket: request.bucket, prefix: request.prefix, filterPrefix: encodeFilterValue(request.prefix), events: ['s3:ObjectCreated:*'] },
    encryption,
    warnings: keys.warnings,
    testCommand: `aws s3 cp photo.jpg ${shellQuote(`s3://${request.bucket}/${request.prefix}`)}`,
  };
}
