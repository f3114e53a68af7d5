import { DeleteRoleCommand, DeleteRolePolicyCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { DeleteFunctionCommand, GetFunctionCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { DeleteTopicCommand, ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { DeleteQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { attempt, must, type AwsClients, type StepResult } from './aws.js';
import { OWNER_TAG, resourceNames, type Account } from './plan.js';
import { TOPIC_MISSING } from './notify.js';
import { QUEUE_MISSING } from './queue.js';
import { findPermission, readNotification, removeNotification, writeNotification } from './trigger.js';

export interface DestroyTarget {
  bucket: string;
  functionName: string;
  account: Account;
}

const IAM_MISSING = ['NoSuchEntityException', 'NoSuchEntity'];
const LAMBDA_MISSING = ['ResourceNotFoundException'];

/**
 * Removes exactly what deploy created, in reverse order: its notification entry (every other entry kept),
 * the invoke permission, the function, the role and its inline policy, the failure queue, and the topic
 * only if deploy created it. A resource without deploy's tag is kept, never deleted.
 */
export async function runDestroy(clients: AwsClients, target: DestroyTarget, options: { dryRun: boolean; onStep?: (result: StepResult) => void }): Promise<StepResult[]> {
  const { functionName, account, bucket } = target;
  const names = resourceNames(functionName);
  const steps: StepResult[] = [];
  const record = (result: StepResult) => {
    steps.push(result);
    options.onStep?.(result);
  };
  const gone = options.dryRun ? 'would delete' : 'deleted';
  const owned = (tags: Record<string, string> | undefined) => tags?.[OWNER_TAG] === functionName;

  // 1. The bucket notification: ours only, by Id.
  const notification = await readNotification(clients.s3, bucket, account.accountId);
  const hasEntry = notification.LambdaFunctionConfigurations?.some((c) => c.Id === names.notificationId) ?? false;
  if (hasEntry && !options.dryRun) await writeNotification(clients.s3, bucket, account.accountId, removeNotification(notification, names.notificationId));
  record({ resource: 'S3 trigger', name: names.notificationId, status: hasEntry ? gone : 'absent', detail: `on s3://${bucket}` });

  // 2-3. The permission and the function.
  const fn = await attempt('lambda:GetFunction', functionName, () => clients.lambda.send(new GetFunctionCommand({ FunctionName: functionName })), LAMBDA_MISSING);
  let topicArn: string | undefined;
  if (!fn?.Configuration) {
    record({ resource: 'invoke permission', name: names.statementId, status: 'absent' });
    record({ resource: 'Lambda function', name: functionName, status: 'absent' });
  } else if (!owned(fn.Tags)) {
    record({ resource: 'Lambda function', name: functionName, status: 'kept', detail: `not created by img-pipeline deploy (no ${OWNER_TAG} tag)` });
  } else {
    topicArn = fn.Configuration.Environment?.Variables?.['SNS_TOPIC_ARN'];
    const permission = await findPermission(clients.lambda, functionName, names.statementId);
    if (permission && !options.dryRun) {
      await attempt('lambda:RemovePermission', functionName, () => clients.lambda.send(new RemovePermissionCommand({ FunctionName: functionName, StatementId: names.statementId })), LAMBDA_MISSING);
    }
    record({ resource: 'invoke permission', name: names.statementId, status: permission ? gone : 'absent' });
    if (!options.dryRun) await must('lambda:DeleteFunction', functionName, () => clients.lambda.send(new DeleteFunctionCommand({ FunctionName: functionName })));
    record({ resource: 'Lambda function', name: functionName, status: gone, detail: 'with its on-failure destination settings' });
  }

  // 4. The role and its inline policy.
  const role = await attempt('iam:GetRole', names.role, () => clients.iam.send(new GetRoleCommand({ RoleName: names.role })), IAM_MISSING);
  if (!role?.Role) {
    record({ resource: 'IAM role', name: names.role, status: 'absent' });
  } else if (!owned(Object.fromEntries((role.Role.Tags ?? []).map((t) => [t.Key, t.Value])))) {
    record({ resource: 'IAM role', name: names.role, status: 'kept', detail: `not created by img-pipeline deploy (no ${OWNER_TAG} tag)` });
  } else {
    if (!options.dryRun) {
      await attempt('iam:DeleteRolePolicy', `${names.role}/${names.policy}`, () => clients.iam.send(new DeleteRolePolicyCommand({ RoleName: names.role, PolicyName: names.policy })), IAM_MISSING);
      await must('iam:DeleteRole', names.role, () => clients.iam.send(new DeleteRoleCommand({ RoleName: names.role })));
    }
    record({ resource: 'IAM role', name: names.role, status: gone, detail: `with inline policy ${names.policy}` });
  }

  // 5. The failure queue (and any failed events still in it).
  const queue = await attempt('sqs:GetQueueUrl', names.queue, () => clients.sqs.send(new GetQueueUrlCommand({ QueueName: names.queue })), QUEUE_MISSING);
  if (!queue?.QueueUrl) {
    record({ resource: 'SQS failure queue', name: names.queue, status: 'absent' });
  } else {
    const url = queue.QueueUrl;
    const tags = await must('sqs:ListQueueTags', names.queue, () => clients.sqs.send(new ListQueueTagsCommand({ QueueUrl: url })));
    if (!owned(tags.Tags)) {
      record({ resource: 'SQS failure queue', name: names.queue, status: 'kept', detail: `not created by img-pipeline deploy (no ${OWNER_TAG} tag)` });
    } else {
      if (!options.dryRun) await must('sqs:DeleteQueue', names.queue, () => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: url })));
      record({ resource: 'SQS failure queue', name: names.queue, status: gone });
    }
  }

  // 6. The topic, only if deploy created it: deploy only ever creates this name, and tags it. A topic
  // given with --sns-topic is kept without a call (it may be in another account or region).
  const ownTopic = `arn:${account.partition}:sns:${account.region}:${account.accountId}:${names.topic}`;
  if (topicArn && topicArn !== ownTopic) record({ resource: 'SNS topic', name: topicArn, status: 'kept', detail: 'given with --sns-topic, not created by deploy' });
  const topicTags = await attempt('sns:ListTagsForResource', ownTopic, () => clients.sns.send(new ListTagsForResourceCommand({ ResourceArn: ownTopic })), TOPIC_MISSING);
  if (!topicTags) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'absent' });
  } else if (!owned(Object.fromEntries((topicTags.Tags ?? []).map((t) => [t.Key, t.Value])))) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'kept', detail: `not created by img-pipeline deploy (no ${OWNER_TAG} tag)` });
  } else {
    if (!options.dryRun) await must('sns:DeleteTopic', ownTopic, () => clients.sns.send(new DeleteTopicCommand({ TopicArn: ownTopic })));
    record({ resource: 'SNS topic', name: ownTopic, status: gone, detail: 'with its subscriptions' });
  }
  return steps;
}
