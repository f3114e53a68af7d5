import { AddPermissionCommand, GetPolicyCommand, RemovePermissionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type LambdaFunctionConfiguration,
  type NotificationConfiguration,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, MISSING, must, retryAws, stepResult, type RetryPolicy, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import type { DeployPlan } from './plan.js';

/** A permission added a moment ago may not yet be visible to S3's validation. */
const PERMISSION_PROPAGATION: RetryPolicy = { maxRetryTime: 30_000, minTimeout: 1_000, maxTimeout: 8_000 };

interface PolicyStatementShape {
  Sid?: string;
  Principal?: { Service?: string };
  Condition?: { ArnLike?: Record<string, string>; StringEquals?: Record<string, string> };
}

/** Our statement in the function's resource policy, or undefined. */
export async function findPermission(lambda: LambdaClient, functionName: string, statementId: string): Promise<PolicyStatementShape | undefined> {
  const policy = await attempt('lambda:GetPolicy', functionName, () => lambda.send(new GetPolicyCommand({ FunctionName: functionName })), MISSING.lambda);
  if (!policy?.Policy) return undefined;
  const statements = (JSON.parse(policy.Policy) as { Statement?: PolicyStatementShape[] }).Statement ?? [];
  return statements.find((s) => s.Sid === statementId);
}

/** The bucket a permission statement lets invoke the function (its AWS:SourceArn, arn:aws:s3:::<bucket>), if any. */
export function permittedBucket(statement: PolicyStatementShape | undefined): string | undefined {
  const arn = statement?.Condition?.ArnLike?.['AWS:SourceArn'];
  const match = arn === undefined ? null : /^arn:[^:]+:s3:::([^/]+)$/.exec(arn);
  return match?.[1];
}

/** The permission step, as a plan shows it and as it reports. */
export function describePermission(plan: DeployPlan): StepTarget {
  const { permission } = plan;
  return {
    resource: 'invoke permission', name: permission.statementId, detail: `${permission.principal} from ${permission.sourceArn}, account ${permission.sourceAccount}`, arn: plan.fn.arn,
    settings: { Action: 'lambda:InvokeFunction', Principal: permission.principal, SourceArn: permission.sourceArn, SourceAccount: permission.sourceAccount },
  };
}

/**
 * Step: allow S3 (only this bucket, only in this account) to invoke the function. `movedFrom` names the
 * bucket the permission allowed before, when it was another one: its trigger entry is then stale.
 */
export async function ensurePermission(lambda: LambdaClient, plan: DeployPlan, options: StepOptions & { functionExists: boolean }): Promise<{ result: StepResult; movedFrom?: string }> {
  const { permission } = plan;
  const target = describePermission(plan);
  const current = options.functionExists ? await findPermission(lambda, plan.fn.name, permission.statementId) : undefined;
  const previousBucket = permittedBucket(current);
  const moved = previousBucket !== undefined && previousBucket !== plan.request.bucket ? { movedFrom: previousBucket } : {};
  const matches = current !== undefined
    && current.Principal?.Service === permission.principal
    && current.Condition?.ArnLike?.['AWS:SourceArn'] === permission.sourceArn
    && current.Condition?.StringEquals?.['AWS:SourceAccount'] === permission.sourceAccount;
  if (matches) return { result: stepResult(target, 'unchanged') };
  if (options.dryRun) return { result: stepResult(target, current ? 'would update' : 'would create'), ...moved };
  if (current) {
    await must('lambda:RemovePermission', plan.fn.name, () => lambda.send(new RemovePermissionCommand({ FunctionName: plan.fn.name, StatementId: permission.statementId })));
  }
  await must('lambda:AddPermission', plan.fn.name, () =>
    lambda.send(new AddPermissionCommand({
      FunctionName: plan.fn.name,
      StatementId: permission.statementId,
      Action: 'lambda:InvokeFunction',
      Principal: permission.principal,
      SourceArn: permission.sourceArn,
      SourceAccount: permission.sourceAccount,
    })));
  return { result: stepResult(target, current ? 'updated' : 'created'), ...moved };
}

/** Our entry in the bucket's notification configuration, its prefix URL-encoded as S3 requires. */
function notificationEntry(plan: DeployPlan): LambdaFunctionConfiguration {
  const { notification } = plan;
  return {
    Id: notification.id,
    LambdaFunctionArn: plan.fn.arn,
    Events: notification.events as LambdaFunctionConfiguration['Events'],
    ...(notification.filterPrefix ? { Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: notification.filterPrefix }] } } } : {}),
  };
}

/** The configuration as S3 accepts it back: only the four kinds of destination, no response metadata. */
function cleanNotification(current: NotificationConfiguration | undefined): NotificationConfiguration {
  const clean: NotificationConfiguration = {};
  if (current?.TopicConfigurations?.length) clean.TopicConfigurations = current.TopicConfigurations;
  if (current?.QueueConfigurations?.length) clean.QueueConfigurations = current.QueueConfigurations;
  if (current?.LambdaFunctionConfigurations?.length) clean.LambdaFunctionConfigurations = current.LambdaFunctionConfigurations;
  if (current?.EventBridgeConfiguration) clean.EventBridgeConfiguration = current.EventBridgeConfiguration;
  return clean;
}

/** Every other notification kept as it is; our entry (by Id) replaced, or added. Pure. */
export function mergeNotification(current: NotificationConfiguration | undefined, entry: LambdaFunctionConfiguration): NotificationConfiguration {
  const merged = cleanNotification(current);
  const others = (merged.LambdaFunctionConfigurations ?? []).filter((c) => c.Id !== entry.Id);
  merged.LambdaFunctionConfigurations = [...others, entry];
  return merged;
}

/** The configuration without our entry; other entries untouched. Pure. */
export function removeNotification(current: NotificationConfiguration | undefined, id: string): NotificationConfiguration {
  const merged = cleanNotification(current);
  const others = (merged.LambdaFunctionConfigurations ?? []).filter((c) => c.Id !== id);
  if (others.length > 0) merged.LambdaFunctionConfigurations = others;
  else delete merged.LambdaFunctionConfigurations;
  return merged;
}

/**
 * Compared in encoded form, as S3 stores it: an entry an earlier version wrote raw ("camera roll/", which
 * never matches) differs from the encoded one ("camera+roll/") and is rewritten. Only the case of a
 * percent-escape is normalised ("%2b" is "%2B"); decoding first would make the raw entry look right.
 */
function canonicalEntry(entry: LambdaFunctionConfiguration | undefined): string | undefined {
  if (!entry) return undefined;
  const rules = (entry.Filter?.Key?.FilterRules ?? []).map((r) => `${(r.Name ?? '').toLowerCase()}=${(r.Value ?? '').replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase())}`).sort();
  return JSON.stringify({ arn: entry.LambdaFunctionArn, events: [...(entry.Events ?? [])].sort(), rules });
}

/**
 * The destinations S3 names when it cannot validate a configuration: InvalidArgument "Unable to validate
 * the following destination configurations", with each ARN in ArgumentName<n> and S3's reason in
 * ArgumentValue<n> of the error body (https://github.com/aws/aws-cli/issues/8162,
 * https://github.com/aws/aws-sdk-js/issues/632).
 */
export function failedDestinations(error: unknown): { arn: string; reason: string }[] | undefined {
  if (awsErrorName(error) !== 'InvalidArgument' || !/Unable to validate the following destination configurations/i.test((error as Error).message)) return undefined;
  const fields = error as unknown as Record<string, unknown>;
  const found: { arn: string; reason: string }[] = [];
  for (let n = 1; typeof fields[`ArgumentName${n}`] === 'string'; n += 1) {
    found.push({ arn: fields[`ArgumentName${n}`] as string, reason: typeof fields[`ArgumentValue${n}`] === 'string' ? fields[`ArgumentValue${n}`] as string : 'no reason given' });
  }
  return found;
}

function unvalidated(bucket: string, destinations: { arn: string; reason: string }[], ours: string | undefined, error: unknown): DeployError {
  const foreign = destinations.filter((d) => d.arn !== ours);
  const list = destinations.length > 0 ? destinations.map((d) => `${d.arn} (${d.reason})`).join('; ') : 'S3 did not say which';
  const fix = foreign.length > 0 || destinations.length === 0
    ? ' S3 checks every destination in the bucket, not only ours: a stale entry (its function, queue or topic deleted, or its permission removed) fails every change. Fix or remove that entry (aws s3api get-bucket-notification-configuration, edit, put-bucket-notification-configuration), then run again'
    : ' S3 could not yet see the new invoke permission; run again in a minute';
  return new DeployError('TRIGGER_DESTINATION_INVALID', `s3://${bucket} refused its notification configuration: unable to validate ${list}.${fix}`, { cause: error });
}

export async function readNotification(s3: S3Client, bucket: string, expectedOwner: string | undefined): Promise<NotificationConfiguration> {
  return must('s3:GetBucketNotification', `s3://${bucket}`, () =>
    s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket, ...(expectedOwner ? { ExpectedBucketOwner: expectedOwner } : {}) })));
}

/**
 * PutBucketNotificationConfiguration. With `ours` (the function ARN deploy just allowed S3 to invoke), a
 * validation failure naming only that ARN is retried briefly: the permission itself is eventually
 * consistent. Any other failing destination is someone else's stale entry, named in the error.
 */
export async function writeNotification(s3: S3Client, bucket: string, expectedOwner: string | undefined, configuration: NotificationConfiguration, wait?: { ours: string; log: (line: string) => void }): Promise<void> {
  const onlyOursFailed = (error: unknown) => {
    const failed = failedDestinations(error);
    return wait !== undefined && failed !== undefined && failed.length > 0 && failed.every((d) => d.arn === wait.ours);
  };
  try {
    await retryAws(() => s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: configuration, ...(expectedOwner ? { ExpectedBucketOwner: expectedOwner } : {}) })), {
      isRetryable: onlyOursFailed,
      policy: PERMISSION_PROPAGATION,
      onWait: (seconds) => wait?.log(`waiting for the invoke permission to reach S3 (${seconds} s)`),
    });
  } catch (error) {
    const failed = failedDestinations(error);
    if (failed) throw unvalidated(bucket, failed, wait?.ours, error);
    if (awsErrorName(error) === 'InvalidArgument' && /overlap/i.test((error as Error).message)) {
      throw new DeployError('TRIGGER_OVERLAP', `s3://${bucket} already has a notification for the same events whose prefix overlaps this one; S3 allows only one per key. Remove it or choose another --prefix`, { cause: error });
    }
    throw explainAwsError(error, 's3:PutBucketNotification', `s3://${bucket}`);
  }
}

/** The trigger step, as a plan shows it and as it reports. */
export function describeNotification(plan: DeployPlan): StepTarget {
  const { notification } = plan;
  return {
    resource: 'S3 trigger', name: notification.id, detail: `${notification.events.join(', ')} on s3://${notification.bucket}/${notification.prefix}`,
    arn: `arn:${plan.account.partition}:s3:::${notification.bucket}`, settings: { LambdaFunctionConfiguration: notificationEntry(plan) },
  };
}

/** Step: the bucket notification, merged into whatever the bucket already sends elsewhere. */
export async function ensureNotification(s3: S3Client, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { notification } = plan;
  const entry = notificationEntry(plan);
  const target = describeNotification(plan);
  const current = await readNotification(s3, notification.bucket, plan.account.accountId);
  const ours = current.LambdaFunctionConfigurations?.find((c) => c.Id === notification.id);
  if (canonicalEntry(ours) === canonicalEntry(entry)) return stepResult(target, 'unchanged');
  if (options.dryRun) return stepResult(target, ours ? 'would update' : 'would create');
  await writeNotification(s3, notification.bucket, plan.account.accountId, mergeNotification(current, entry), { ours: plan.fn.arn, log: options.log });
  return stepResult(target, ours ? 'updated' : 'created');
}

/**
 * Step, only when the function moved to another upload bucket: its entry on the old bucket (by Id; every
 * other entry kept) would only send events the permission now refuses. A bucket deleted since is fine.
 */
export async function removeOldNotification(s3: S3Client, plan: DeployPlan, oldBucket: string, options: StepOptions): Promise<StepResult> {
  const { id } = plan.notification;
  const target: StepTarget = { resource: 'old S3 trigger', name: id, detail: `on s3://${oldBucket}, the function's previous upload bucket` };
  const current = await attempt('s3:GetBucketNotification', `s3://${oldBucket}`, () =>
    s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: oldBucket, ExpectedBucketOwner: plan.account.accountId })), ['NoSuchBucket']);
  const ours = current?.LambdaFunctionConfigurations?.some((c) => c.Id === id) ?? false;
  if (!current || !ours) return stepResult(target, 'absent');
  if (options.dryRun) return stepResult(target, 'would delete');
  await writeNotification(s3, oldBucket, plan.account.accountId, removeNotification(current, id));
  return stepResult(target, 'deleted');
}
