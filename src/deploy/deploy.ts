import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DeployError } from '../errors.js';
import { STATE_KEY } from '../pipeline/layout.js';
import { recordedFingerprint, recordState } from '../runner/state-file.js';
import { S3Sink } from '../storage/s3.js';
import { awsErrorName, explainAwsError, httpStatusOf, must, responseHeader, stepResult, type AwsClients, type StepResult, type StepTarget } from './aws.js';
import { readEncryption } from './encryption.js';
import { describeFunction, ensureFunction, runSmokeTest, type FunctionCode } from './function.js';
import { describeRole, ensureRole } from './iam.js';
import { describeLogGroup, ensureLogGroup } from './logs.js';
import { describeNotifications, ensureNotifications } from './notify.js';
import { planDeploy, type Account, type DeployPlan, type DeployRequest } from './plan.js';
import { describeFailureHandling, describeFailureQueue, ensureFailureHandling, ensureFailureQueue } from './queue.js';
import { describeNotification, describePermission, ensureNotification, ensurePermission, removeOldNotification } from './trigger.js';

/** Shown in a dry run without credentials, where ARNs cannot be known. */
export const PLACEHOLDER_ACCOUNT = '<account-id>';
export const PLACEHOLDER_REGION = '<region>';

/** Who is deploying, and where: one STS call. Throws NO_CREDENTIALS when the SDK finds none. */
export async function resolveAccount(clients: Pick<AwsClients, 'sts'>): Promise<Account> {
  let region: string;
  try {
    region = await clients.sts.config.region();
  } catch (error) {
    throw explainAwsError(error, 'resolving the region', 'the AWS configuration');
  }
  const identity = await must('sts:GetCallerIdentity', 'the current credentials', () => clients.sts.send(new GetCallerIdentityCommand({})));
  if (!identity.Account) throw new DeployError('NO_ACCOUNT', 'sts:GetCallerIdentity returned no account');
  const partition = identity.Arn?.split(':')[1] ?? 'aws';
  return { accountId: identity.Account, region, partition };
}

/**
 * The account, for a command that may be a dry run: with `dryRun`, missing credentials or region give
 * `offline` (why nothing could be checked) instead of an error, so the plan can still be shown.
 */
export async function resolveAccountOrOffline(clients: Pick<AwsClients, 'sts'>, dryRun: boolean): Promise<{ account: Account; offline?: undefined } | { account?: undefined; offline: string }> {
  try {
    return { account: await resolveAccount(clients) };
  } catch (error) {
    const explained = explainAwsError(error, 'sts:GetCallerIdentity', 'the current credentials');
    if (!dryRun || (explained.code !== 'NO_CREDENTIALS' && explained.code !== 'NO_REGION')) throw explained;
    return { offline: explained.code === 'NO_REGION' ? 'no AWS region' : 'no AWS credentials' };
  }
}

/**
 * The bucket exists, we may see it, and it is in the function's region (S3 can only invoke a function
 * in its own region, and the handler's S3 client is regional).
 */
export async function checkBucket(s3: S3Client, bucket: string, account: Account, flag: string): Promise<void> {
  let region: string | undefined;
  try {
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket, ExpectedBucketOwner: account.accountId }));
    region = head.BucketRegion;
  } catch (error) {
    const status = httpStatusOf(error);
    if (status === 404 || awsErrorName(error) === 'NotFound' || awsErrorName(error) === 'NoSuchBucket') {
      throw new DeployError('NO_SUCH_BUCKET', `the bucket ${bucket} (${flag}) does not exist`, { cause: error });
    }
    if (status === 301 || awsErrorName(error) === 'PermanentRedirect') {
      region = responseHeader(error, 'x-amz-bucket-region') ?? 'another region';
    } else if (status === 403) {
      throw new DeployError('ACCESS_DENIED', `access denied: s3:ListBucket on s3://${bucket} (${flag}); the bucket may belong to another account, or the deploying identity lacks this permission`, { cause: error });
    } else {
      throw explainAwsError(error, 's3:ListBucket', `s3://${bucket}`);
    }
  }
  if (region && region !== account.region) {
    throw new DeployError('WRONG_REGION', `the bucket ${bucket} (${flag}) is in ${region}, but the function would be in ${account.region}: run again with --region ${region}`);
  }
}

/** The bundled config's fingerprint and Cache-Control, for the destination state file. */
export interface StateFile {
  fingerprint: string;
  cacheControl: string;
}

/** The state file step, as a plan shows it and as it reports. */
function describeStateFile(plan: DeployPlan, state: StateFile): StepTarget {
  const { out } = plan.request;
  return {
    resource: 'destination state', name: `s3://${out.bucket}/${out.prefix}${STATE_KEY}`, detail: `config fingerprint ${state.fingerprint}`,
    arn: `arn:${plan.account.partition}:s3:::${out.bucket}/${out.prefix}${STATE_KEY}`, settings: { fingerprint: state.fingerprint, CacheControl: state.cacheControl },
  };
}

/** What the destination's state file says: so a later CLI backfill counts the Lambda's outputs as fresh. */
async function ensureStateFile(s3: S3Client, plan: DeployPlan, state: StateFile, dryRun: boolean): Promise<StepResult> {
  const { out } = plan.request;
  const sink = new S3Sink({ client: s3, bucket: out.bucket, prefix: out.prefix, cacheControl: state.cacheControl });
  const result = (status: StepResult['status']): StepResult => stepResult(describeStateFile(plan, state), status);
  const text = await sink.readText(STATE_KEY);
  if (recordedFingerprint(text) === state.fingerprint) return result('unchanged');
  if (dryRun) return result(text === undefined ? 'would create' : 'would update');
  await recordState(sink, state.fingerprint, [], text);
  return result(text === undefined ? 'created' : 'updated');
}

/**
 * The checks and reads the plan depends on, then the plan: both buckets exist in the deploy region, and
 * their default encryption (and an existing topic's) says which KMS keys the role needs.
 */
export async function prepareDeploy(clients: AwsClients, request: DeployRequest, account: Account): Promise<DeployPlan> {
  await checkBucket(clients.s3, request.bucket, account, '--bucket');
  if (request.out.bucket !== request.bucket) await checkBucket(clients.s3, request.out.bucket, account, '--out');
  return planDeploy(request, account, await readEncryption(clients, request, account));
}

export interface DeployOptions {
  dryRun: boolean;
  /** The package, compared with the function's CodeSha256 (a dry run too). */
  code: FunctionCode;
  state: StateFile;
  /** Invoke the function once with S3's test event before the trigger is changed (not in a dry run). */
  smokeTest: boolean;
  /** Called as each step finishes, for progress output. */
  onStep?: (result: StepResult) => void;
  /** Why deploy is waiting (IAM propagation, a queue name SQS still holds). */
  log: (line: string) => void;
}

/**
 * Runs every step in order. The order matters: the role (with the queue's and the topic's ARNs) before
 * the function; the queue and the topic before the function can fail or publish; the log group before
 * anything invokes the function; the smoke test, then the trigger last, so no upload reaches a function
 * that is not ready or does not work.
 */
export async function runDeploy(clients: AwsClients, plan: DeployPlan, options: DeployOptions): Promise<StepResult[]> {
  const steps: StepResult[] = [];
  const record = (result: StepResult) => {
    steps.push(result);
    options.onStep?.(result);
    return result;
  };
  const step = { dryRun: options.dryRun, log: options.log };
  record(await ensureRole(clients.iam, plan, step));
  record(await ensureFailureQueue(clients.sqs, plan, step));
  for (const result of await ensureNotifications(clients, plan, step)) record(result);
  const fn = await ensureFunction(clients.lambda, plan, options.code, step);
  record(fn.result);
  record(await ensureLogGroup(clients.logs, plan, step));
  record(await ensureFailureHandling(clients.lambda, plan, { ...step, functionExists: fn.exists }));
  record(await ensureStateFile(clients.s3, plan, options.state, options.dryRun));
  if (!options.dryRun && options.smokeTest) record(await runSmokeTest(clients.lambda, plan, new Date()));
  const permission = await ensurePermission(clients.lambda, plan, { ...step, functionExists: fn.exists });
  record(permission.result);
  record(await ensureNotification(clients.s3, plan, step));
  if (permission.movedFrom) record(await removeOldNotification(clients.s3, plan, permission.movedFrom, step));
  return steps;
}

/**
 * The steps of a first deploy, for a dry run without credentials: everything would be created, described
 * by the same functions the steps report with. A topic given with --sns-topic is only ever used.
 */
export function plannedSteps(plan: DeployPlan, state: StateFile): StepResult[] {
  const notifications = describeNotifications(plan);
  const created = (target: StepTarget) => stepResult(target, 'would create');
  return [
    created(describeRole(plan)),
    created(describeFailureQueue(plan)),
    ...(notifications ? [stepResult(notifications.topic, plan.topic.kind === 'existing' ? 'unchanged' : 'would create')] : []),
    ...(notifications?.subscription ? [created(notifications.subscription)] : []),
    created(describeFunction(plan)),
    created(describeLogGroup(plan)),
    created(describeFailureHandling(plan)),
    created(describeStateFile(plan, state)),
    created(describePermission(plan)),
    created(describeNotification(plan)),
  ];
}
