import {
  GetFunctionEventInvokeConfigCommand,
  PutFunctionEventInvokeConfigCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { attempt, awsErrorName, explainAwsError, must, type Sleep, type StepOptions, type StepResult } from './aws.js';
import type { DeployPlan } from './plan.js';

export const QUEUE_MISSING = ['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'];

/** The failure queue: where an S3 event lands after Lambda's retries are spent. */
export async function ensureFailureQueue(sqs: SQSClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { queue } = plan;
  const result = (status: StepResult['status'], detail?: string): StepResult => ({ resource: 'SQS failure queue', name: queue.name, status, ...(detail ? { detail } : {}) });
  const retention = String(queue.retentionSeconds);
  const found = await attempt('sqs:GetQueueUrl', queue.name, () => sqs.send(new GetQueueUrlCommand({ QueueName: queue.name })), QUEUE_MISSING);
  if (!found?.QueueUrl) {
    if (options.dryRun) return result('would create', `messages kept ${queue.retentionSeconds / 86_400} days`);
    await must('sqs:CreateQueue', queue.name, () =>
      sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: { MessageRetentionPeriod: retention }, tags: plan.tags })));
    return result('created', `messages kept ${queue.retentionSeconds / 86_400} days`);
  }
  const url = found.QueueUrl;
  const attributes = await must('sqs:GetQueueAttributes', queue.name, () => sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['MessageRetentionPeriod'] })));
  if (attributes.Attributes?.['MessageRetentionPeriod'] === retention) return result('unchanged');
  if (options.dryRun) return result('would update', 'message retention');
  await must('sqs:SetQueueAttributes', queue.name, () => sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { MessageRetentionPeriod: retention } })));
  return result('updated', 'message retention');
}

/** Lambda checks the role can send to the destination, and a new role may not be visible to it yet. */
async function putWithRetry(lambda: LambdaClient, plan: DeployPlan, sleep: Sleep): Promise<void> {
  const { asyncInvoke } = plan;
  const input = {
    FunctionName: plan.fn.name,
    MaximumRetryAttempts: asyncInvoke.maximumRetryAttempts,
    MaximumEventAgeInSeconds: asyncInvoke.maximumEventAgeInSeconds,
    DestinationConfig: { OnFailure: { Destination: asyncInvoke.onFailure } },
  };
  for (let round = 1; ; round += 1) {
    try {
      await lambda.send(new PutFunctionEventInvokeConfigCommand(input));
      return;
    } catch (error) {
      if (awsErrorName(error) !== 'InvalidParameterValueException' || round >= 10) {
        throw explainAwsError(error, 'lambda:PutFunctionEventInvokeConfig', plan.fn.name);
      }
      await sleep(3000);
    }
  }
}

/** Asynchronous invocation settings: retries and the on-failure destination (needs the function). */
export async function ensureFailureHandling(lambda: LambdaClient, plan: DeployPlan, options: StepOptions & { functionExists: boolean }): Promise<StepResult> {
  const { asyncInvoke } = plan;
  const detail = `${asyncInvoke.maximumRetryAttempts} retries, then to ${plan.queue.name}`;
  const result = (status: StepResult['status']): StepResult => ({ resource: 'on-failure destination', name: plan.fn.name, status, detail });
  const current = options.functionExists
    ? await attempt('lambda:GetFunctionEventInvokeConfig', plan.fn.name, () => lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: plan.fn.name })), ['ResourceNotFoundException'])
    : undefined;
  if (current
    && current.MaximumRetryAttempts === asyncInvoke.maximumRetryAttempts
    && current.MaximumEventAgeInSeconds === asyncInvoke.maximumEventAgeInSeconds
    && current.DestinationConfig?.OnFailure?.Destination === asyncInvoke.onFailure) {
    return result('unchanged');
  }
  if (options.dryRun) return result(current ? 'would update' : 'would create');
  await putWithRetry(lambda, plan, options.sleep);
  return result(current ? 'updated' : 'created');
}
