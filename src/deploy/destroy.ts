import { DeleteRoleCommand, DeleteRolePolicyCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { DeleteFunctionCommand, GetFunctionCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { DeleteTopicCommand, ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { DeleteQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { DeployError } from '../errors.js';
import { attempt, MISSING, must, tagMap, type AwsClients, type StepResult } from './aws.js';
import { checkBucket } from './deploy.js';
import { tagsUnreadable } from './function.js';
import { isOwnedBy, OWNER_TAG, resourceNames, type Account } from './plan.js';
import { findPermission, permittedBucket, readNotification, removeNotification, writeNotification } from './trigger.js';

export interface DestroyTarget {
  bucket: string;
  functionName: string;
  account: Account;
}

/**
 * Removes exactly what deploy created, in reverse order: its notification entry (every other entry kept),
 * the invoke permission, the function, the role and its inline policy, the failure queue, and the topic
 * only if deploy created it. A resource without deploy's tag is kept, never deleted; so are the role and
 * the queue of a function deploy did not create. Everything is read and checked before anything is deleted.
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
  const owned = (tags: Record<string, string> | undefined) => isOwnedBy(tags, functionName);
  const notOurs = `not created by img-pipeline deploy (no ${OWNER_TAG}=${functionName} tag)`;

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

  // 1. The bucket notification: ours only, by Id.
  if (bucketMissing) {
    record({ resource: 'S3 trigger', name: names.notificationId, status: 'absent', detail: `s3://${bucket} no longer exists` });
  } else {
    const notification = await readNotification(clients.s3, bucket, account.accountId);
    const hasEntry = notification.LambdaFunctionConfigurations?.some((c) => c.Id === names.notificationId) ?? false;
    if (hasEntry && !options.dryRun) await writeNotification(clients.s3, bucket, account.accountId, removeNotification(notification, names.notificationId));
    record({ resource: 'S3 trigger', name: names.notificationId, status: hasEntry ? gone : 'absent', detail: `on s3://${bucket}` });
  }

  // 2-3. The permission and the function.
  let topicArn: string | undefined;
  if (fnState === 'absent') {
    record({ resource: 'invoke permission', name: names.statementId, status: 'absent' });
    record({ resource: 'Lambda function', name: functionName, status: 'absent' });
  } else if (fnState === 'kept') {
    record({ resource: 'Lambda function', name: functionName, status: 'kept', detail: notOurs });
  } else {
    topicArn = fn?.Configuration?.Environment?.Variables?.['SNS_TOPIC_ARN'];
    if (permission && !options.dryRun) {
      await attempt('lambda:RemovePermission', functionName, () => clients.lambda.send(new RemovePermissionCommand({ FunctionName: functionName, StatementId: names.statementId })), MISSING.lambda);
    }
    record({ resource: 'invoke permission', name: names.statementId, status: permission ? gone : 'absent' });
    if (!options.dryRun) await must('lambda:DeleteFunction', functionName, () => clients.lambda.send(new DeleteFunctionCommand({ FunctionName: functionName })));
    record({ resource: 'Lambda function', name: functionName, status: gone, detail: 'with its on-failure destination settings' });
  }

  // 4-5. The role and the queue: a function that is kept may be running with them.
  if (fnState === 'kept') {
    const why = `kept with the function ${functionName}, which deploy did not create`;
    record({ resource: 'IAM role', name: names.role, status: 'kept', detail: why });
    record({ resource: 'IAM role', name: names.batchRole, status: 'kept', detail: why });
    record({ resource: 'SQS failure queue', name: names.queue, status: 'kept', detail: why });
  } else {
    // The execution role, then the role `backfill` made for S3 Batch Operations jobs (tagged the same way).
    for (const roleName of [names.role, names.batchRole]) {
      const role = await attempt('iam:GetRole', roleName, () => clients.iam.send(new GetRoleCommand({ RoleName: roleName })), MISSING.iam);
      if (!role?.Role) {
        record({ resource: 'IAM role', name: roleName, status: 'absent' });
      } else if (!owned(tagMap(role.Role.Tags))) {
        record({ resource: 'IAM role', name: roleName, status: 'kept', detail: notOurs });
      } else {
        if (!options.dryRun) {
          await attempt('iam:DeleteRolePolicy', `${roleName}/${names.policy}`, () => clients.iam.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: names.policy })), MISSING.iam);
          await must('iam:DeleteRole', roleName, () => clients.iam.send(new DeleteRoleCommand({ RoleName: roleName })));
        }
        record({ resource: 'IAM role', name: roleName, status: gone, detail: `with inline policy ${names.policy}` });
      }
    }

    const queue = await attempt('sqs:GetQueueUrl', names.queue, () => clients.sqs.send(new GetQueueUrlCommand({ QueueName: names.queue })), MISSING.sqs);
    if (!queue?.QueueUrl) {
      record({ resource: 'SQS failure queue', name: names.queue, status: 'absent' });
    } else {
      const url = queue.QueueUrl;
      const tags = await must('sqs:ListQueueTags', names.queue, () => clients.sqs.send(new ListQueueTagsCommand({ QueueUrl: url })));
      if (!owned(tags.Tags)) {
        record({ resource: 'SQS failure queue', name: names.queue, status: 'kept', detail: notOurs });
      } else {
        if (!options.dryRun) await must('sqs:DeleteQueue', names.queue, () => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: url })));
        record({ resource: 'SQS failure queue', name: names.queue, status: gone, detail: 'with any failed events still in it' });
      }
    }
  }

  // 6. The topic, only if deploy created it: deploy only ever creates this name, and tags it. A topic
  // given with --sns-topic is kept without a call (it may be in another account or region).
  const ownTopic = `arn:${account.partition}:sns:${account.region}:${account.accountId}:${names.topic}`;
  if (topicArn && topicArn !== ownTopic) record({ resource: 'SNS topic', name: topicArn, status: 'kept', detail: 'given with --sns-topic, not created by deploy' });
  const topicTags = await attempt('sns:ListTagsForResource', ownTopic, () => clients.sns.send(new ListTagsForResourceCommand({ ResourceArn: ownTopic })), MISSING.sns);
  if (!topicTags) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'absent' });
  } else if (!owned(tagMap(topicTags.Tags))) {
    record({ resource: 'SNS topic', name: ownTopic, status: 'kept', detail: notOurs });
  } else {
    if (!options.dryRun) await must('sns:DeleteTopic', ownTopic, () => clients.sns.send(new DeleteTopicCommand({ TopicArn: ownTopic })));
    record({ resource: 'SNS topic', name: ownTopic, status: gone, detail: 'with its subscriptions' });
  }
  return steps;
}
