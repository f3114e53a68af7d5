import { DeleteLogGroupCommand, DescribeLogGroupsCommand, ListTagsForResourceCommand as ListLogTagsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DeleteRoleCommand, DeleteRolePolicyCommand, GetRoleCommand, ListAttachedRolePoliciesCommand, ListInstanceProfilesForRoleCommand, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { DeleteFunctionCommand, GetFunctionCommand, GetPolicyCommand, RemovePermissionCommand, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { GetBucketNotificationConfigurationCommand, HeadBucketCommand, PutBucketNotificationConfigurationCommand } from '@aws-sdk/client-s3';
import { DeleteTopicCommand, ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { DeleteQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../src/cli/commands/deploy.js';
import { destroyCommand } from '../../../src/cli/commands/destroy.js';
import { reportFatal } from '../../../src/cli/main.js';
import { OWNER_TAG, REGION_TAG } from '../../../src/deploy/plan.js';
import { awsError, callNames, calls, captureIo, mocks, resetMocks, writeNames } from './aws-mocks.js';

const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ImageProcessor`;
const OWN_TOPIC = `arn:aws:sns:us-east-1:${ACCOUNT}:ImageProcessor-notifications`;
const ours = { Id: 'img-pipeline-ImageProcessor', LambdaFunctionArn: FUNCTION_ARN, Events: ['s3:ObjectCreated:*' as const] };
const other = { Id: 'virus-scan', LambdaFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:Scanner`, Events: ['s3:ObjectCreated:*' as const] };
const queue = { Id: 'audit', QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:audit`, Events: ['s3:ObjectRemoved:*' as const] };
const tag = { [OWNER_TAG]: 'ImageProcessor' };
const ROLE = 'ImageProcessor-us-east-1-role';
const BATCH_ROLE = 'ImageProcessor-us-east-1-role-batch';

/** The function's resource policy as Lambda returns it, allowing S3 from `bucket`. */
function policyFor(bucket: string) {
  return JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': `arn:aws:s3:::${bucket}` }, StringEquals: { 'AWS:SourceAccount': ACCOUNT } } }] });
}

function deployed(topicArn = OWN_TOPIC, topicTags: { Key: string; Value: string }[] = [{ Key: OWNER_TAG, Value: 'ImageProcessor' }]) {
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
  mocks.s3.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' });
  mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [other, ours], QueueConfigurations: [queue] });
  mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: { FunctionName: 'ImageProcessor', Environment: { Variables: { PROCESSED_BUCKET: 'out', SNS_TOPIC_ARN: topicArn } } }, Tags: tag });
  mocks.lambda.on(GetPolicyCommand).resolves({ Policy: policyFor('my-uploads') });
  mocks.lambda.on(RemovePermissionCommand).resolves({});
  mocks.lambda.on(DeleteFunctionCommand).resolves({});
  mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: ROLE, Arn: 'arn', Path: '/', RoleId: 'R', CreateDate: new Date(), Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: REGION_TAG, Value: 'us-east-1' }] } });
  // backfill was never run: no Batch Operations role.
  mocks.iam.on(GetRoleCommand, { RoleName: BATCH_ROLE }).rejects(Object.assign(new Error(`The role with name ${BATCH_ROLE} cannot be found.`), { name: 'NoSuchEntityException' }));
  mocks.iam.on(ListAttachedRolePoliciesCommand).resolves({ AttachedPolicies: [], IsTruncated: false });
  mocks.iam.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['img-pipeline'], IsTruncated: false });
  mocks.iam.on(ListInstanceProfilesForRoleCommand).resolves({ InstanceProfiles: [], IsTruncated: false });
  mocks.iam.on(DeleteRolePolicyCommand).resolves({});
  mocks.iam.on(DeleteRoleCommand).resolves({});
  mocks.sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: 'https://sqs/ImageProcessor-failures' });
  mocks.sqs.on(ListQueueTagsCommand).resolves({ Tags: tag });
  mocks.sqs.on(DeleteQueueCommand).resolves({});
  mocks.sns.on(ListTagsForResourceCommand).resolves({ Tags: topicTags });
  mocks.sns.on(DeleteTopicCommand).resolves({});
  mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [{ logGroupName: '/aws/lambda/ImageProcessor', retentionInDays: 30 }] });
  mocks.logs.on(ListLogTagsCommand).resolves({ tags: tag });
  mocks.logs.on(DeleteLogGroupCommand).resolves({});
}

/** Every read destroy makes before its first change, in order. */
const READS = [
  'sts:GetCallerIdentity', 's3:HeadBucket',
  'lambda:GetFunction', 'lambda:GetPolicy',
  's3:GetBucketNotificationConfiguration',
  'iam:GetRole', 'iam:ListAttachedRolePolicies', 'iam:ListRolePolicies', 'iam:ListInstanceProfilesForRole',
  'iam:GetRole',
  'sqs:GetQueueUrl', 'sqs:ListQueueTags',
  'sns:ListTagsForResource',
  'logs:DescribeLogGroups', 'logs:ListTagsForResource',
];

const opts = { bucket: 'my-uploads', functionName: 'ImageProcessor', region: 'us-east-1' };
const deps = { createClients: createAwsClients };

beforeEach(() => resetMocks());

describe('destroy', () => {
  it('removes exactly what deploy created, keeping the bucket\'s other notifications; reads and checks before any delete', async () => {
    deployed();
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(callNames()).toEqual([
      ...READS,
      's3:PutBucketNotificationConfiguration',
      'lambda:RemovePermission', 'lambda:DeleteFunction',
      'iam:DeleteRolePolicy', 'iam:DeleteRole',
      'sqs:DeleteQueue',
      'sns:DeleteTopic',
      'logs:DeleteLogGroup',
    ]);
    const input = (name: string) => calls().find((c) => c.name === name)!.input;
    expect(input('s3:HeadBucket')).toEqual({ Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT });
    expect(input('s3:PutBucketNotificationConfiguration')).toEqual({
      Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT,
      NotificationConfiguration: { LambdaFunctionConfigurations: [other], QueueConfigurations: [queue] },
    });
    expect(input('lambda:RemovePermission')).toEqual({ FunctionName: 'ImageProcessor', StatementId: 'img-pipeline-s3-invoke' });
    expect(input('iam:DeleteRolePolicy')).toEqual({ RoleName: ROLE, PolicyName: 'img-pipeline' });
    expect(input('logs:DeleteLogGroup')).toEqual({ logGroupName: '/aws/lambda/ImageProcessor' });
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

  it('keeps a function it did not create, and the role and queue that function may be running with', async () => {
    deployed();
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: { FunctionName: 'ImageProcessor' }, Tags: { team: 'media' } });
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(writeNames()).toEqual(['s3:PutBucketNotificationConfiguration', 'sns:DeleteTopic', 'logs:DeleteLogGroup']);
    expect(callNames()).not.toContain('lambda:GetPolicy');
    expect(callNames().filter((n) => n.startsWith('iam:') || n.startsWith('sqs:'))).toEqual([]);
    const text = io.out();
    expect(text).toMatch(/kept\s+Lambda function\s+ImageProcessor\s+\(not created by img-pipeline deploy/);
    expect(text).toMatch(/kept\s+IAM role\s+ImageProcessor-us-east-1-role\s+\(kept with the function ImageProcessor/);
    expect(text).toMatch(/kept\s+SQS failure queue\s+ImageProcessor-failures/);
    expect(text).toContain('Kept 4 resource(s)');
    expect(text).toMatch(/kept\s+IAM role\s+ImageProcessor-us-east-1-role-batch\s+\(kept with the function ImageProcessor/);
  });

  it('stops before any change when the function\'s tags cannot be read (TagsError: no lambda:ListTags)', async () => {
    deployed();
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: { FunctionName: 'ImageProcessor' },
      TagsError: { ErrorCode: 'AccessDeniedException', Message: 'User: arn:aws:iam::123456789012:user/dev is not authorized to perform: lambda:ListTags' },
    });
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/^access denied: lambda:ListTags on ImageProcessor/) });
    expect(writeNames()).toEqual([]);
    expect(callNames().filter((n) => n.startsWith('iam:') || n.startsWith('sqs:'))).toEqual([]);
  });

  it('refuses, changing nothing, when --bucket is not the bucket the trigger is on', async () => {
    deployed();
    mocks.lambda.on(GetPolicyCommand).resolves({ Policy: policyFor('real-uploads') });
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'deploy', message: 'refusing to destroy: the trigger of ImageProcessor is on s3://real-uploads, not on s3://my-uploads (--bucket). Nothing was changed. Run again with --bucket real-uploads' });
    expect(reportFatal(error, captureIo().stderr, false)).toBe(2);
    expect(writeNames()).toEqual([]);
  });

  it('a --bucket that does not exist: refused naming the real one, or, if it was the trigger\'s bucket, the rest is removed', async () => {
    deployed();
    mocks.s3.on(HeadBucketCommand).rejects(awsError('NotFound', 'NotFound', 404));
    mocks.lambda.on(GetPolicyCommand).resolves({ Policy: policyFor('real-uploads') });
    await expect(destroyCommand(opts, captureIo(), deps)).rejects.toThrow(/trigger of ImageProcessor is on s3:\/\/real-uploads/);
    expect(writeNames()).toEqual([]);

    resetMocks();
    deployed();
    mocks.s3.on(HeadBucketCommand).rejects(awsError('NotFound', 'NotFound', 404));
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(callNames()).not.toContain('s3:GetBucketNotificationConfiguration');
    expect(writeNames()).toEqual(['lambda:RemovePermission', 'lambda:DeleteFunction', 'iam:DeleteRolePolicy', 'iam:DeleteRole', 'sqs:DeleteQueue', 'sns:DeleteTopic', 'logs:DeleteLogGroup']);
    expect(io.out()).toMatch(/absent\s+S3 trigger\s+img-pipeline-ImageProcessor\s+\(s3:\/\/my-uploads no longer exists\)/);

    resetMocks();
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3.on(HeadBucketCommand).rejects(awsError('NotFound', 'NotFound', 404));
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    await expect(destroyCommand(opts, captureIo(), deps)).rejects.toMatchObject({ code: 'NO_SUCH_BUCKET', message: 'the bucket my-uploads (--bucket) does not exist' });
  });

  it('a bucket in another region is named before anything is read or changed', async () => {
    deployed();
    mocks.s3.on(HeadBucketCommand).rejects(awsError('301', 'Moved', 301, { 'x-amz-bucket-region': 'eu-west-1' }));
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'WRONG_REGION', message: expect.stringContaining('run again with --region eu-west-1') });
    expect(reportFatal(error, captureIo().stderr, false)).toBe(2);
    expect(callNames()).toEqual(['sts:GetCallerIdentity', 's3:HeadBucket']);
  });

  it('checks --function-name and --bucket as deploy does, before any AWS call', async () => {
    await expect(destroyCommand({ ...opts, functionName: 'has space' }, captureIo(), deps)).rejects.toMatchObject({ kind: 'config', message: expect.stringMatching(/^--function-name: expected 1-64 letters/) });
    await expect(destroyCommand({ ...opts, bucket: 'My_Bucket' }, captureIo(), deps)).rejects.toThrow(/^--bucket: expected an S3 bucket name/);
    expect(callNames()).toEqual([]);
  });

  it('--dry-run only reads, and reports what would be deleted, failed events in the queue included', async () => {
    deployed();
    const io = captureIo();
    await destroyCommand({ ...opts, dryRun: true }, io, deps);
    expect(writeNames()).toEqual([]);
    expect(io.out().match(/would delete/g)).toHaveLength(7);
    expect(io.out()).toMatch(/would delete\s+SQS failure queue\s+ImageProcessor-failures\s+\(with any failed events still in it\)/);
  });

  it('--dry-run without credentials names what would go, the failed events in the queue included', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const io = captureIo();
    expect(await destroyCommand({ ...opts, dryRun: true }, io, deps)).toBe(0);
    expect(callNames()).toEqual(['sts:GetCallerIdentity']);
    expect(io.out()).toMatch(/would delete\s+SQS failure queue\s+ImageProcessor-failures\s+\(and with it any failed events still waiting there\)/);
  });

  it('a second destroy finds nothing and changes nothing', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' });
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [other] });
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    mocks.iam.on(GetRoleCommand).rejects(Object.assign(new Error('gone'), { name: 'NoSuchEntityException' }));
    mocks.sqs.on(GetQueueUrlCommand).rejects(Object.assign(new Error('gone'), { name: 'QueueDoesNotExist' }));
    mocks.sns.on(ListTagsForResourceCommand).rejects(Object.assign(new Error('gone'), { name: 'NotFoundException' }));
    mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [] });
    const io = captureIo();
    await destroyCommand(opts, io, deps);
    expect(writeNames()).toEqual([]);
    expect(io.out().match(/absent/g)).toHaveLength(8);
  });
});

describe('destroy: the role backfill made for S3 Batch Operations', () => {
  it('is deleted with its inline policy when tagged for this function and region; kept when not', async () => {
    deployed();
    const tagged = (tags: { Key: string; Value: string }[]) => ({ Role: { RoleName: BATCH_ROLE, Arn: 'arn', Path: '/', RoleId: 'B', CreateDate: new Date(), Tags: tags } });
    mocks.iam.on(GetRoleCommand, { RoleName: BATCH_ROLE }).resolves(tagged([{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: REGION_TAG, Value: 'us-east-1' }]));
    expect(await destroyCommand(opts, captureIo(), deps)).toBe(0);
    expect(mocks.iam.commandCalls(DeleteRoleCommand).map((c) => c.args[0].input.RoleName)).toEqual([ROLE, BATCH_ROLE]);
    expect(mocks.iam.commandCalls(DeleteRolePolicyCommand).map((c) => c.args[0].input)).toEqual([{ RoleName: ROLE, PolicyName: 'img-pipeline' }, { RoleName: BATCH_ROLE, PolicyName: 'img-pipeline' }]);

    resetMocks();
    deployed();
    mocks.iam.on(GetRoleCommand, { RoleName: BATCH_ROLE }).resolves(tagged([]));
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(mocks.iam.commandCalls(DeleteRoleCommand).map((c) => c.args[0].input.RoleName)).toEqual([ROLE]);
    expect(io.out()).toMatch(/kept\s+IAM role\s+ImageProcessor-us-east-1-role-batch\s+\(not created by img-pipeline deploy/);
  });
});

describe('destroy: a role with more on it than deploy put there', () => {
  it('a managed policy someone attached stops destroy before anything is deleted, naming it and the command', async () => {
    deployed();
    mocks.iam.on(ListAttachedRolePoliciesCommand).resolves({ AttachedPolicies: [{ PolicyName: 'AWSXRayDaemonWriteAccess', PolicyArn: 'arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess' }], IsTruncated: false });
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DEPLOY_REFUSED' });
    expect((error as Error).message).toContain('managed policy arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess (aws iam detach-role-policy --role-name ImageProcessor-us-east-1-role --policy-arn arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess)');
    expect((error as Error).message).toContain('Nothing was changed');
    expect(writeNames()).toEqual([]);
  });

  it('another inline policy and an instance profile are named too', async () => {
    deployed();
    mocks.iam.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['img-pipeline', 'kms-extra'], IsTruncated: false });
    mocks.iam.on(ListInstanceProfilesForRoleCommand).resolves({ InstanceProfiles: [{ InstanceProfileName: 'debug-box', InstanceProfileId: 'I', Arn: 'a', Path: '/', CreateDate: new Date(), Roles: [] }], IsTruncated: false });
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/inline policy kms-extra .*instance profile debug-box/);
    expect(writeNames()).toEqual([]);
  });

  it('a policy attached between the check and DeleteRole (DeleteConflict) is one clear line', async () => {
    deployed();
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html, https://github.com/hashicorp/boundary/pull/5646
    mocks.iam.on(DeleteRoleCommand).rejects(awsError('DeleteConflict', 'Cannot delete entity, must detach all policies first.', 409));
    await expect(destroyCommand(opts, captureIo(), deps)).rejects.toMatchObject({
      code: 'DESTROY_INCOMPLETE',
      message: expect.stringMatching(/^iam:DeleteRole on ImageProcessor-us-east-1-role: Cannot delete entity, must detach all policies first\. Something was attached/),
    });
  });

  it('a role of this function tagged for another region is kept', async () => {
    deployed();
    mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: ROLE, Arn: 'arn', Path: '/', RoleId: 'R', CreateDate: new Date(), Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: REGION_TAG, Value: 'eu-west-1' }] } });
    const io = captureIo();
    expect(await destroyCommand(opts, io, deps)).toBe(0);
    expect(writeNames()).not.toContain('iam:DeleteRole');
    expect(io.out()).toMatch(/kept\s+IAM role\s+ImageProcessor-us-east-1-role\s+\(it belongs to the function in eu-west-1\)/);
  });

  it('--keep-logs keeps the log group without reading it', async () => {
    deployed();
    const io = captureIo();
    expect(await destroyCommand({ ...opts, keepLogs: true }, io, deps)).toBe(0);
    expect(callNames().filter((n) => n.startsWith('logs:'))).toEqual([]);
    expect(io.out()).toMatch(/kept\s+CloudWatch log group\s+\/aws\/lambda\/ImageProcessor\s+\(--keep-logs\)/);
  });

  it('--dry-run --json without credentials: one document, every resource as delete', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const io = captureIo();
    expect(await destroyCommand({ ...opts, dryRun: true, json: true }, io, deps)).toBe(0);
    const doc = JSON.parse(io.out()) as { checked: boolean; resources: { type: string; name: string; action: string; arn: string }[] };
    expect(doc.checked).toBe(false);
    expect(doc.resources.map((r) => [r.type, r.name, r.action])).toEqual([
      ['s3-trigger', 'img-pipeline-ImageProcessor', 'delete'],
      ['invoke-permission', 'img-pipeline-s3-invoke', 'delete'],
      ['lambda-function', 'ImageProcessor', 'delete'],
      ['iam-role', 'ImageProcessor-us-east-1-role', 'delete'],
      ['iam-role', 'ImageProcessor-us-east-1-role-batch', 'delete'],
      ['sqs-failure-queue', 'ImageProcessor-failures', 'delete'],
      ['sns-topic', 'arn:aws:sns:us-east-1:<account-id>:ImageProcessor-notifications', 'delete'],
      ['cloudwatch-log-group', '/aws/lambda/ImageProcessor', 'delete'],
    ]);
  });

  it('--dry-run --json with credentials says what exists: delete, or unchanged for what is absent or kept', async () => {
    deployed();
    mocks.sns.on(ListTagsForResourceCommand).resolves({ Tags: [] });
    const io = captureIo();
    expect(await destroyCommand({ ...opts, dryRun: true, json: true }, io, deps)).toBe(0);
    expect(writeNames()).toEqual([]);
    const doc = JSON.parse(io.out()) as { checked: boolean; resources: { type: string; action: string; status: string }[] };
    expect(doc.checked).toBe(true);
    expect(doc.resources.find((r) => r.type === 'sns-topic')).toMatchObject({ action: 'unchanged', status: 'kept' });
    expect(doc.resources.find((r) => r.type === 'iam-role')).toMatchObject({ action: 'delete' });
  });
});

describe('destroy: a stale notification entry of someone else', () => {
  it('S3 refuses to remove ours while another entry points at a deleted function: named, and nothing else changed', async () => {
    deployed();
    const gone = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:DeletedScanner`;
    // https://github.com/aws/aws-cli/issues/8162: the failing destination in ArgumentName1, S3's reason in ArgumentValue1.
    mocks.s3.on(PutBucketNotificationConfigurationCommand).rejects(awsError('InvalidArgument', 'Unable to validate the following destination configurations', 400, {}, {
      ArgumentName1: gone, ArgumentValue1: `Not authorized to invoke function [${gone}].`,
    }));
    const error = await destroyCommand(opts, captureIo(), deps).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRIGGER_DESTINATION_INVALID', message: expect.stringContaining(`unable to validate ${gone} (Not authorized to invoke function [${gone}].)`) });
    expect(writeNames()).toEqual(['s3:PutBucketNotificationConfiguration']);
  });
});
