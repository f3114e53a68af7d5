import { tmpdir } from 'node:os';
import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  NoSuchEntityException,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  GetPolicyCommand,
  InvalidParameterValueException,
  PutFunctionEventInvokeConfigCommand,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
} from '@aws-sdk/client-lambda';
import {
  GetBucketNotificationConfigurationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  NoSuchKey,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  type LambdaFunctionConfiguration,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, GetTopicAttributesCommand, ListSubscriptionsByTopicCommand, NotFoundException, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createAwsClients, deployCommand, type DeployCommandOptions, type DeployDeps } from '../../../src/cli/commands/deploy.js';
import { reportFatal } from '../../../src/cli/main.js';
import type { LambdaPackage } from '../../../src/deploy/package.js';
import { OWNER_TAG, planDeploy, type DeployRequest } from '../../../src/deploy/plan.js';
import { DeployError } from '../../../src/errors.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { awsError, callNames, calls, captureIo, mocks, resetMocks, writeNames } from './aws-mocks.js';

const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ImageProcessor`;

const options: DeployCommandOptions = {
  bucket: 'my-uploads',
  prefix: 'uploads/',
  out: 's3://my-processed/',
  functionName: 'ImageProcessor',
  arch: 'arm64',
  memory: '1024',
  timeout: '30',
  notifyEmail: 'me@example.com',
  region: 'us-east-1',
};

const request: DeployRequest = {
  bucket: 'my-uploads', prefix: 'uploads/', out: { bucket: 'my-processed', prefix: '' },
  functionName: 'ImageProcessor', arch: 'arm64', memory: 1024, timeout: 30, notifyEmail: 'me@example.com',
};
const plan = planDeploy(request, { accountId: ACCOUNT, region: 'us-east-1', partition: 'aws' });

function fakePackage(sha256 = 'c2hhLW9mLXRoZS1uZXctemlw'): LambdaPackage {
  return { zip: Buffer.from('zip bytes'), sha256, sha256Hex: 'ab', zippedBytes: 9, unzippedBytes: 9, entries: ['index.mjs'], sharpVersion: '0.35.5', sharpFrom: 'host', fingerprint: 'f1ngerprint' };
}

function deps(pkg = fakePackage()): DeployDeps & { sleep: ReturnType<typeof vi.fn>; buildPackage: ReturnType<typeof vi.fn>; createClients: ReturnType<typeof vi.fn> } {
  return {
    createClients: vi.fn(createAwsClients),
    buildPackage: vi.fn(async () => pkg),
    sleep: vi.fn(async () => undefined),
  };
}

function io() {
  return { ...captureIo(), cwd: tmpdir() };
}

const body = (text: string) => ({ transformToString: async () => text }) as never;

/** Our own bucket notification entry, as S3 hands it back. */
const ourEntry: LambdaFunctionConfiguration = {
  Id: 'img-pipeline-ImageProcessor',
  LambdaFunctionArn: FUNCTION_ARN,
  Events: ['s3:ObjectCreated:*'],
  Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'uploads/' }] } },
};
const otherLambda: LambdaFunctionConfiguration = { Id: 'virus-scan', LambdaFunctionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:Scanner`, Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'incoming/' }] } } };
const otherQueue = { Id: 'audit', QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:audit`, Events: ['s3:ObjectRemoved:*' as const] };

function identity() {
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
  mocks.s3.on(HeadBucketCommand).resolves({ BucketRegion: 'us-east-1' });
}

/** Everything as a previous deploy with the same settings left it. */
function existingDeployment(codeSha = fakePackage().sha256) {
  identity();
  const tags = [{ Key: OWNER_TAG, Value: 'ImageProcessor' }];
  mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: plan.role.name, Arn: plan.role.arn, Path: '/', RoleId: 'R', CreateDate: new Date(), AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify(plan.role.trustPolicy)), Tags: tags } });
  mocks.iam.on(GetRolePolicyCommand).resolves({ RoleName: plan.role.name, PolicyName: plan.role.policyName, PolicyDocument: encodeURIComponent(JSON.stringify(plan.role.policy)) });
  mocks.sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/ImageProcessor-failures` });
  mocks.sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { MessageRetentionPeriod: '1209600' } });
  mocks.sns.on(GetTopicAttributesCommand).resolves({ Attributes: { TopicArn: 'x' } });
  mocks.sns.on(ListSubscriptionsByTopicCommand).resolves({ Subscriptions: [{ Protocol: 'email', Endpoint: 'me@example.com', SubscriptionArn: 'PendingConfirmation' }] });
  const configuration = {
    FunctionName: 'ImageProcessor', FunctionArn: FUNCTION_ARN, Runtime: 'nodejs22.x' as const, Role: plan.role.arn, Handler: 'index.handler',
    MemorySize: 1024, Timeout: 30, Description: plan.fn.description, Environment: { Variables: plan.fn.environment },
    Architectures: ['arm64' as const], CodeSha256: codeSha, State: 'Active' as const, LastUpdateStatus: 'Successful' as const,
  };
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: configuration, Tags: { [OWNER_TAG]: 'ImageProcessor' } });
  mocks.lambda.on(GetFunctionConfigurationCommand).resolves(configuration);
  mocks.lambda.on(GetFunctionEventInvokeConfigCommand).resolves({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21600, DestinationConfig: { OnFailure: { Destination: plan.queue.arn } } });
  mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::my-uploads' }, StringEquals: { 'AWS:SourceAccount': ACCOUNT } } }] }) });
  mocks.s3.on(GetObjectCommand).resolves({ Body: body(JSON.stringify({ tool: 'img-pipeline', fingerprint: 'f1ngerprint' })) });
  mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [otherLambda, ourEntry], QueueConfigurations: [otherQueue] });
}

const READS_OF_A_REDEPLOY = [
  'sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket',
  'iam:GetRole', 'iam:GetRolePolicy',
  'sqs:GetQueueUrl', 'sqs:GetQueueAttributes',
  'sns:GetTopicAttributes', 'sns:ListSubscriptionsByTopic',
  'lambda:GetFunction',
  'lambda:GetFunctionEventInvokeConfig',
  's3:GetObject',
  'lambda:GetPolicy',
  's3:GetBucketNotificationConfiguration',
];

beforeEach(() => resetMocks());

describe('deploy: first deploy', () => {
  it('creates every resource in order, retrying CreateFunction while the new role cannot be assumed', async () => {
    identity();
    mocks.iam.on(GetRoleCommand).rejects(new NoSuchEntityException({ message: 'no role', $metadata: {} }));
    mocks.iam.on(CreateRoleCommand).resolves({});
    mocks.iam.on(PutRolePolicyCommand).resolves({});
    mocks.sqs.on(GetQueueUrlCommand).rejects(new QueueDoesNotExist({ message: 'no queue', $metadata: {} }));
    mocks.sqs.on(CreateQueueCommand).resolves({ QueueUrl: 'https://sqs/q' });
    mocks.sns.on(GetTopicAttributesCommand).rejects(new NotFoundException({ message: 'no topic', $metadata: {} }));
    mocks.sns.on(CreateTopicCommand).resolves({ TopicArn: plan.topic.kind === 'create' ? plan.topic.arn : '' });
    mocks.sns.on(SubscribeCommand).resolves({ SubscriptionArn: 'pending confirmation' });
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'no function', $metadata: {} }));
    mocks.lambda.on(CreateFunctionCommand)
      .rejectsOnce(new InvalidParameterValueException({ message: 'The role defined for the function cannot be assumed by Lambda.', $metadata: {} }))
      .resolves({ FunctionArn: FUNCTION_ARN });
    mocks.lambda.on(GetFunctionConfigurationCommand).resolvesOnce({ State: 'Pending' }).resolves({ State: 'Active', LastUpdateStatus: 'Successful' });
    mocks.lambda.on(GetFunctionEventInvokeConfigCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }));
    mocks.lambda.on(PutFunctionEventInvokeConfigCommand).resolves({});
    mocks.lambda.on(GetPolicyCommand).rejects(new ResourceNotFoundException({ message: 'no policy', $metadata: {} }));
    mocks.lambda.on(AddPermissionCommand).resolves({});
    mocks.s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'no state', $metadata: {} }));
    mocks.s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({});
    mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});

    const d = deps();
    const out = io();
    expect(await deployCommand(options, out, d)).toBe(0);

    expect(callNames()).toEqual([
      'sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket',
      'iam:GetRole', 'iam:CreateRole', 'iam:PutRolePolicy',
      'sqs:GetQueueUrl', 'sqs:CreateQueue',
      'sns:GetTopicAttributes', 'sns:CreateTopic', 'sns:Subscribe',
      'lambda:GetFunction', 'lambda:CreateFunction', 'lambda:CreateFunction', 'lambda:GetFunctionConfiguration', 'lambda:GetFunctionConfiguration',
      'lambda:GetFunctionEventInvokeConfig', 'lambda:PutFunctionEventInvokeConfig',
      's3:GetObject', 's3:PutObject',
      'lambda:GetPolicy', 'lambda:AddPermission',
      's3:GetBucketNotificationConfiguration', 's3:PutBucketNotificationConfiguration',
    ]);
    const input = (name: string) => calls().find((c) => c.name === name)!.input;

    expect(input('s3:HeadBucket')).toMatchObject({ Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT });
    expect(JSON.parse(input('iam:CreateRole')['AssumeRolePolicyDocument'] as string)).toEqual({
      Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    });
    const policyText = input('iam:PutRolePolicy')['PolicyDocument'] as string;
    expect(policyText).not.toMatch(/FullAccess|"\*"|s3:\*/);
    const statements = (JSON.parse(policyText) as { Statement: { Action: string | string[]; Resource: string | string[] }[] }).Statement;
    const grant = (action: string) => statements.find((s) => [s.Action].flat().includes(action))?.Resource;
    expect(grant('s3:GetObject')).toBe('arn:aws:s3:::my-uploads/uploads/*');
    expect(grant('s3:PutObject')).toBe('arn:aws:s3:::my-processed/*');
    expect(grant('sns:Publish')).toBe(`arn:aws:sns:us-east-1:${ACCOUNT}:ImageProcessor-notifications`);
    expect(grant('sqs:SendMessage')).toBe(`arn:aws:sqs:us-east-1:${ACCOUNT}:ImageProcessor-failures`);
    expect(grant('logs:PutLogEvents')).toEqual([`arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/ImageProcessor`, `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/ImageProcessor:*`]);

    expect(input('sqs:CreateQueue')).toMatchObject({ QueueName: 'ImageProcessor-failures', tags: { [OWNER_TAG]: 'ImageProcessor' } });
    expect(input('sns:CreateTopic')).toMatchObject({ Name: 'ImageProcessor-notifications', Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }] });
    expect(input('sns:Subscribe')).toMatchObject({ Protocol: 'email', Endpoint: 'me@example.com' });
    expect(input('lambda:CreateFunction')).toMatchObject({
      FunctionName: 'ImageProcessor', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: `arn:aws:iam::${ACCOUNT}:role/ImageProcessor-role`,
      Architectures: ['arm64'], MemorySize: 1024, Timeout: 30, PackageType: 'Zip',
      Environment: { Variables: { PROCESSED_BUCKET: 'my-processed', SOURCE_PREFIX: 'uploads/', SNS_TOPIC_ARN: `arn:aws:sns:us-east-1:${ACCOUNT}:ImageProcessor-notifications` } },
      Tags: { [OWNER_TAG]: 'ImageProcessor' },
    });
    expect(input('lambda:PutFunctionEventInvokeConfig')).toEqual({
      FunctionName: 'ImageProcessor', MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21600,
      DestinationConfig: { OnFailure: { Destination: `arn:aws:sqs:us-east-1:${ACCOUNT}:ImageProcessor-failures` } },
    });
    expect(input('s3:PutObject')).toMatchObject({ Bucket: 'my-processed', Key: STATE_KEY });
    expect(String(input('s3:PutObject')['Body'])).toContain('f1ngerprint');
    expect(input('lambda:AddPermission')).toEqual({
      FunctionName: 'ImageProcessor', StatementId: 'img-pipeline-s3-invoke', Action: 'lambda:InvokeFunction',
      Principal: 's3.amazonaws.com', SourceArn: 'arn:aws:s3:::my-uploads', SourceAccount: ACCOUNT,
    });
    expect(input('s3:PutBucketNotificationConfiguration')).toEqual({
      Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT,
      NotificationConfiguration: { LambdaFunctionConfigurations: [{ Id: 'img-pipeline-ImageProcessor', LambdaFunctionArn: FUNCTION_ARN, Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } } }] },
    });
    // One wait for the role to propagate, one while the function was Pending; no real time passed.
    expect(d.sleep).toHaveBeenCalledTimes(2);

    const text = out.out();
    expect(text).toMatch(/created\s+IAM role\s+ImageProcessor-role/);
    expect(text).toMatch(/created\s+Lambda function\s+ImageProcessor/);
    expect(text).toContain(`Function  ${FUNCTION_ARN}`);
    expect(text).toContain('aws s3 cp photo.jpg s3://my-uploads/uploads/');
  });
});

describe('deploy: a second run', () => {
  it('changes nothing when nothing changed: only reads, every step unchanged', async () => {
    existingDeployment();
    const out = io();
    expect(await deployCommand(options, out, deps())).toBe(0);
    expect(callNames()).toEqual(READS_OF_A_REDEPLOY);
    expect(writeNames()).toEqual([]);
    expect(out.out()).toContain('Everything was already up to date.');
    expect(out.out()).not.toMatch(/^\s+(created|updated)/m);
  });

  it('uploads the code alone when only the package changed (CodeSha256 differs)', async () => {
    existingDeployment('c2hhLW9mLXRoZS1vbGQtemlw');
    const pkg = fakePackage();
    const out = io();
    expect(await deployCommand(options, out, deps(pkg))).toBe(0);
    expect(writeNames()).toEqual(['lambda:UpdateFunctionCode']);
    expect(calls().find((c) => c.name === 'lambda:UpdateFunctionCode')!.input).toEqual({ FunctionName: 'ImageProcessor', ZipFile: pkg.zip, Architectures: ['arm64'] });
    // It waits for the update to finish before going on.
    const names = callNames();
    expect(names.indexOf('lambda:GetFunctionConfiguration')).toBe(names.indexOf('lambda:UpdateFunctionCode') + 1);
    expect(out.out()).toMatch(/updated\s+Lambda function\s+ImageProcessor\s+\(code\)/);
    expect(mocks.lambda.commandCalls(UpdateFunctionCodeCommand)).toHaveLength(1);
  });

  it('merges the bucket notification: other Lambda, queue and topic entries kept, its own entry replaced by Id', async () => {
    existingDeployment();
    const stale = { ...ourEntry, Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'old/' }] } } };
    const otherTopic = { Id: 'ops', TopicArn: `arn:aws:sns:us-east-1:${ACCOUNT}:ops`, Events: ['s3:ObjectRemoved:*' as const] };
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [otherLambda, stale], QueueConfigurations: [otherQueue], TopicConfigurations: [otherTopic], EventBridgeConfiguration: {} });
    mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});
    expect(await deployCommand(options, io(), deps())).toBe(0);
    expect(writeNames()).toEqual(['s3:PutBucketNotificationConfiguration']);
    const put = calls().find((c) => c.name === 's3:PutBucketNotificationConfiguration')!.input;
    expect(put['NotificationConfiguration']).toEqual({
      LambdaFunctionConfigurations: [otherLambda, { ...ourEntry, Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } } }],
      QueueConfigurations: [otherQueue],
      TopicConfigurations: [otherTopic],
      EventBridgeConfiguration: {},
    });
  });
});

describe('deploy: refused and offline', () => {
  it('refuses a loop (same bucket, trigger prefix covering the outputs) with exit code 2 and no AWS call at all', async () => {
    const d = deps();
    const error = await deployCommand({ ...options, prefix: undefined, out: 's3://my-uploads/processed/' }, io(), d).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeployError);
    expect((error as DeployError).code).toBe('DEPLOY_REFUSED');
    expect((error as Error).message).toMatch(/every new object in s3:\/\/my-uploads\/.*Nothing was created/);
    expect(reportFatal(error, captureIo().stderr, false)).toBe(2);
    expect(d.createClients).not.toHaveBeenCalled();
    expect(d.buildPackage).not.toHaveBeenCalled();
    expect(callNames()).toEqual([]);
  });

  it('--dry-run without credentials prints the whole plan as "would create" after one failed identity lookup', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const d = deps();
    const out = io();
    expect(await deployCommand({ ...options, dryRun: true }, out, d)).toBe(0);
    expect(callNames()).toEqual(['sts:GetCallerIdentity']);
    expect(d.buildPackage).not.toHaveBeenCalled();
    const text = out.out();
    expect(text).toContain('no AWS credentials');
    expect(text).toContain('"Action": "s3:GetObject"');
    expect(text).toContain('"Resource": "arn:aws:s3:::my-uploads/uploads/*"');
    expect(text).toMatch(/Trigger\s+s3:ObjectCreated:\* on s3:\/\/my-uploads\/uploads\//);
    expect(text).toContain('PROCESSED_BUCKET=my-processed');
    expect(text).toContain('SOURCE_PREFIX=uploads/');
    for (const resource of ['IAM role', 'SQS failure queue', 'SNS topic', 'email subscription', 'Lambda function', 'on-failure destination', 'invoke permission', 'S3 trigger']) {
      expect(text).toMatch(new RegExp(`would create\\s+${resource}`));
    }
  });

  it('--dry-run with credentials compares against what exists and writes nothing', async () => {
    existingDeployment('c2hhLW9mLXRoZS1vbGQtemlw');
    const out = io();
    expect(await deployCommand({ ...options, dryRun: true }, out, deps())).toBe(0);
    expect(writeNames()).toEqual([]);
    expect(out.out()).toMatch(/would update\s+Lambda function\s+ImageProcessor\s+\(code\)/);
    expect(out.out()).toMatch(/unchanged\s+IAM role/);
  });

  it('without credentials, a real deploy stops with one line saying so', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NO_CREDENTIALS', message: expect.stringMatching(/^no AWS credentials found/) });
  });
});
