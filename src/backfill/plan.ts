import { createHash } from 'node:crypto';
import { DeployError } from '../errors.js';
import type { RoleSpec } from '../deploy/iam.js';
import { OWNER_TAG, REGION_TAG, resourceNames, type Account, type Architecture } from '../deploy/plan.js';
import { formatS3Uri } from '../storage/s3.js';

/** Where a backfill keeps its manifests, reports and job records: a hidden folder next to the outputs. */
export const BACKFILL_FOLDER = '.img-pipeline/backfill/';

/** What `backfill` read from the deployed function (GetFunction, its resource policy, its concurrency). */
export interface DeployedFunction {
  name: string;
  /** Unqualified. */
  arn: string;
  /** The bucket the trigger is on: the only one the function's role may read. */
  sourceBucket: string;
  /** SOURCE_PREFIX: '' or ending in '/'. */
  sourcePrefix: string;
  processed: { bucket: string; prefix: string };
  fingerprint: string | undefined;
  memoryMb: number;
  architecture: Architecture;
  timeoutSeconds: number;
  codeSha256: string;
  /** Reserved concurrency, or the account's unreserved pool. */
  concurrency: number;
}

/** What the user asked for, checked. */
export interface BackfillRequest {
  functionName: string;
  source: { bucket: string; prefix: string };
  reportScope: 'FailedTasksOnly' | 'AllTasks';
  notify: boolean;
  priority: number;
}

/** The job's IAM role, like deploy's: trust, one inline policy, our tag. */
export interface BatchRolePlan extends RoleSpec {
  arn: string;
}

/** Everything `backfill` creates for one manifest, computed without any I/O. */
export interface BackfillPlan {
  folder: { bucket: string; prefix: string };
  manifest: { bucket: string; key: string; arn: string };
  report: { bucketArn: string; prefix: string; scope: BackfillRequest['reportScope'] };
  role: BatchRolePlan;
  userArguments: Record<string, string>;
}

function s3Arn(partition: string, bucket: string, key?: string): string {
  return `arn:${partition}:s3:::${bucket}${key === undefined ? '' : `/${key}`}`;
}

/**
 * Refuses a source the function was not deployed for: another bucket (its role cannot read it) or a
 * prefix outside SOURCE_PREFIX (the handler ignores it). The manifest folder never lies under the trigger
 * prefix, so uploading it cannot invoke the function.
 */
export function checkSource(request: Pick<BackfillRequest, 'source'>, fn: DeployedFunction): void {
  const { bucket, prefix } = request.source;
  const deployed = formatS3Uri(fn.sourceBucket, fn.sourcePrefix);
  if (bucket !== fn.sourceBucket || !prefix.startsWith(fn.sourcePrefix)) {
    throw new DeployError('BACKFILL_REFUSED', `refusing to backfill ${formatS3Uri(bucket, prefix)}: ${fn.name} was deployed for ${deployed}, and its role may read nothing else (the handler would also ignore keys outside SOURCE_PREFIX). Nothing was created. Backfill a prefix under ${deployed}, or deploy a function for this one`);
  }
}

/** The job's role: assumed by Batch Operations only; invoke this function only; read the manifests, write the reports. */
export function planBatchRole(fn: Pick<DeployedFunction, 'name' | 'arn' | 'processed'>, account: Account): BatchRolePlan {
  const names = resourceNames(fn.name, account.region);
  const name = names.batchRole;
  const folder = `${fn.processed.prefix}${BACKFILL_FOLDER}`;
  return {
    name,
    arn: `arn:${account.partition}:iam::${account.accountId}:role/${name}`,
    policyName: names.policy,
    description: `S3 Batch Operations role of img-pipeline backfill for ${fn.name}`,
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html
    trustPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'batchoperations.s3.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
    policy: {
      Version: '2012-10-17',
      Statement: [
        // The job invokes a published version: `<arn>:<version>`.
        { Sid: 'InvokeFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: [fn.arn, `${fn.arn}:*`] },
        { Sid: 'ReadManifests', Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: s3Arn(account.partition, fn.processed.bucket, `${folder}*`) },
        { Sid: 'WriteReports', Effect: 'Allow', Action: 's3:PutObject', Resource: s3Arn(account.partition, fn.processed.bucket, `${folder}*`) },
      ],
    },
    tags: { [OWNER_TAG]: fn.name, [REGION_TAG]: account.region },
    owner: fn.name,
    region: account.region,
    madeBy: 'backfill',
  };
}

/**
 * Where one manifest and its report go: `<out prefix>.img-pipeline/backfill/<sha256 of the manifest>/`.
 * The same pending work gives the same folder, so a rerun overwrites its own manifest with the same bytes
 * (and ETag) and asks for the same job.
 */
export function planBackfill(request: BackfillRequest, fn: DeployedFunction, manifestSha256: string, account: Account): BackfillPlan {
  checkSource(request, fn);
  const prefix = `${fn.processed.prefix}${BACKFILL_FOLDER}${manifestSha256.slice(0, 16)}/`;
  const key = `${prefix}manifest.csv`;
  if (fn.processed.bucket === fn.sourceBucket && key.startsWith(fn.sourcePrefix)) {
    // deploy refuses overlapping prefixes; this holds even for a function set up by hand.
    throw new DeployError('BACKFILL_REFUSED', `refusing to backfill: the manifest would go to ${formatS3Uri(fn.processed.bucket, key)}, under the trigger prefix ${fn.sourcePrefix}, and its upload would invoke the function`);
  }
  return {
    folder: { bucket: fn.processed.bucket, prefix },
    manifest: { bucket: fn.processed.bucket, key, arn: s3Arn(account.partition, fn.processed.bucket, key) },
    // Batch writes `<prefix>/job-<id>/manifest.json` and `results/*.csv` under this.
    report: { bucketArn: s3Arn(account.partition, fn.processed.bucket), prefix: `${prefix}report`, scope: request.reportScope },
    role: planBatchRole(fn, account),
    userArguments: { notify: request.notify ? 'true' : 'false' },
  };
}

/** The function version and the manifest's ETag, which the job is created from. */
export interface JobInputs {
  versionArn: string;
  manifestEtag: string;
  accountId: string;
  priority: number;
  description: string;
}

/**
 * The CreateJob request. Its ClientRequestToken is a hash of everything the job is made of (version,
 * manifest and its ETag, report, role, arguments): the same request twice is the same job, where the
 * SDK's default random token would start a second one.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html
 */
export function createJobRequest(plan: BackfillPlan, inputs: JobInputs) {
  const request = {
    AccountId: inputs.accountId,
    ConfirmationRequired: false,
    Operation: { LambdaInvoke: { FunctionArn: inputs.versionArn, InvocationSchemaVersion: '2.0', UserArguments: plan.userArguments } },
    Manifest: {
      Spec: { Format: 'S3BatchOperations_CSV_20180820' as const, Fields: ['Bucket' as const, 'Key' as const] },
      Location: { ObjectArn: plan.manifest.arn, ETag: inputs.manifestEtag },
    },
    Report: { Bucket: plan.report.bucketArn, Format: 'Report_CSV_20180820' as const, Enabled: true, Prefix: plan.report.prefix, ReportScope: plan.report.scope },
    Priority: inputs.priority,
    RoleArn: plan.role.arn,
    // Batch allows 256 characters.
    Description: inputs.description.slice(0, 256),
  };
  const token = createHash('sha256').update(JSON.stringify(request)).digest('hex').slice(0, 64);
  return { ...request, ClientRequestToken: token };
}
