import {
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  GetRoleCommand,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesForRoleCommand,
  ListRolePoliciesCommand,
  type IAMClient,
} from '@aws-sdk/client-iam';
import { DeleteFunctionCommand, GetFunctionCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { DeleteTopicCommand, ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { DeleteQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, MISSING, must, tagMap, type AwsClients, type StepResult } from './aws.js';
import { checkBucket } from './deploy.js';
import { tagsUnreadable } from './function.js';
import { deleteLogGroup, findLogGroup, logGroupTags } from './logs.js';
import { isOwnedBy, OWNER_TAG, REGION_TAG, resourceNames, type Account } from './plan.js';
import { findPermission, permittedBucket, readNotification, removeNotification, writeNotification } from './trigger.js';

export interface DestroyTarget {
  bucket: string;
  functionName: string;
  account: Account;
}

export interface DestroyOptions {
  dryRun: boolean;
  /** Leave the log group /aws/lambda/<function> in place. */
  keepLogs: boolean;
  onStep?: (result: StepResult) => void;
}

/**
 * What else is on the role: DeleteRole fails with DeleteConflict ("Cannot delete entity, must detach all
 * policies first.") while a managed policy is attached, another inline policy exists or an instance
 * profile holds the role (https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html).
 */
async function roleAttachments(iam: IAMClient, roleName: string, ourPolicy: string): Promise<string[]> {
  const found: string[] = [];
  let marker: string | undefined;
  do {
    const page = await must('iam:ListAttachedRolePolicies', roleName, () => iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName, Marker: marker })));
    found.push(...(page.AttachedPolicies ?? []).map((p) => `managed policy ${p.PolicyArn ?? p.PolicyName ?? '?'} (aws iam detach-role-policy --role-name ${roleName} --policy-arn ${p.PolicyArn ?? '?'})`));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  do {
    const page = await must('iam:ListRolePolicies', roleName, () => iam.send(new ListRolePoliciesCommand({ RoleName: roleName, Marker: marker })));
    found.push(...(page.PolicyNames ?? []).filter((n) => n !== ourPolicy).map((n) => `inline policy ${n} (aws iam delete-role-policy --role-name ${roleName} --policy-name ${n})`));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  do {
    const page = await must('iam:ListInstanceProfilesForRole', roleName, () => iam.send(new ListInstanceProfilesForRoleCommand({ RoleName: roleName, Marker: marker })));
    found.push(...(page.InstanceProfiles ?? []).map((p) => `instance profile ${p.InstanceProfileName ?? '?'} (aws iam remove-role-from-instance-profile --instance-profile-name ${p.InstanceProfileName ?? '?'} --role-name ${roleName})`));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return found;
}

async function deleteRole(iam: IAMClient, roleName: string, policyName: string): Promise<void> {
  await attempt('iam:DeleteRolePolicy', `${roleName}/${policyName}`, () => iam.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName })), MISSING.iam);
  try {
    await iam.send(new DeleteRoleCommand({ RoleName: roleName }));
  } catch (error) {
    // Someone attached a policy between the check and now.
    if (awsErrorName(error) === 'DeleteConflict' || awsErrorName(error) === 'DeleteConflictException') {
      throw new DeployError('DESTROY_INCOMPLETE', `iam:DeleteRole on ${roleName}: ${(error as Error).message} Something was attached to the role after destroy checked it; remove it (aws iam list-attached-role-policies --role-name ${roleName}) and run destroy again`, { cause: error });
    }
    throw explainAwsError(error, 'iam:DeleteRole', roleName);
  }
}

/**
 * Removes exactly what deploy created, in reverse order: its notification entry (every other entry kept),
 * the invoke permission, the function, the role and its inline policy, the failure queue, the topic only
 * if deploy created it, and the log group unless `keepLogs`. A resource without deploy's tag is kept,
 * never deleted; so are the role and the queue of a function deploy did not create. Everything is read
 * and checked before anything is deleted: a role something else is attached to stops destroy at once.
 */
export async function runDestroy(clients: AwsClients, target: DestroyTarget, options: DestroyOptions): Promise<StepResult[]> {
  const { functionName, account, bucket } = target;
  const names = resourceNames(functionName, account.region);
  const gone = options.dryRun ? 'would delete' : 'deleted';
  const owned = (tags: Record<string, string> | undefined) => isOwnedBy(tags, functionName);
  const notOurs = `not created by img-pipeline deploy (no ${OWNER_TAG}=${functionName} tag)`;
  const arn = (service: string, resource: string) => `arn:${account.partition}:${service}:${account.region}:${account.accountId}:${resource}`;
  const functionArn = arn('lambda', `function:${functionName}`);

  // The bucket exists and is in this region. One deleted since deploy is allowed below, once the
  // function's permission shows it was the trigger's bucket.
  let bucketMissing: DeployError | undefined;
  try {
    await checkBucket(clients.s3, bucket, account, '--bucket');
  } catch (error) {
    if (!(error instanceof DeployError && error.code === 'NO_SUCH_BUCKET')) throw error;
    bucketMissing = error;
  }

  // Whose function it is. Tags missing for want of lambda:ListTags would make it look like someone else's.
  const fn = await attempt('lambda:GetFunction', functionName, () => clients.lambda.send(new GetFunctionCommand({ FunctionName: functionName })), MISSING.lambda);
  if (fn?.Configuration && fn.TagsError) throw tagsUnreadable(functionName, fn.TagsError);
  const fnState = !fn?.Configuration ? 'absent' : owned(fn.Tags) ? 'ours' : 'kept';

  // The bucket S3 may invoke the function from is where deploy put the trigger: --bucket must name it.
  const permission = fnState === 'ours' ? await findPermission(clients.lambda, functionName, names.statementId) : undefined;
  const permitted = permittedBucket(permission);
  if (permitted !== undefined && permitted !== bucket) {
    throw new DeployError('DEPLOY_REFUSED', `refusing to destroy: the trigger of ${functionName} is on s3://${permitted}, not on s3://${bucket} (--bucket). Nothing was changed. Run again with --bucket ${permitted}`);
  }
  if (bucketMissing && permitted !== bucket) throw bucketMissing;
  const notification = bucketMissing ? undefined : await readNotification(clients.s3, bucket, account.accountId);
  const hasEntry = notification?.LambdaFunctionConfigurations?.some((c) => c.Id === names.notificationId) ?? false;

  // The roles and the queue: a function that is kept may be running with them. The roles are the
  // execution role and the one `backfill` made for S3 Batch Operations jobs, tagged the same way.
  const roles = [];
  for (const roleName of fnState === 'kept' ? [] : [names.role, names.batchRole]) {
    const role = await attempt('iam:GetRole', roleName, () => clients.iam.send(new GetRoleCommand({ RoleName: roleName })), MISSING.iam);
    const tags = tagMap(role?.Role?.Tags);
    const ours = role?.Role !== undefined && owned(tags) && tags[REGION_TAG] === account.region;
    if (ours) {
      const attached = await roleAttachments(clients.iam, roleName, names.policy);
      if (attached.length > 0) {
        throw new DeployError('DEPLOY_REFUSED', `refusing to destroy: the IAM role ${roleName} has more attached than img-pipeline put there, and IAM would refuse to delete it halfway through: ${attached.join('; ')}. Nothing was changed. Remove them, or keep the role by removing the rest by hand, then run again`);
      }
    }
    roles.push({ name: roleName, exists: role?.Role !== undefined, tags, ours, arn: `arn:${account.partition}:iam::${account.accountId}:role/${roleName}` });
  }
  const queue = fnState === 'kept' ? undefined : await attempt('sqs:GetQueueUrl', names.queue, () => clients.sqs.send(new GetQueueUrlCommand({ QueueName: names.queue })), MISSING.sqs);
  const queueUrl = queue?.QueueUrl;
  const queueTags = queueUrl ? (await must('sqs:ListQueueTags', names.queue, () => clients.sqs.send(new ListQueueTagsCommand({ QueueUrl: queueUrl })))).Tags : undefined;

  // The topic, only if deploy created it: deploy only ever creates this name, and tags it. A topic
  // given with --sns-topic is kept without a call (it may be in another account or region).
  const ownTopic = arn('sns', names.topic);
  const topicArn = fnState === 'ours' ? fn?.Configuration?.Environment?.Variables?.['SNS_TOPIC_ARN'] : undefined;
  const topicTags = await attempt('sns:ListTagsForResource', ownTopic, () => clients.sns.send(new ListTagsForResourceCommand({ ResourceArn: ownTopic })), MISSING.sns);

  const logGroupArn = arn('logs', `log-group:${names.logGroup}`);
  const logGroup = options.keepLogs ? undefined : await findLogGroup(clients.logs, names.logGroup);
  const logOwner = logGroup ? (await logGroupTags(clients.logs, logGroupArn))[OWNER_TAG] : undefined;

  // Everything is known: now delete, in reverse order of deploy.
  const steps: StepResult[] = [];
  const record = (result: StepResult) => {
    steps.push(result);
    options.onStep?.(result);
  };
  const bucketArn = `arn:${account.partition}:s3:::${bucket}`;
  if (bucketMissing) {
    record({ resource: 'S3 trigger', name: names.notificationId, status: 'absent', detail: `s3://${bucket} no longer exists`, arn: bucketArn });
  } else {
    if (hasEntry && !options.dryRun) await writeNotification(clients.s3, bucket, account.accountId, removeNotification(notification, names.notificationId));
    record({ resource: 'S3 trigger', name: names.notificationId, status: hasEntry ? gone : 'absent', detail: `on s3://${bucket}`, arn: bucketArn });
  }

  if (fnState === 'absent') {
    record({ resource: 'invoke permission', name: names.statementId, status: 'absent', arn: functionArn });
    record({ resource: 'Lambda function', name: functionName, status: 'absent', arn: functionArn });
  } else if (fnState === 'kept') {
    record({ resource: 'Lambda function', name: functionName, status: 'kept', detail: notOurs, arn: functionArn });
  } else {
    if (permission && !options.dryRun) {
      await attempt('lambda:RemovePermission', functionName, () => clients.lambda.send(new RemovePermissionCommand({ FunctionName: functionName, StatementId: names.statementId })), MISSING.lambda);
    }
    record({ resource: 'invoke permission', name: names.statementId, status: permission ? gone : 'absent', arn: functionArn });
    if (!options.dryRun) await must('lambda:DeleteFunction', functionName, () => clients.lambda.send(new DeleteFunctionCommand({ FunctionName: functionName })));
    record({ resource: 'Lambda function', name: functionName, status: gone, detail: 'with its on-failure destination settings', arn: functionArn });
  }

  const queueArn = arn('sqs', names.queue);
  if (fnState === 'kept') {
    const why = `kept with the function ${functionName}, which deploy did not create`;
    for (const roleName of [names.role, names.batchRole]) record({ resource: 'IAM role', name: roleName, status: 'kept', detail: why, arn: `arn:${account.partition}:iam::${account.accountId}:role/${roleName}` });
    record({ resource: 'SQS failure queue', name: names.queue, status: 'kept', detail: why, arn: queueArn });
  } else {
    for (const role of roles) {
      if (!role.exists) {
        record({ resource: 'IAM role', name: role.name, status: 'absent', arn: role.arn });
      } else if (!role.ours) {
        const why = owned(role.tags) ? `it belongs to the function in ${role.tags[REGION_TAG] ?? 'another region'}` : notOurs;
        record({ resource: 'IAM role', name: role.name, status: 'kept', detail: why, arn: role.arn });
      } else {
        if (!options.dryRun) await deleteRole(clients.iam, role.name, names.policy);
        record({ resource: 'IAM role', name: role.name, status: gone, detail: `with inline policy ${names.policy}`, arn: role.arn });
      }
    }
    if (!queueUrl) {
      record({ resource: 'SQS failure queue', name: names.queue, status: 'absent', arn: queueArn });
    } else if (!owned(queueTags)) {
      record({ resource: 'SQS failure queue', name: names.queue, status: 'kept', detail: notOurs, arn: queueArn });
    } else {
      if (!options.dryRun) await must('sqs:DeleteQueue', names.queue, () => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })));
      record({ resource: 'SQS failure queue', name: names.queue, status: gone, detail: 'with any failed events still in it', arn: queueArn });
    }
  }

  if (topicArn && topicArn !== ownTopic) record({ resource: 'SNS topic', name: topicArn, status: 'kept', detail: 'given with --sns-topic, not created by deploy', arn: topicArn });
  if (!topicTags) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'absent', arn: ownTopic });
  } else if (!owned(tagMap(topicTags.Tags))) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'kept', detail: notOurs, arn: ownTopic });
  } else {
    if (!options.dryRun) await must('sns:DeleteTopic', ownTopic, () => clients.sns.send(new DeleteTopicCommand({ TopicArn: ownTopic })));
    record({ resource: 'SNS topic', name: ownTopic, status: gone, detail: 'with its subscriptions', arn: ownTopic });
  }

  if (options.keepLogs) {
    record({ resource: 'CloudWatch log group', name: names.logGroup, status: 'kept', detail: '--keep-logs', arn: logGroupArn });
  } else if (!logGroup) {
    record({ resource: 'CloudWatch log group', name: names.logGroup, status: 'absent', arn: logGroupArn });
  } else if (logOwner !== functionName) {
    record({ resource: 'CloudWatch log group', name: names.logGroup, status: 'kept', detail: notOurs, arn: logGroupArn });
  } else {
    if (!options.dryRun) await deleteLogGroup(clients.logs, names.logGroup);
    record({ resource: 'CloudWatch log group', name: names.logGroup, status: gone, detail: 'with every log stream in it', arn: logGroupArn });
  }
  return steps;
}

/**
 * What destroy would remove, for a dry run without credentials: every resource deploy may have created,
 * as "would delete", in the order destroy goes. Nothing says which of them exist.
 */
export function plannedDestroySteps(target: DestroyTarget, keepLogs: boolean): StepResult[] {
  const { functionName, account, bucket } = target;
  const names = resourceNames(functionName, account.region);
  const arn = (service: string, resource: string) => `arn:${account.partition}:${service}:${account.region}:${account.accountId}:${resource}`;
  const fnArn = arn('lambda', `function:${functionName}`);
  const gone = (resource: string, name: string, resourceArn: string, detail: string): StepResult => ({ resource, name, status: 'would delete', detail, arn: resourceArn });
  return [
    gone('S3 trigger', names.notificationId, `arn:${account.partition}:s3:::${bucket}`, `on s3://${bucket} (other notifications kept)`),
    gone('invoke permission', names.statementId, fnArn, 'if it exists'),
    gone('Lambda function', functionName, fnArn, 'only if deploy created it'),
    gone('IAM role', names.role, `arn:${account.partition}:iam::${account.accountId}:role/${names.role}`, `with inline policy ${names.policy}, only if deploy created it`),
    gone('IAM role', names.batchRole, `arn:${account.partition}:iam::${account.accountId}:role/${names.batchRole}`, `backfill's, for S3 Batch Operations, only if img-pipeline created it`),
    gone('SQS failure queue', names.queue, arn('sqs', names.queue), 'and with it any failed events still waiting there'),
    gone('SNS topic', arn('sns', names.topic), arn('sns', names.topic), 'only if deploy created it'),
    ...(keepLogs ? [] : [gone('CloudWatch log group', names.logGroup, arn('logs', `log-group:${names.logGroup}`), 'with every log stream in it')]),
  ];
}
