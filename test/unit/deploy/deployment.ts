// A deployment as the control-plane tests see it: the request, the plan, a fake package, and every AWS
// read mocked as a previous deploy with the same settings left it.
import { tmpdir } from 'node:os';
import { DescribeLogGroupsCommand, ListTagsForResourceCommand as ListLogTagsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetRoleCommand, GetRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  GetFunctionCommand,
  GetFunctionEventInvokeConfigCommand,
  GetPolicyCommand,
  InvokeCommand,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { GetBucketEncryptionCommand, GetBucketNotificationConfigurationCommand, GetObjectCommand, HeadBucketCommand, type LambdaFunctionConfiguration } from '@aws-sdk/client-s3';
import { GetTopicAttributesCommand, ListSubscriptionsByTopicCommand, ListTagsForResourceCommand as ListTopicTagsCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueueTagsCommand } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { vi } from 'vitest';
import { createAwsClients, type DeployCommandOptions, type DeployDeps } from '../../../src/cli/commands/deploy.js';
import { validateConfig } from '../../../src/config/load.js';
import { packageFingerprint, type LambdaPackage } from '../../../src/deploy/package.js';
import { OWNER_TAG, planDeploy, REGION_TAG, type DeployRequest } from '../../../src/deploy/plan.js';
import { captureIo, mocks } from './aws-mocks.js';

export const ACCOUNT = '123456789012';
export const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ImageProcessor`;

export const options: DeployCommandOptions = {
  bucket: 'my-uploads',
  prefix: 'uploads/',
  out: 's3://my-processed/',
  functionName: 'ImageProcessor',
  arch: 'arm64',
  memory: '1024',
  timeout: '30',
  notifyEmail: 'me@example.com',
  region: 'us-east-1',
  logRetentionDays: '30',
};

export const request: DeployRequest = {
  bucket: 'my-uploads', prefix: 'uploads/', out: { bucket: 'my-processed', prefix: '' },
  functionName: 'ImageProcessor', arch: 'arm64', memory: 1024, timeout: 30, notifyEmail: 'me@example.com', logRetentionDays: 30,
  // What deploy records as CONFIG_FINGERPRINT for the default config.
  fingerprint: await packageFingerprint(validateConfig({}, 'test')),
};
/** Both buckets with the default SSE-S3 encryption: nothing to grant. */
export const NO_KEYS = { source: { kind: 'none' as const }, output: { kind: 'none' as const }, topic: { kind: 'none' as const } };
export const plan = planDeploy(request, { accountId: ACCOUNT, region: 'us-east-1', partition: 'aws' }, NO_KEYS);
export const ROLE_NAME = 'ImageProcessor-us-east-1-role';
export const LOG_GROUP_ARN = `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/ImageProcessor`;

export function fakePackage(sha256 = 'c2hhLW9mLXRoZS1uZXctemlw'): LambdaPackage {
  return { zip: Buffer.from('zip bytes'), sha256, zippedBytes: 9, unzippedBytes: 9, entries: ['index.mjs'], sharpVersion: '0.35.5', sharpFrom: 'host', fingerprint: 'f1ngerprint' };
}

export function deps(pkg = fakePackage()): DeployDeps & { buildPackage: ReturnType<typeof vi.fn>; createClients: ReturnType<typeof vi.fn> } {
  return {
    createClients: vi.fn(createAwsClients),
    buildPackage: vi.fn(async () => pkg),
  };
}

export function io() {
  return { ...captureIo(), cwd: tmpdir() };
}

export const body = (text: string) => ({ transformToString: async () => text }) as never;

/** Our own bucket notification entry, as S3 hands it back. */
export const ourEntry: LambdaFunctionConfiguration = {
  Id: 'img-pipeline-ImageProcessor',
  LambdaFunctionArn: FUNCTION_ARN,
  Events: ['s3:ObjectCreated:*'],
  Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'uploads/' }] } },
};
export const otherLambda: LambdaFunctionConfiguration = { Id: 'virus-scan', LambdaFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:Scanner`, Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'incoming/' }] } } };
export const otherQueue = { Id: 'audit', QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:audit`, Events: ['s3:ObjectRemoved:*' as const] };

/** Who is deploying, and both buckets found in the deploy region with S3's default SSE-S3 encryption. */
export function identity() {
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
  mocks.s3.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' });
  mocks.s3.on(GetBucketEncryptionCommand).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BucketKeyEnabled: false }] } });
  // The smoke test: the handler answers S3's test event with its summary.
  mocks.lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: Buffer.from(JSON.stringify({ processed: 0, skipped: 0, ignored: 1, failed: 0, records: [] })) as never });
}

/** The function's configuration as a previous deploy with the same settings left it. */
export function liveFunction(codeSha = fakePackage().sha256): FunctionConfiguration {
  return {
    FunctionName: 'ImageProcessor', FunctionArn: FUNCTION_ARN, Runtime: 'nodejs24.x', Role: plan.role.arn, Handler: 'index.handler',
    MemorySize: 1024, Timeout: 30, Description: plan.fn.description, Environment: { Variables: plan.fn.environment },
    Architectures: ['arm64'], CodeSha256: codeSha, State: 'Active', LastUpdateStatus: 'Successful',
  };
}

/** Everything as a previous deploy with the same settings left it. */
export function existingDeployment(codeSha = fakePackage().sha256) {
  identity();
  const tags = [{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: REGION_TAG, Value: 'us-east-1' }];
  mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: plan.role.name, Arn: plan.role.arn, Path: '/', RoleId: 'R', CreateDate: new Date(), AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify(plan.role.trustPolicy)), Tags: tags } });
  mocks.iam.on(GetRolePolicyCommand).resolves({ RoleName: plan.role.name, PolicyName: plan.role.policyName, PolicyDocument: encodeURIComponent(JSON.stringify(plan.role.policy)) });
  mocks.sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/ImageProcessor-failures` });
  mocks.sqs.on(ListQueueTagsCommand).resolves({ Tags: { [OWNER_TAG]: 'ImageProcessor' } });
  mocks.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { MessageRetentionPeriod: '1209600' } });
  mocks.sns.on(GetTopicAttributesCommand).resolves({ Attributes: { TopicArn: 'x' } });
  mocks.sns.on(ListTopicTagsCommand).resolves({ Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }] });
  mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [{ logGroupName: '/aws/lambda/ImageProcessor', retentionInDays: 30, arn: `${LOG_GROUP_ARN}:*` }] });
  mocks.logs.on(ListLogTagsCommand).resolves({ tags: { [OWNER_TAG]: 'ImageProcessor' } });
  mocks.sns.on(ListSubscriptionsByTopicCommand).resolves({ Subscriptions: [{ Protocol: 'email', Endpoint: 'me@example.com', SubscriptionArn: 'PendingConfirmation' }] });
  const configuration = liveFunction(codeSha);
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: configuration, Tags: { [OWNER_TAG]: 'ImageProcessor' } });
  mocks.lambda.on(GetFunctionEventInvokeConfigCommand).resolves({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21600, DestinationConfig: { OnFailure: { Destination: plan.queue.arn } } });
  mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::my-uploads' }, StringEquals: { 'AWS:SourceAccount': ACCOUNT } } }] }) });
  mocks.s3.on(GetObjectCommand).resolves({ Body: body(JSON.stringify({ tool: 'img-pipeline', fingerprint: 'f1ngerprint' })) });
  mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [otherLambda, ourEntry], QueueConfigurations: [otherQueue] });
}

/** Every call of a redeploy with nothing changed, in order (the smoke test's Invoke changes nothing). */
export const READS_OF_A_REDEPLOY = [
  'sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket', 's3:GetBucketEncryption', 's3:GetBucketEncryption',
  'iam:GetRole', 'iam:GetRolePolicy',
  'sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:GetQueueAttributes',
  'sns:GetTopicAttributes', 'sns:ListTagsForResource', 'sns:ListSubscriptionsByTopic',
  'lambda:GetFunction',
  'logs:DescribeLogGroups', 'logs:ListTagsForResource',
  'lambda:GetFunctionEventInvokeConfig',
  's3:GetObject',
  'lambda:Invoke',
  'lambda:GetPolicy',
  's3:GetBucketNotificationConfiguration',
];
