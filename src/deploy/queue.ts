import {
  GetFunctionEventInvokeConfigCommand,
  PutFunctionEventInvokeConfigCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueueTagsCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, IAM_PROPAGATION, MISSING, must, retryAws, stepResult, type RetryPolicy, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import { isOwnedBy, OWNER_TAG, type DeployPlan } from './plan.js';

/**
 * SQS refuses a queue name for 60 s after a queue of that name was deleted: QueueDeletedRecently, "You must
 * wait 60 seconds after deleting a queue before you can create another queue with the same name."
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html). 70 s covers it.
 */
const QUEUE_NAME_REUSE: RetryPolicy = { maxRetryTime: 70_000, minTimeout: 5_000, maxTimeout: 15_000 };
const QUEUE_DELETED_RECENTLY = new Set(['QueueDeletedRecently', 'AWS.SimpleQueueService.QueueDeletedRecently']);

/** The failure queue step, as a plan shows it and as it reports. */
export function describeFailureQueue(plan: DeployPlan): StepTarget {
  const { queue } = plan;
  return { resource: 'SQS failure queue', name: queue.name, detail: `messages kept ${queue.retentionSeconds / 86_400} days`, arn: queue.arn, settings: { MessageRetentionPeriod: queue.retentionSeconds, tags: plan.tags } };
}

/** The asynchronous invocation step, as a plan shows it and as it reports. */
export function describeFailureHandling(plan: DeployPlan): StepTarget {
  const { asyncInvoke } = plan;
  return {
    resource: 'on-failure destination', name: plan.fn.name, detail: `${asyncInvoke.maximumRetryAttempts} retries, then to ${plan.queue.name}`, arn: plan.fn.arn,
    settings: { MaximumRetryAttempts: asyncInvoke.maximumRetryAttempts, MaximumEventAgeInSeconds: asyncInvoke.maximumEventAgeInSeconds, OnFailure: asyncInvoke.onFailure },
  };
}

async function createQueue(sqs: SQSClient, plan: DeployPlan, options: StepOptions): Promise<void> {
  const { queue } = plan;
  try {
    await retryAws(() => sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: { MessageRetentionPeriod: String(queue.retentionSeconds) }, tags: plan.tags })), {
      isRetryable: (error) => QUEUE_DELETED_RECENTLY.has(awsErrorName(error)),
      policy: QUEUE_NAME_REUSE,
      onWait: (seconds) => options.log(`waiting for SQS: a queue named ${queue.name} was deleted less than 60 s ago, and SQS refuses the name until then (${seconds} s)`),
    });
  } catch (error) {
    throw explainAwsError(error, 'sqs:CreateQueue', queue.name);
  }
}

/** The failure queue: where an S3 event lands after Lambda's retries are spent. */
export async function ensureFailureQueue(sqs: SQSClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { queue } = plan;
  const target = describeFailureQueue(plan);
  const retention = String(queue.retentionSeconds);
  const found = await attempt('sqs:GetQueueUrl', queue.name, () => sqs.send(new GetQueueUrlCommand({ QueueName: queue.name })), MISSING.sqs);
  if (!found?.QueueUrl) {
    if (options.dryRun) return stepResult(target, 'would create');
    await createQueue(sqs, plan, options);
    return stepResult(target, 'created');
  }
  const url = found.QueueUrl;
  const tags = await must('sqs:ListQueueTags', queue.name, () => sqs.send(new ListQueueTagsCommand({ QueueUrl: url })));
  if (!isOwnedBy(tags.Tags, plan.fn.name)) {
    throw new DeployError('NOT_OURS', `the SQS queue ${queue.name} exists but was not created by img-pipeline deploy (no ${OWNER_TAG}=${plan.fn.name} tag); choose another --function-name`);
  }
  const attributes = await must('sqs:GetQueueAttributes', queue.name, () => sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['MessageRetentionPeriod'] })));
  if (attributes.Attributes?.['MessageRetentionPeriod'] === retention) return stepResult(target, 'unchanged', '');
  if (options.dryRun) return stepResult(target, 'would update', 'message retention');
  await must('sqs:SetQueueAttributes', queue.name, () => sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { MessageRetentionPeriod: retention } })));
  return stepResult(target, 'updated', 'message retention');
}

/** Asynchronous invocation settings: retries and the on-failure destination (needs the function). */
export async function ensureFailureHandling(lambda: LambdaClient, plan: DeployPlan, options: StepOptions & { functionExists: boolean }): Promise<StepResult> {
  const { asyncInvoke } = plan;
  const target = describeFailureHandling(plan);
  const current = options.functionExists
    ? await attempt('lambda:GetFunctionEventInvokeConfig', plan.fn.name, () => lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: plan.fn.name })), MISSING.lambda)
    : undefined;
  if (current
    && current.MaximumRetryAttempts === asyncInvoke.maximumRetryAttempts
    && current.MaximumEventAgeInSeconds === asyncInvoke.maximumEventAgeInSeconds
    && current.DestinationConfig?.OnFailure?.Destination === asyncInvoke.onFailure) {
    return stepResult(target, 'unchanged');
  }
  if (options.dryRun) return stepResult(target, current ? 'would update' : 'would create');
  const input = {
    FunctionName: plan.fn.name,
    MaximumRetryAttempts: asyncInvoke.maximumRetryAttempts,
    MaximumEventAgeInSeconds: asyncInvoke.maximumEventAgeInSeconds,
    DestinationConfig: { OnFailure: { Destination: asyncInvoke.onFailure } },
  };
  // Lambda checks that the role may send to the queue, and a new role or policy may not be visible to it yet.
  try {
    await retryAws(() => lambda.send(new PutFunctionEventInvokeConfigCommand(input)), {
      isRetryable: (error) => awsErrorName(error) === 'InvalidParameterValueException',
      policy: IAM_PROPAGATION,
      onWait: (seconds) => options.log(`waiting for IAM to propagate (${seconds} s): Lambda cannot yet see that ${plan.role.name} may send to ${plan.queue.name}`),
    });
  } catch (error) {
    throw explainAwsError(error, 'lambda:PutFunctionEventInvokeConfig', plan.fn.name);
  }
  return stepResult(target, current ? 'updated' : 'created');
}
