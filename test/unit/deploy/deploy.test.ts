import {
  CreateRoleCommand,
  GetRoleCommand,
  LimitExceededException,
  NoSuchEntityException,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { CreateLogGroupCommand, DescribeLogGroupsCommand, ListTagsForResourceCommand as ListLogTagsCommand, PutRetentionPolicyCommand, ResourceAlreadyExistsException, TagResourceCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  GetFunctionCommand,
  GetFunctionEventInvokeConfigCommand,
  GetPolicyCommand,
  InvalidParameterValueException,
  InvokeCommand,
  PutFunctionEventInvokeConfigCommand,
  RemovePermissionCommand,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import {
  GetBucketEncryptionCommand,
  GetBucketNotificationConfigurationCommand,
  GetObjectCommand,
  NoSuchKey,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, GetTopicAttributesCommand, ListTagsForResourceCommand, NotFoundException, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueUrlCommand, ListQueueTagsCommand, QueueDeletedRecently, QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createAwsClients, deployCommand } from '../../../src/cli/commands/deploy.js';
import { reportFatal } from '../../../src/cli/main.js';
import { validateConfig } from '../../../src/config/load.js';
import { explainAwsError } from '../../../src/deploy/aws.js';
import { plannedSteps, runDeploy } from '../../../src/deploy/deploy.js';
import type { PlanDocument } from '../../../src/deploy/document.js';
import { ensureNotifications } from '../../../src/deploy/notify.js';
import { packageFingerprint } from '../../../src/deploy/package.js';
import { OWNER_TAG, planDeploy } from '../../../src/deploy/plan.js';
import { DeployError } from '../../../src/errors.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { awsError, callNames, calls, captureIo, mocks, onFakeClock, resetMocks, writeNames } from './aws-mocks.js';
import {
  ACCOUNT, deps, existingDeployment, fakePackage, FUNCTION_ARN, identity, io, LOG_GROUP_ARN, NO_KEYS, options, otherLambda, otherQueue, ourEntry, plan, READS_OF_A_REDEPLOY, request, ROLE_NAME,
} from './deployment.js';

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
    // Not there; then, for the SDK's waiter, Pending once and Active.
    mocks.lambda.on(GetFunctionCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'Function not found: arn:aws:lambda:us-east-1:123456789012:function:ImageProcessor', $metadata: {} }))
      .resolvesOnce({ Configuration: { State: 'Pending' } })
      .resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
    // The message AWS gives while a new role has not reached Lambda
    // (https://github.com/danilop/LambdAuth/issues/49, https://github.com/convox/rack/issues/1120).
    mocks.lambda.on(CreateFunctionCommand)
      .rejectsOnce(new InvalidParameterValueException({ message: 'The role defined for the function cannot be assumed by Lambda.', $metadata: {} }))
      .resolves({ FunctionArn: FUNCTION_ARN });
    mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [] });
    mocks.logs.on(CreateLogGroupCommand).resolves({});
    mocks.logs.on(PutRetentionPolicyCommand).resolves({});
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
    expect((await onFakeClock(() => deployCommand(options, out, d))).value).toBe(0);

    expect(callNames()).toEqual([
      'sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket', 's3:GetBucketEncryption', 's3:GetBucketEncryption',
      'iam:GetRole', 'iam:CreateRole', 'iam:PutRolePolicy',
      'sqs:GetQueueUrl', 'sqs:CreateQueue',
      'sns:GetTopicAttributes', 'sns:CreateTopic', 'sns:Subscribe',
      'lambda:GetFunction', 'lambda:CreateFunction', 'lambda:CreateFunction', 'lambda:GetFunction', 'lambda:GetFunction',
      'logs:DescribeLogGroups', 'logs:CreateLogGroup', 'logs:PutRetentionPolicy',
      'lambda:GetFunctionEventInvokeConfig', 'lambda:PutFunctionEventInvokeConfig',
      's3:GetObject', 's3:PutObject',
      'lambda:Invoke',
      'lambda:GetPolicy', 'lambda:AddPermission',
      's3:GetBucketNotificationConfiguration', 's3:PutBucketNotificationConfiguration',
    ]);
    expect(out.err()).toMatch(/waiting for IAM to propagate \(\d+ s\): Lambda cannot assume ImageProcessor-us-east-1-role yet/);
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
    expect(input('iam:CreateRole')).toMatchObject({ RoleName: ROLE_NAME, Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: 'img-pipeline:region', Value: 'us-east-1' }] });
    expect(input('logs:CreateLogGroup')).toEqual({ logGroupName: '/aws/lambda/ImageProcessor', tags: { [OWNER_TAG]: 'ImageProcessor' } });
    expect(input('logs:PutRetentionPolicy')).toEqual({ logGroupName: '/aws/lambda/ImageProcessor', retentionInDays: 30 });
    expect(JSON.parse(Buffer.from(input('lambda:Invoke')['Payload'] as Uint8Array).toString())).toMatchObject({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'my-uploads' });
    expect(input('lambda:Invoke')).toMatchObject({ FunctionName: 'ImageProcessor', InvocationType: 'RequestResponse' });
    expect(input('lambda:CreateFunction')).toMatchObject({
      FunctionName: 'ImageProcessor', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: `arn:aws:iam::${ACCOUNT}:role/${ROLE_NAME}`,
      Architectures: ['arm64'], MemorySize: 1024, Timeout: 30, PackageType: 'Zip',
      // CONFIG_FINGERPRINT: what `backfill` compares the destination's state file with.
      Environment: { Variables: { PROCESSED_BUCKET: 'my-processed', SOURCE_PREFIX: 'uploads/', SNS_TOPIC_ARN: `arn:aws:sns:us-east-1:${ACCOUNT}:ImageProcessor-notifications`, CONFIG_FINGERPRINT: request.fingerprint } },
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
    const text = out.out();
    expect(text).toMatch(/created\s+IAM role\s+ImageProcessor-us-east-1-role/);
    expect(text).toMatch(/passed\s+smoke test\s+ImageProcessor/);
    expect(text).toContain('takes effect within minutes');
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
    expect(names[names.indexOf('lambda:UpdateFunctionCode') + 1]).toBe('lambda:GetFunction');
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

  it('--dry-run names where the sidecars go when the config asks for them, under the output prefix', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const withSidecar = io();
    expect(await deployCommand({ ...options, dryRun: true, sidecar: true }, withSidecar, deps())).toBe(0);
    expect(withSidecar.out()).toMatch(/Sidecars\s+s3:\/\/my-processed\/meta\/<key relative to uploads\/>\.json/);
    const without = io();
    expect(await deployCommand({ ...options, dryRun: true }, without, deps())).toBe(0);
    expect(without.out()).not.toContain('Sidecars');
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

describe('deploy: resources it may not adopt, and eventual consistency', () => {
  it('refuses a role of the same name without its tag (NOT_OURS), before creating anything', async () => {
    existingDeployment();
    mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: plan.role.name, Arn: plan.role.arn, Path: '/', RoleId: 'R', CreateDate: new Date(), Tags: [{ Key: 'team', Value: 'media' }] } });
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NOT_OURS', message: expect.stringMatching(/^the IAM role ImageProcessor-us-east-1-role exists but was not created by img-pipeline deploy/) });
    expect(callNames()).toEqual(['sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket', 's3:GetBucketEncryption', 's3:GetBucketEncryption', 'iam:GetRole']);
  });

  it('retries PutFunctionEventInvokeConfig while Lambda cannot yet see that the role may send to the queue', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionEventInvokeConfigCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }));
    mocks.lambda.on(PutFunctionEventInvokeConfigCommand)
      .rejectsOnce(new InvalidParameterValueException({ message: 'The function\'s execution role does not have permissions to call SendMessage on arn:aws:sqs:us-east-1:123456789012:ImageProcessor-failures', $metadata: {} }))
      .resolves({});
    const out = io();
    expect((await onFakeClock(() => deployCommand(options, out, deps()))).value).toBe(0);
    expect(writeNames()).toEqual(['lambda:PutFunctionEventInvokeConfig', 'lambda:PutFunctionEventInvokeConfig']);
    expect(out.err()).toMatch(/waiting for IAM to propagate \(\d+ s\): Lambda cannot yet see that ImageProcessor-us-east-1-role may send to ImageProcessor-failures/);
    expect(out.out()).toMatch(/created\s+on-failure destination\s+ImageProcessor\s+\(2 retries, then to ImageProcessor-failures\)/);
  });

  it('keeps trying PutFunctionEventInvokeConfig with growing waits for 5 minutes, then names the action', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionEventInvokeConfigCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }));
    const at: number[] = [];
    mocks.lambda.on(PutFunctionEventInvokeConfigCommand).callsFake(() => {
      at.push(Date.now());
      throw new InvalidParameterValueException({ message: 'The function\'s execution role does not have permissions to call SendMessage on arn:aws:sqs:us-east-1:123456789012:ImageProcessor-failures', $metadata: {} });
    });
    const out = io();
    const { error } = await onFakeClock(() => deployCommand(options, out, deps()));
    expect(error).toMatchObject({ message: expect.stringMatching(/^lambda:PutFunctionEventInvokeConfig on ImageProcessor failed: InvalidParameterValueException/) });
    // Exponential: far fewer calls than a fixed 3 s interval would make in 5 minutes (100), spread over 5 minutes.
    const tries = at.length;
    expect(tries).toBeGreaterThan(5);
    expect(tries).toBeLessThan(30);
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(290_000);
    expect(at.at(-1)! - at[0]!).toBeLessThanOrEqual(301_000);
    expect(at[2]! - at[1]!).toBeGreaterThan(at[1]! - at[0]! - 1);
    expect(out.err().match(/waiting for IAM to propagate/g)).toHaveLength(tries - 1);
  });
});

describe('deploy: the trigger', () => {
  it('an overlapping notification on the bucket stops the deploy with TRIGGER_OVERLAP and what to do', async () => {
    existingDeployment();
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [otherLambda] });
    mocks.s3.on(PutBucketNotificationConfigurationCommand).rejects(awsError('InvalidArgument', 'Configurations overlap. Configurations on the same bucket cannot share a common event type.'));
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeployError);
    expect(error).toMatchObject({ code: 'TRIGGER_OVERLAP', message: expect.stringMatching(/^s3:\/\/my-uploads already has a notification for the same events whose prefix overlaps this one.*choose another --prefix$/) });
  });

  it('moving the function to another upload bucket removes its entry from the old bucket too, and says so', async () => {
    existingDeployment();
    mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::old-uploads' }, StringEquals: { 'AWS:SourceAccount': ACCOUNT } } }] }) });
    mocks.lambda.on(RemovePermissionCommand).resolves({});
    mocks.lambda.on(AddPermissionCommand).resolves({});
    mocks.s3.on(GetBucketNotificationConfigurationCommand, { Bucket: 'my-uploads' }).resolves({ QueueConfigurations: [otherQueue] });
    mocks.s3.on(GetBucketNotificationConfigurationCommand, { Bucket: 'old-uploads' }).resolves({ LambdaFunctionConfigurations: [otherLambda, ourEntry] });
    mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});
    const out = io();
    expect(await deployCommand(options, out, deps())).toBe(0);
    expect(writeNames()).toEqual(['lambda:RemovePermission', 'lambda:AddPermission', 's3:PutBucketNotificationConfiguration', 's3:PutBucketNotificationConfiguration']);
    const puts = calls().filter((c) => c.name === 's3:PutBucketNotificationConfiguration').map((c) => c.input);
    expect(puts[0]).toMatchObject({ Bucket: 'my-uploads' });
    expect(puts[1]).toEqual({ Bucket: 'old-uploads', ExpectedBucketOwner: ACCOUNT, NotificationConfiguration: { LambdaFunctionConfigurations: [otherLambda] } });
    expect(out.out()).toMatch(/deleted\s+old S3 trigger\s+img-pipeline-ImageProcessor\s+\(on s3:\/\/old-uploads, the function's previous upload bucket\)/);
  });

  it('a dry run of the move says the old entry would go, and writes nothing', async () => {
    existingDeployment();
    mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::old-uploads' }, StringEquals: { 'AWS:SourceAccount': ACCOUNT } } }] }) });
    mocks.s3.on(GetBucketNotificationConfigurationCommand, { Bucket: 'old-uploads' }).resolves({ LambdaFunctionConfigurations: [ourEntry] });
    const out = io();
    expect(await deployCommand({ ...options, dryRun: true }, out, deps())).toBe(0);
    expect(writeNames()).toEqual([]);
    expect(out.out()).toMatch(/would delete\s+old S3 trigger\s+img-pipeline-ImageProcessor/);
  });
});

describe('deploy: an --sns-topic in another region', () => {
  const theirs = `arn:aws:sns:eu-west-1:${ACCOUNT}:team-alerts`;
  const topicPlan = planDeploy({ ...request, notifyEmail: undefined, snsTopicArn: theirs }, { accountId: ACCOUNT, region: 'us-east-1', partition: 'aws' });

  it('is looked up through an SNS client for its own region', async () => {
    mocks.sns.on(GetTopicAttributesCommand).resolves({ Attributes: { TopicArn: theirs } });
    const aws = createAwsClients('us-east-1', undefined);
    const snsIn = vi.spyOn(aws, 'snsIn');
    const results = await ensureNotifications(aws, topicPlan, { dryRun: false, log: () => undefined });
    expect(results).toEqual([{ resource: 'SNS topic', name: theirs, status: 'unchanged', detail: 'existing topic, used as given', arn: theirs, settings: { existing: true } }]);
    expect(snsIn).toHaveBeenCalledWith('eu-west-1');
    const call = mocks.sns.commandCalls(GetTopicAttributesCommand)[0]!;
    expect(await (call.thisValue as SNSClient).config.region()).toBe('eu-west-1');
  });

  it('a topic in the deploy region uses the deploy region\'s client', async () => {
    mocks.sns.on(GetTopicAttributesCommand).resolves({});
    const aws = createAwsClients('eu-west-1', undefined);
    const snsIn = vi.spyOn(aws, 'snsIn');
    await ensureNotifications(aws, planDeploy({ ...request, notifyEmail: undefined, snsTopicArn: theirs }, { accountId: ACCOUNT, region: 'eu-west-1', partition: 'aws' }), { dryRun: false, log: () => undefined });
    expect(snsIn).not.toHaveBeenCalled();
    expect(mocks.sns.commandCalls(GetTopicAttributesCommand)[0]!.thisValue).toBe(aws.sns);
  });

  it('a topic that does not exist there is TOPIC_NOT_FOUND', async () => {
    mocks.sns.on(GetTopicAttributesCommand).rejects(new NotFoundException({ message: 'Topic does not exist', $metadata: {} }));
    await expect(ensureNotifications(createAwsClients('us-east-1', undefined), topicPlan, { dryRun: false, log: () => undefined }))
      .rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND', message: expect.stringContaining(theirs) });
  });
});

describe('deploy: the dry-run plan and the steps describe the same things', () => {
  it('without credentials, the plan lists what a first deploy would create, in the words its steps would use', async () => {
    // A first deploy, as a dry run with credentials sees it: nothing exists yet.
    identity();
    mocks.iam.on(GetRoleCommand).rejects(new NoSuchEntityException({ message: 'no role', $metadata: {} }));
    mocks.sqs.on(GetQueueUrlCommand).rejects(new QueueDoesNotExist({ message: 'no queue', $metadata: {} }));
    mocks.sns.on(GetTopicAttributesCommand).rejects(new NotFoundException({ message: 'no topic', $metadata: {} }));
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'no function', $metadata: {} }));
    mocks.s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'no state', $metadata: {} }));
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({});
    const state = { fingerprint: 'f1ngerprint', cacheControl: 'public, max-age=31536000, immutable' };
    mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [] });
    const checked = await runDeploy(createAwsClients('us-east-1', undefined), plan, { dryRun: true, log: () => undefined, smokeTest: true, code: fakePackage(), state });
    expect(writeNames()).toEqual([]);
    expect(plannedSteps(plan, state)).toEqual(checked);
  });

  it('offline, the permission names the account and the state file the config fingerprint', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const out = io();
    expect(await deployCommand({ ...options, dryRun: true, watermark: '© Acme' }, out, deps())).toBe(0);
    const text = out.out();
    expect(text).toMatch(/would create\s+invoke permission\s+img-pipeline-s3-invoke\s+\(s3\.amazonaws\.com from arn:aws:s3:::my-uploads, account <account-id>\)/);
    const fingerprint = await packageFingerprint(validateConfig({ watermark: { text: '© Acme' } }, 'test'));
    expect(text).toMatch(new RegExp(`would create\\s+destination state\\s+s3://my-processed/\\.img-pipeline\\.json\\s+\\(config fingerprint ${fingerprint}\\)`));
  });
});

describe('deploy: what a real account answers', () => {
  it('a role of this function tagged for another region is refused, never given this region\'s ARNs', async () => {
    existingDeployment();
    mocks.iam.on(GetRoleCommand).resolves({ Role: { RoleName: ROLE_NAME, Arn: plan.role.arn, Path: '/', RoleId: 'R', CreateDate: new Date(), Tags: [{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: 'img-pipeline:region', Value: 'eu-west-1' }] } });
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NOT_OURS', message: expect.stringContaining('belongs to the ImageProcessor function in eu-west-1, not in us-east-1') });
    expect(writeNames()).toEqual([]);
  });

  it('each region gets its own role: eu-west-1 asks IAM for ImageProcessor-eu-west-1-role', () => {
    const eu = planDeploy(request, { accountId: ACCOUNT, region: 'eu-west-1', partition: 'aws' }, NO_KEYS);
    expect(eu.role.name).toBe('ImageProcessor-eu-west-1-role');
    expect(eu.role.tags).toEqual({ [OWNER_TAG]: 'ImageProcessor', 'img-pipeline:region': 'eu-west-1' });
    expect(plan.role.name).not.toBe(eu.role.name);
  });

  it('a prefix with a space is sent URL-encoded ("camera+roll/"), while IAM and SOURCE_PREFIX keep it raw', async () => {
    existingDeployment();
    const spaced = { ...options, prefix: 'camera roll/' };
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [otherLambda] });
    mocks.s3.on(PutBucketNotificationConfigurationCommand).resolves({});
    mocks.iam.on(PutRolePolicyCommand).resolves({});
    mocks.lambda.on(UpdateFunctionConfigurationCommand).resolves({});
    expect(await deployCommand(spaced, io(), deps())).toBe(0);
    const put = calls().find((c) => c.name === 's3:PutBucketNotificationConfiguration')!.input as { NotificationConfiguration: { LambdaFunctionConfigurations: { Filter?: unknown }[] } };
    expect(put.NotificationConfiguration.LambdaFunctionConfigurations[1]!.Filter).toEqual({ Key: { FilterRules: [{ Name: 'prefix', Value: 'camera+roll/' }] } });
    expect(calls().find((c) => c.name === 'iam:PutRolePolicy')!.input['PolicyDocument']).toContain('arn:aws:s3:::my-uploads/camera roll/*');
    expect(calls().find((c) => c.name === 'lambda:UpdateFunctionConfiguration')!.input).toMatchObject({ Environment: { Variables: { SOURCE_PREFIX: 'camera roll/' } } });
  });

  // S3 wants a space in a filter value as "+" and other special characters percent-encoded, and stores what
  // it was given (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html).
  it.each([
    ['stored encoded compares equal to ours: a second run changes nothing', 'camera roll/', 'camera+roll/', 'unchanged'],
    ['with a lower-case escape is the same encoded value', 'a+b/', 'a%2bb/', 'unchanged'],
    ['an earlier version wrote raw ("camera roll/", which S3 never matches) is rewritten encoded', 'camera roll/', 'camera roll/', 'would update'],
  ])('an entry %s', async (_what, prefix, stored, status) => {
    existingDeployment();
    const spacedPlan = planDeploy({ ...request, prefix }, { accountId: ACCOUNT, region: 'us-east-1', partition: 'aws' }, NO_KEYS);
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ LambdaFunctionConfigurations: [{ ...ourEntry, Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: stored }] } } }] });
    const results = await runDeploy(createAwsClients('us-east-1', undefined), spacedPlan, { dryRun: true, log: () => undefined, smokeTest: false, code: fakePackage(), state: { fingerprint: 'f1ngerprint', cacheControl: 'x' } });
    expect(results.find((r) => r.resource === 'S3 trigger')?.status).toBe(status);
  });

  it('"Unable to validate the following destination configurations" for someone else\'s stale entry names its ARN and how to fix it', async () => {
    existingDeployment();
    const stale = `arn:aws:sqs:us-east-1:${ACCOUNT}:deleted-audit-queue`;
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({ QueueConfigurations: [{ ...otherQueue, QueueArn: stale }] });
    // S3's answer: InvalidArgument, the failing ARN in ArgumentName1 and the reason in ArgumentValue1
    // (https://github.com/aws/aws-cli/issues/8162, https://github.com/aws/aws-sdk-js/issues/632).
    mocks.s3.on(PutBucketNotificationConfigurationCommand).rejects(awsError('InvalidArgument', 'Unable to validate the following destination configurations', 400, {}, {
      ArgumentName1: stale, ArgumentValue1: 'Permissions on the destination queue do not allow S3 to publish notifications from this bucket',
    }));
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRIGGER_DESTINATION_INVALID' });
    expect((error as Error).message).toContain(`unable to validate ${stale} (Permissions on the destination queue do not allow S3 to publish notifications from this bucket)`);
    expect((error as Error).message).toContain('S3 checks every destination in the bucket, not only ours');
    // No retry for a foreign entry: it will not fix itself.
    expect(mocks.s3.commandCalls(PutBucketNotificationConfigurationCommand)).toHaveLength(1);
  });

  it('right after AddPermission, S3 may not see the permission yet: the Put is retried briefly, then succeeds', async () => {
    existingDeployment();
    mocks.lambda.on(GetPolicyCommand).rejects(new ResourceNotFoundException({ message: 'The resource you requested does not exist.', $metadata: {} }));
    mocks.lambda.on(AddPermissionCommand).resolves({});
    mocks.s3.on(GetBucketNotificationConfigurationCommand).resolves({});
    mocks.s3.on(PutBucketNotificationConfigurationCommand)
      .rejectsOnce(awsError('InvalidArgument', 'Unable to validate the following destination configurations', 400, {}, { ArgumentName1: FUNCTION_ARN, ArgumentValue1: `Not authorized to invoke function [${FUNCTION_ARN}].` }))
      .resolves({});
    const out = io();
    expect((await onFakeClock(() => deployCommand(options, out, deps()))).value).toBe(0);
    expect(writeNames()).toEqual(['lambda:AddPermission', 's3:PutBucketNotificationConfiguration', 's3:PutBucketNotificationConfiguration']);
    expect(out.err()).toMatch(/waiting for the invoke permission to reach S3 \(\d+ s\)/);
  });

  it('destroy then deploy within 60 s: CreateQueue answers QueueDeletedRecently, deploy waits and says why, then creates it', async () => {
    existingDeployment();
    mocks.sqs.on(GetQueueUrlCommand).rejects(new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: {} }));
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
    const recently = new QueueDeletedRecently({ message: 'You must wait 60 seconds after deleting a queue before you can create another queue with the same name.', $metadata: {} });
    mocks.sqs.on(CreateQueueCommand).rejectsOnce(recently).rejectsOnce(recently).resolves({ QueueUrl: 'https://sqs/q' });
    const out = io();
    expect((await onFakeClock(() => deployCommand(options, out, deps()))).value).toBe(0);
    expect(mocks.sqs.commandCalls(CreateQueueCommand)).toHaveLength(3);
    expect(out.err()).toMatch(/waiting for SQS: a queue named ImageProcessor-failures was deleted less than 60 s ago, and SQS refuses the name until then \(\d+ s\)/);
  });

  it('QueueDeletedRecently for longer than 70 s gives up with SQS\'s own words', async () => {
    existingDeployment();
    mocks.sqs.on(GetQueueUrlCommand).rejects(new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: {} }));
    mocks.sqs.on(CreateQueueCommand).rejects(new QueueDeletedRecently({ message: 'You must wait 60 seconds after deleting a queue before you can create another queue with the same name.', $metadata: {} }));
    const { error } = await onFakeClock(() => deployCommand(options, io(), deps()));
    expect(error).toMatchObject({ message: expect.stringMatching(/^sqs:CreateQueue on ImageProcessor-failures failed: QueueDeletedRecently: You must wait 60 seconds/) });
  });

  it('a queue of the same name without the tag is refused like the role and the function', async () => {
    existingDeployment();
    mocks.sqs.on(ListQueueTagsCommand).resolves({ Tags: { team: 'media' } });
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NOT_OURS', message: expect.stringMatching(/^the SQS queue ImageProcessor-failures exists but was not created by img-pipeline deploy/) });
    expect(writeNames()).toEqual([]);
  });

  it('a topic of the same name without the tag is refused too', async () => {
    existingDeployment();
    mocks.sns.on(ListTagsForResourceCommand).resolves({ Tags: [] });
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NOT_OURS', message: expect.stringContaining('the SNS topic arn:aws:sns:us-east-1:123456789012:ImageProcessor-notifications exists but was not created') });
    expect(writeNames()).toEqual([]);
  });
});

describe('deploy: KMS-encrypted buckets', () => {
  const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const statementsOf = () => (JSON.parse(calls().find((c) => c.name === 'iam:PutRolePolicy')!.input['PolicyDocument'] as string) as { Statement: { Sid: string; Action: unknown; Resource: unknown }[] }).Statement;

  it('a customer managed key on the uploads and a key ID on the outputs become key-scoped statements', async () => {
    existingDeployment();
    mocks.iam.on(PutRolePolicyCommand).resolves({});
    mocks.s3.on(GetBucketEncryptionCommand, { Bucket: 'my-uploads' }).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: KEY }, BucketKeyEnabled: true }] } });
    mocks.s3.on(GetBucketEncryptionCommand, { Bucket: 'my-processed' }).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: 'mrk-1111' } }] } });
    expect(await deployCommand(options, io(), deps())).toBe(0);
    expect(calls().filter((c) => c.name === 's3:GetBucketEncryption').map((c) => c.input)).toEqual([{ Bucket: 'my-uploads', ExpectedBucketOwner: ACCOUNT }, { Bucket: 'my-processed', ExpectedBucketOwner: ACCOUNT }]);
    expect(statementsOf().filter((s) => s.Sid.includes('crypt'))).toEqual([
      { Sid: 'DecryptUploads', Effect: 'Allow', Action: 'kms:Decrypt', Resource: KEY },
      { Sid: 'EncryptOutputs', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/mrk-1111` },
    ]);
  });

  it('the AWS managed key aws/s3 (aws:kms without a key ID, or alias/aws/s3) needs nothing extra', async () => {
    existingDeployment();
    mocks.s3.on(GetBucketEncryptionCommand, { Bucket: 'my-uploads' }).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }] } });
    mocks.s3.on(GetBucketEncryptionCommand, { Bucket: 'my-processed' }).resolves({ ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/aws/s3` } }] } });
    expect(await deployCommand(options, io(), deps())).toBe(0);
    expect(writeNames()).toEqual([]);
  });

  it('unreadable encryption (AccessDenied) warns with the exact statement to add, and deploys the rest', async () => {
    existingDeployment();
    mocks.s3.on(GetBucketEncryptionCommand, { Bucket: 'my-uploads' }).rejects(awsError('AccessDenied', 'User: arn:aws:iam::123456789012:user/dev is not authorized to perform: s3:GetEncryptionConfiguration', 403));
    const out = io();
    expect(await deployCommand(options, out, deps())).toBe(0);
    expect(out.err()).toContain('warning: the default encryption of s3://my-uploads (--bucket): deploy may not read it (s3:GetEncryptionConfiguration was denied)');
    expect(out.err()).toContain('{"Sid":"DecryptUploads","Effect":"Allow","Action":"kms:Decrypt","Resource":"<key ARN>"}');
    expect(out.err()).toContain(`add it as another inline policy of ${ROLE_NAME}`);
  });

  it('a bucket without any encryption configuration (ServerSideEncryptionConfigurationNotFoundError, before 2023) needs nothing', async () => {
    existingDeployment();
    mocks.s3.on(GetBucketEncryptionCommand).rejects(awsError('ServerSideEncryptionConfigurationNotFoundError', 'The server side encryption configuration was not found', 404));
    const out = io();
    expect(await deployCommand(options, out, deps())).toBe(0);
    expect(out.err()).not.toContain('warning');
  });

  it('an existing KMS-encrypted topic (--sns-topic) adds the key for sns:Publish', async () => {
    existingDeployment();
    mocks.iam.on(PutRolePolicyCommand).resolves({});
    mocks.lambda.on(UpdateFunctionConfigurationCommand).resolves({});
    const topic = `arn:aws:sns:us-east-1:${ACCOUNT}:team-alerts`;
    mocks.sns.on(GetTopicAttributesCommand).resolves({ Attributes: { TopicArn: topic, KmsMasterKeyId: KEY } });
    expect(await deployCommand({ ...options, notifyEmail: undefined, snsTopic: topic }, io(), deps())).toBe(0);
    expect(statementsOf().find((s) => s.Sid === 'EncryptNotifications')).toEqual({ Sid: 'EncryptNotifications', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: KEY });
  });
});

describe('deploy: quotas of a new account', () => {
  it('memory over a new account\'s 3008 MB: one line naming the quota and where to raise it', async () => {
    existingDeployment();
    // https://github.com/alexcasalboni/aws-lambda-power-tuning/pull/181
    mocks.lambda.on(UpdateFunctionConfigurationCommand).rejects(new InvalidParameterValueException({ message: '\'MemorySize\' value failed to satisfy constraint: Member must have value less than or equal to 3008', $metadata: {} }));
    const error = await deployCommand({ ...options, memory: '4096' }, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect((error as Error).message).toMatch(/^lambda:UpdateFunctionConfiguration on ImageProcessor: the account's Lambda memory .* quota is too low .*Deploy with --memory 3008 or less/);
  });

  it('concurrency below the account minimum names the "Concurrent executions" quota', () => {
    // https://github.com/aws-samples/siem-on-amazon-opensearch-service/issues/175
    const error = explainAwsError(new InvalidParameterValueException({ message: 'Specified ConcurrentExecutions for function decreases account\'s UnreservedConcurrentExecution below its minimum value of [10].', $metadata: {} }), 'lambda:PutFunctionConcurrency', 'ImageProcessor');
    expect(error.code).toBe('QUOTA_EXCEEDED');
    expect(error.message).toContain('Lambda "Concurrent executions" quota is too low');
    expect(error.message).toContain('Service Quotas console (https://console.aws.amazon.com/servicequotas/home) > AWS Lambda > Concurrent executions');
  });

  it('the IAM roles quota: the SDK names IAM\'s LimitExceeded LimitExceededException, and the line names the quota', () => {
    // "LimitExceeded: Cannot exceed quota for RolesPerAccount: 1000" (https://github.com/serverless-nextjs/serverless-next.js/issues/2234)
    const error = explainAwsError(new LimitExceededException({ message: 'Cannot exceed quota for RolesPerAccount: 1000', $metadata: {} }), 'iam:CreateRole', 'ImageProcessor-us-east-1-role');
    expect(error.code).toBe('QUOTA_EXCEEDED');
    expect(error.message).toContain('the account\'s IAM roles per account quota is too low (Cannot exceed quota for RolesPerAccount: 1000)');
    expect(error.message).toContain('Roles per account');
  });
});

describe('deploy: the log group and the smoke test', () => {
  it('a log group Lambda created meanwhile (ResourceAlreadyExistsException) is adopted: tagged, retention set', async () => {
    existingDeployment();
    mocks.logs.on(DescribeLogGroupsCommand).resolves({ logGroups: [] });
    // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
    mocks.logs.on(CreateLogGroupCommand).rejects(new ResourceAlreadyExistsException({ message: 'The specified log group already exists', $metadata: {} }));
    mocks.logs.on(ListLogTagsCommand).resolves({ tags: {} });
    mocks.logs.on(TagResourceCommand).resolves({});
    mocks.logs.on(PutRetentionPolicyCommand).resolves({});
    const out = io();
    expect(await deployCommand({ ...options, logRetentionDays: '14' }, out, deps())).toBe(0);
    expect(writeNames()).toEqual(['logs:CreateLogGroup', 'logs:TagResource', 'logs:PutRetentionPolicy']);
    expect(calls().find((c) => c.name === 'logs:TagResource')!.input).toEqual({ resourceArn: LOG_GROUP_ARN, tags: { [OWNER_TAG]: 'ImageProcessor' } });
    expect(calls().find((c) => c.name === 'logs:PutRetentionPolicy')!.input).toEqual({ logGroupName: '/aws/lambda/ImageProcessor', retentionInDays: 14 });
  });

  it('--log-retention-days must be a value CloudWatch accepts, checked before any AWS call', async () => {
    await expect(deployCommand({ ...options, logRetentionDays: '10' }, io(), deps())).rejects.toMatchObject({ kind: 'config', message: expect.stringMatching(/^--log-retention-days: expected one of 1, 3, 5, 7, 14, 30/) });
    expect(callNames()).toEqual([]);
  });

  it('a function error on S3\'s test event (a wrong-architecture sharp) stops the deploy before the trigger', async () => {
    existingDeployment();
    mocks.lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: Buffer.from(JSON.stringify({ errorType: 'Runtime.ImportModuleError', errorMessage: 'Error: Could not load the "sharp" module using the linux-arm64 runtime' })) as never });
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SMOKE_TEST_FAILED', message: expect.stringContaining('failed its test invocation (Unhandled): Runtime.ImportModuleError: Error: Could not load the "sharp" module') });
    expect(callNames()).not.toContain('lambda:GetPolicy');
    expect(callNames()).not.toContain('s3:GetBucketNotificationConfiguration');
  });

  it('--no-smoke-test skips the invocation', async () => {
    existingDeployment();
    expect(await deployCommand({ ...options, smokeTest: false }, io(), deps())).toBe(0);
    expect(callNames()).not.toContain('lambda:Invoke');
  });
});

describe('deploy --dry-run --json', () => {
  it('without credentials: one JSON document with every resource, its ARN, action and exact settings', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const out = io();
    expect(await deployCommand({ ...options, prefix: 'camera roll/', dryRun: true, json: true }, out, deps())).toBe(0);
    const doc = JSON.parse(out.out()) as PlanDocument;
    expect(doc).toMatchObject({ tool: 'img-pipeline', command: 'deploy', dryRun: true, checked: false, offline: 'no AWS credentials', functionName: 'ImageProcessor' });
    expect(doc.resources.map((r) => [r.type, r.action])).toEqual([
      ['iam-role', 'create'], ['sqs-failure-queue', 'create'], ['sns-topic', 'create'], ['email-subscription', 'create'],
      ['lambda-function', 'create'], ['cloudwatch-log-group', 'create'], ['on-failure-destination', 'create'],
      ['destination-state', 'create'], ['invoke-permission', 'create'], ['s3-trigger', 'create'],
    ]);
    const byType = (type: string) => doc.resources.find((r) => r.type === type)!;
    expect(byType('iam-role')).toMatchObject({ name: 'ImageProcessor-us-east-1-role', arn: 'arn:aws:iam::<account-id>:role/ImageProcessor-us-east-1-role' });
    expect(JSON.stringify(byType('iam-role').settings)).toContain('arn:aws:s3:::my-uploads/camera roll/*');
    expect(byType('lambda-function').settings).toMatchObject({ Runtime: 'nodejs24.x', Role: 'arn:aws:iam::<account-id>:role/ImageProcessor-us-east-1-role' });
    expect(byType('cloudwatch-log-group')).toMatchObject({ name: '/aws/lambda/ImageProcessor', settings: { retentionInDays: 30 } });
    expect(byType('s3-trigger').settings).toEqual({ LambdaFunctionConfiguration: { Id: 'img-pipeline-ImageProcessor', LambdaFunctionArn: 'arn:aws:lambda:us-east-1:<account-id>:function:ImageProcessor', Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'camera+roll/' }] } } } });
  });

  it('with credentials: unchanged and update actions from what exists, and nothing written', async () => {
    existingDeployment('c2hhLW9mLXRoZS1vbGQtemlw');
    const out = io();
    expect(await deployCommand({ ...options, dryRun: true, json: true }, out, deps())).toBe(0);
    expect(writeNames()).toEqual([]);
    const doc = JSON.parse(out.out()) as PlanDocument;
    expect(doc.checked).toBe(true);
    expect(doc.account).toEqual({ accountId: ACCOUNT, region: 'us-east-1', partition: 'aws' });
    expect(doc.resources.find((r) => r.type === 'lambda-function')).toMatchObject({ action: 'update', detail: 'code', arn: FUNCTION_ARN });
    expect(doc.resources.find((r) => r.type === 'iam-role')).toMatchObject({ action: 'unchanged' });
  });
});
