import { AddPermissionCommand, GetPolicyCommand, RemovePermissionCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type LambdaFunctionConfiguration,
  type NotificationConfiguration,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, MISSING, must, stepResult, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import type { DeployPlan } from './plan.js';

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
  return { resource: 'invoke permission', name: permission.statementId, detail: `${permission.principal} from ${permission.sourceArn}, account ${permission.sourceAccount}` };
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

/** Our entry in the bucket's notification configuration. */
function notificationEntry(plan: DeployPlan): LambdaFunctionConfiguration {
  const { notification } = plan;
  return {
    Id: notification.id,
    LambdaFunctionArn: plan.fn.arn,
    Events: notification.events as LambdaFunctionConfiguration['Events'],
    ...(notification.prefix ? { Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: notification.prefix }] } } } : {}),
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

function canonicalEntry(entry: LambdaFunctionConfiguration | undefined): string | undefined {
  if (!entry) return undefined;
  const rules = (entry.Filter?.Key?.FilterRules ?? []).map((r) => `${(r.Name ?? '').toLowerCase()}=${r.Value ?? ''}`).sort();
  return JSON.stringify({ arn: entry.LambdaFunctionArn, events: [...(entry.Events ?? [])].sort(), rules });
}

export async function readNotification(s3: S3Client, bucket: string, expectedOwner: string | undefined): Promise<NotificationConfiguration> {
  return must('s3:GetBucketNotification', `s3://${bucket}`, () =>
    s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket, ...(expectedOwner ? { ExpectedBucketOwner: expectedOwner } : {}) })));
}

export async function writeNotification(s3: S3Client, bucket: string, expectedOwner: string | undefined, configuration: NotificationConfiguration): Promise<void> {
  try {
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: configuration, ...(expectedOwner ? { ExpectedBucketOwner: expectedOwner } : {}) }));
  } catch (error) {
    if (awsErrorName(error) === 'InvalidArgument' && /overlap/i.test((error as Error).message)) {
      throw new DeployError('TRIGGER_OVERLAP', `s3://${bucket} already has a notification for the same events whose prefix overlaps this one; S3 allows only one per key. Remove it or choose another --prefix`, { cause: error });
    }
    throw explainAwsError(error, 's3:PutBucketNotification', `s3://${bucket}`);
  }
}

/** The trigger step, as a plan shows it and as it reports. */
export function describeNotification(plan: DeployPlan): StepTarget {
  const { notification } = plan;
  return { resource: 'S3 trigger', name: notification.id, detail: `${notification.events.join(', ')} on s3://${notification.bucket}/${notification.prefix}` };
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
  await writeNotification(s3, notification.bucket, plan.account.accountId, mergeNotification(current, entry));
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
