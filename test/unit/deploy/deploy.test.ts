import {
  CreateRoleCommand,
  GetRoleCommand,
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
  RemovePermissionCommand,
  ResourceNotFoundException,
  UpdateFunctionCodeCommand,
} from '@aws-sdk/client-lambda';
import {
  GetBucketNotificationConfigurationCommand,
  GetObjectCommand,
  NoSuchKey,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, GetTopicAttributesCommand, NotFoundException, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueUrlCommand, QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createAwsClients, deployCommand } from '../../../src/cli/commands/deploy.js';
import { reportFatal } from '../../../src/cli/main.js';
import { validateConfig } from '../../../src/config/load.js';
import { plannedSteps, runDeploy } from '../../../src/deploy/deploy.js';
import { ensureNotifications } from '../../../src/deploy/notify.js';
import { packageFingerprint } from '../../../src/deploy/package.js';
import { OWNER_TAG, planDeploy } from '../../../src/deploy/plan.js';
import { DeployError } from '../../../src/errors.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { awsError, callNames, calls, captureIo, mocks, resetMocks, writeNames } from './aws-mocks.js';
import {
  ACCOUNT, deps, existingDeployment, fakePackage, FUNCTION_ARN, identity, io, options, otherLambda, otherQueue, ourEntry, plan, READS_OF_A_REDEPLOY, request,
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
    expect(error).toMatchObject({ code: 'NOT_OURS', message: expect.stringMatching(/^the IAM role ImageProcessor-role exists but was not created by img-pipeline deploy/) });
    expect(callNames()).toEqual(['sts:GetCallerIdentity', 's3:HeadBucket', 's3:HeadBucket', 'iam:GetRole']);
  });

  it('retries PutFunctionEventInvokeConfig while Lambda cannot yet see that the role may send to the queue', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionEventInvokeConfigCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }));
    mocks.lambda.on(PutFunctionEventInvokeConfigCommand)
      .rejectsOnce(new InvalidParameterValueException({ message: 'The function\'s execution role does not have permissions to call SendMessage on arn:aws:sqs:us-east-1:123456789012:ImageProcessor-failures', $metadata: {} }))
      .resolves({});
    const d = deps();
    const out = io();
    expect(await deployCommand(options, out, d)).toBe(0);
    expect(writeNames()).toEqual(['lambda:PutFunctionEventInvokeConfig', 'lambda:PutFunctionEventInvokeConfig']);
    expect(d.sleep).toHaveBeenCalledTimes(1);
    expect(d.sleep).toHaveBeenCalledWith(3000);
    expect(out.out()).toMatch(/created\s+on-failure destination\s+ImageProcessor\s+\(2 retries, then to ImageProcessor-failures\)/);
  });

  it('gives up on PutFunctionEventInvokeConfig after ten tries, naming the action', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionEventInvokeConfigCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }));
    mocks.lambda.on(PutFunctionEventInvokeConfigCommand).rejects(new InvalidParameterValueException({ message: 'no SendMessage', $metadata: {} }));
    const d = deps();
    await expect(deployCommand(options, io(), d)).rejects.toThrow(/^lambda:PutFunctionEventInvokeConfig on ImageProcessor failed: InvalidParameterValueException/);
    expect(mocks.lambda.commandCalls(PutFunctionEventInvokeConfigCommand)).toHaveLength(10);
    expect(d.sleep).toHaveBeenCalledTimes(9);
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
    const results = await ensureNotifications(aws, topicPlan, { dryRun: false, sleep: async () => undefined });
    expect(results).toEqual([{ resource: 'SNS topic', name: theirs, status: 'unchanged', detail: 'existing topic, used as given' }]);
    expect(snsIn).toHaveBeenCalledWith('eu-west-1');
    const call = mocks.sns.commandCalls(GetTopicAttributesCommand)[0]!;
    expect(await (call.thisValue as SNSClient).config.region()).toBe('eu-west-1');
  });

  it('a topic in the deploy region uses the deploy region\'s client', async () => {
    mocks.sns.on(GetTopicAttributesCommand).resolves({});
    const aws = createAwsClients('eu-west-1', undefined);
    const snsIn = vi.spyOn(aws, 'snsIn');
    await ensureNotifications(aws, planDeploy({ ...request, notifyEmail: undefined, snsTopicArn: theirs }, { accountId: ACCOUNT, region: 'eu-west-1', partition: 'aws' }), { dryRun: false, sleep: async () => undefined });
    expect(snsIn).not.toHaveBeenCalled();
    expect(mocks.sns.commandCalls(GetTopicAttributesCommand)[0]!.thisValue).toBe(aws.sns);
  });

  it('a topic that does not exist there is TOPIC_NOT_FOUND', async () => {
    mocks.sns.on(GetTopicAttributesCommand).rejects(new NotFoundException({ message: 'Topic does not exist', $metadata: {} }));
    await expect(ensureNotifications(createAwsClients('us-east-1', undefined), topicPlan, { dryRun: false, sleep: async () => undefined }))
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
    const checked = await runDeploy(createAwsClients('us-east-1', undefined), plan, { dryRun: true, sleep: async () => undefined, code: fakePackage(), state });
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
