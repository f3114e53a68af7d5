import { DeleteRoleCommand, DeleteRolePolicyCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { DeleteFunctionCommand, GetFunctionCommand, GetPolicyCommand, RemovePermissionCommand, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { GetBucketNotificationConfigurationCommand, PutBucketNotificationConfigurationCommand } from '@aws-sdk/client-s3';
import { DeleteTopicCommand, ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { DeleteQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../src/cli/commands/deploy.js';
import { destroyCommand } from '../../../src/cli/commands/destroy.js';
import { OWNER_TAG } from '../../../src/deploy/plan.js';
import { callNames, calls, captureIo, mocks, resetMocks, writeNames } from './aws-mocks.js';

const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ImageProcessor`;
const OWN_TOPIC = `arn:aws:sns:us-east-1:${ACCOUNT}:ImageProcessor-notifications`;
const ours = { Id: 'img-pipeline-ImageProcessor', LambdaFunctionArn: FUNCTION_ARN, Events: ['s3:ObjectCreated:*' as const] };
const other = { Id: 'virus-scan', LambdaFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:Scanner`, Events: ['s3:ObjectCreated:*' as const] };
const queue = { Id: 'audit', QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:audit`, Events: ['s3:ObjectRemoved:*' as const] };
const tag = { [OWNER_TAG]: 'ImageProcessor' };

function deployed(topicArn = OWN_TOPIC, topicTags: { Key: string; Value: string }[] = [{ Key: OWNER_TAG, Value: 'ImageProcessor' }]) {
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
  mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [other, ours], QueueConfigurations: [queue] });
  mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: { FunctionName: 'ImageProcessor', Environment: { Variables: { PROCESSED_BUCKET: 'out', SNS_TOPIC_ARN: topicArn } } }, Tags: tag });
  mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke' }] }) });
  mocks.lambda.on(RemovePermissionCommand).resolves({});
  mocks.lambda.on(DeleteFunctionCommand).resolves({});
  mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'ImageProcessor-role', Arn: 'arn', Path: '/', RoleId: 'R', CreateDate: new Date(), Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }] } });
  mocks.iam.on(DeleteRolePolicyCommand).resolves({});
  mocks.iam.on(DeleteRoleCommand).resolves({});
  mocks.sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: 'https://sqs/ImageProcessor-failures' });
  mocks.sqs.on(ListQueueTagsCommand).resolves({ Tags: tag });
  mocks.sqs.on(DeleteQueueCommand).resolves({});
  mocks.sns.on(ListTagsForResourceCommand).resolves({ Tags: topicTags });
  mocks.sns.on(DeleteTopicCommand).resolves({});
}

const opts = { bucket: 'my-uploads', functionName: 'ImageProcessor', region: 'us-east-1' };
const deps = { createClients: createAwsClients };

beforeEach(() => resetMocks());

describe('destroy', () => {
  it('removes exactly what deploy created, keeping the bucket\'s other notifications', async () => {
    deployed();
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(callNames()).toEqual([
      'sts:GetCallerIdentity',
      's3:GetBucketNotificationConfiguration', 's3:PutBucketNotificationConfiguration',
      'lambda:GetFunction', 'lambda:GetPolicy', 'lambda:RemovePermission', 'lambda:DeleteFunction',
      'iam:GetRole', 'iam:DeleteRolePolicy', 'iam:DeleteRole',
      'sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:DeleteQueue',
      'sns:ListTagsForResource', 'sns:DeleteTopic',
    ]);
    const input = (name: string) => calls().find((c) => c.name === name)!.input;
    expect(input('s3:PutBucketNotificationConfiguration')).toEqual({
      Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT,
      NotificationConfiguration: { LambdaFunctionConfigurations: [other], QueueConfigurations: [queue] },
    });
    expect(input('lambda:RemovePermission')).toEqual({ FunctionName: 'ImageProcessor', StatementId: 'img-pipeline-s3-invoke' });
    expect(input('iam:DeleteRolePolicy')).toEqual({ RoleName: 'ImageProcessor-role', PolicyName: 'img-pipeline' });
    expect(input('sns:DeleteTopic')).toEqual({ TopicArn: OWN_TOPIC });
    expect(io.out()).toMatch(/deleted\s+S3 trigger\s+img-pipeline-ImageProcessor/);
  });

  it('keeps a topic it did not create (given with --sns-topic), without asking about it', async () => {
    const theirs = `arn:aws:sns:eu-west-1:${ACCOUNT}:team-alerts`;
    deployed(theirs);
    mocks.sns.on(ListTagsForResourceCommand).rejects(Object.assign(new Error('no such topic'), { name: 'NotFoundException' }));
    const io = captureIo();
    await destroyCommand(opts, io, deps);
    expect(mocks.sns.commandCalls(ListTagsForResourceCommand).map((c) => c.args[0].input)).toEqual([{ ResourceArn: OWN_TOPIC }]);
    expect(mocks.sns.commandCalls(DeleteTopicCommand)).toHaveLength(0);
    expect(io.out()).toMatch(/kept\s+SNS topic\s+arn:aws:sns:eu-west-1:123456789012:team-alerts/);
  });

  it('keeps a topic of the same name that deploy did not tag', async () => {
    deployed(OWN_TOPIC, []);
    const io = captureIo();
    await destroyCommand(opts, io, deps);
    expect(mocks.sns.commandCalls(DeleteTopicCommand)).toHaveLength(0);
    expect(io.out()).toMatch(/kept\s+SNS topic\s+arn:aws:sns:us-east-1:123456789012:ImageProcessor-notifications/);
  });

  it('--dry-run only reads, and reports what would be deleted', async () => {
    deployed();
    const io = captureIo();
    await destroyCommand({ ...opts, dryRun: true }, io, deps);
    expect(writeNames()).toEqual([]);
    expect(io.out().match(/would delete/g)).toHaveLength(6);
  });

  it('a second destroy finds nothing and changes nothing', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [other] });
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    mocks.iam.on(GetRoleCommand).rejects(Object.assign(new Error('gone'), { name: 'NoSuchEntityException' }));
    mocks.sqs.on(GetQueueUrlCommand).rejects(Object.assign(new Error('gone'), { name: 'QueueDoesNotExist' }));
    mocks.sns.on(ListTagsForResourceCommand).rejects(Object.assign(new Error('gone'), { name: 'NotFoundException' }));
    const io = captureIo();
    await destroyCommand(opts, io, deps);
    expect(writeNames()).toEqual([]);
    expect(io.out().match(/absent/g)).toHaveLength(6);
  });
});
