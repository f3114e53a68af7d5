import {
  CreateLogGroupCommand,
  DeleteLogGroupCommand,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand,
  PutRetentionPolicyCommand,
  TagResourceCommand,
  type CloudWatchLogsClient,
  type LogGroup,
} from '@aws-sdk/client-cloudwatch-logs';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, MISSING, must, stepResult, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import { OWNER_TAG, type DeployPlan } from './plan.js';

/** The log group step, as a plan shows it and as it reports. */
export function describeLogGroup(plan: DeployPlan): StepTarget {
  const { logGroup } = plan;
  return { resource: 'CloudWatch log group', name: logGroup.name, detail: `kept ${logGroup.retentionDays} days`, arn: logGroup.arn, settings: { retentionInDays: logGroup.retentionDays, tags: plan.tags } };
}

/** The log group of that exact name, if it exists (a prefix search also finds longer names). */
export async function findLogGroup(logs: CloudWatchLogsClient, name: string): Promise<LogGroup | undefined> {
  const page = await must('logs:DescribeLogGroups', name, () => logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: name })));
  return page.logGroups?.find((g) => g.logGroupName === name);
}

/** The log group's tags; the ARN is the one without the trailing ":*" that DescribeLogGroups' `arn` has. */
export async function logGroupTags(logs: CloudWatchLogsClient, arn: string): Promise<Record<string, string>> {
  const tags = await attempt('logs:ListTagsForResource', arn, () => logs.send(new ListTagsForResourceCommand({ resourceArn: arn })), MISSING.logs);
  return tags?.tags ?? {};
}

/** CreateLogGroup; false when it exists already (Lambda creates it at a first invocation, with no tags). */
async function createLogGroup(logs: CloudWatchLogsClient, plan: DeployPlan): Promise<boolean> {
  try {
    await logs.send(new CreateLogGroupCommand({ logGroupName: plan.logGroup.name, tags: plan.tags }));
    return true;
  } catch (error) {
    // "The specified log group already exists" (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html)
    if (awsErrorName(error) === 'ResourceAlreadyExistsException') return false;
    throw explainAwsError(error, 'logs:CreateLogGroup', plan.logGroup.name);
  }
}

/**
 * Step: the function's log group, created before anything can invoke it, with a retention (Lambda's
 * own would keep logs forever) and the ownership tag. It runs after the function step, which has checked
 * that the function is ours: a group of the name /aws/lambda/<function> that has no owner tag was made
 * by Lambda for this function, and is tagged and adopted; one tagged for another function is refused.
 */
export async function ensureLogGroup(logs: CloudWatchLogsClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { logGroup } = plan;
  const target = describeLogGroup(plan);
  const found = await findLogGroup(logs, logGroup.name);
  if (!found && options.dryRun) return stepResult(target, 'would create');
  const created = found ? false : await createLogGroup(logs, plan);
  const changes: string[] = [];
  if (!created) {
    const owner = (await logGroupTags(logs, logGroup.arn))[OWNER_TAG];
    if (owner !== undefined && owner !== plan.fn.name) {
      throw new DeployError('NOT_OURS', `the log group ${logGroup.name} is tagged ${OWNER_TAG}=${owner}, not ${plan.fn.name}; deploy will not change it`);
    }
    if (owner === undefined) {
      changes.push('ownership tag');
      if (!options.dryRun) await must('logs:TagResource', logGroup.arn, () => logs.send(new TagResourceCommand({ resourceArn: logGroup.arn, tags: plan.tags })));
    }
  }
  if (created || found?.retentionInDays !== logGroup.retentionDays) {
    if (!created) changes.push('retention');
    if (!options.dryRun) {
      await must('logs:PutRetentionPolicy', logGroup.name, () => logs.send(new PutRetentionPolicyCommand({ logGroupName: logGroup.name, retentionInDays: logGroup.retentionDays })));
    }
  }
  if (created) return stepResult(target, 'created');
  if (changes.length === 0) return stepResult(target, 'unchanged');
  return stepResult(target, options.dryRun ? 'would update' : 'updated', changes.join(', '));
}

/** Deletes the log group (destroy without --keep-logs). */
export async function deleteLogGroup(logs: CloudWatchLogsClient, name: string): Promise<void> {
  await attempt('logs:DeleteLogGroup', name, () => logs.send(new DeleteLogGroupCommand({ logGroupName: name })), MISSING.logs);
}
