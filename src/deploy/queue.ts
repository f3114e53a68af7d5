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
import { attempt, awsErrorName, explainAwsError, MISSING, must, retryWhile, stepResult, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import type { DeployPlan } from './plan.js';

/** Lambda checks that the role may send to the destination, and a new role may not be visible to it yet. */
const DESTINATION_RETRY = { attempts: 10, delayMs: 3000 };

/** The failure queue step, as a plan shows it and as it reports. */
export function describeFailureQueue(plan: DeployPlan): StepTarget {
  return { resource: 'SQS failure queue', name: plan.queue.name, detail: `messages kept ${plan.queue.retentionSeconds / 86_400} days` };
}

/** The asynchronous invocation step, as a plan shows it and as it reports. */
export function describeFailureHandling(plan: DeployPlan): StepTarget {
  return { resource: 'on-failure destination', name: plan.fn.name, detail: `${plan.asyncInvoke.maximumRetryAttempts} retries, then to ${plan.queue.name}` };
}

/** The failure queue: where an S3 event lands after Lambda's retries are spent. */
export async function ensureFailureQueue(sqs: SQSClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { queue } = plan;
  const target = describeFailureQueue(plan);
  const retention = String(queue.retentionSeconds);
  const found = await attempt('sqs:GetQueueUrl', queue.name, () => sqs.send(new GetQueueUrlCommand({ QueueName: queue.name })), MISSING.sqs);
  if (!found?.QueueUrl) {
    if (options.dryRun) return stepResult(target, 'would create');
    await must('sqs:CreateQueue', queue.name, () =>
      sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: { MessageRetentionPeriod: retention }, tags: plan.tags })));
    return stepResult(target, 'created');
  }
  const url = found.QueueUrl;
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
  try {
    await retryWhile((error) => awsErrorName(error) === 'InvalidParameterValueException', { ...DESTINATION_RETRY, sleep: options.sleep }, () =>
      lambda.send(new PutFunctionEventInvokeConfigCommand(input)));
  } catch (error) {
    throw explainAwsError(error, 'lambda:PutFunctionEventInvokeConfig', plan.fn.name);
  }
  return stepResult(target, current ? 'updated' : 'created');
}
