import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { beforeEach, describe, expect, it } from 'vitest';
import { checkBucket } from '../../../src/deploy/deploy.js';
import { explainAwsError, samePolicy } from '../../../src/deploy/aws.js';
import { keyFinding } from '../../../src/deploy/encryption.js';
import { checkDeployRequest, encodeFilterValue, normalizePrefix, planDeploy, regionalName, resourceNames, type DeployRequest } from '../../../src/deploy/plan.js';
import { mergeNotification, removeNotification } from '../../../src/deploy/trigger.js';
import { ConfigError, DeployError } from '../../../src/errors.js';
import { awsError, clients, mocks, resetMocks } from './aws-mocks.js';

const base: DeployRequest = {
  bucket: 'my-uploads', prefix: 'uploads/', out: { bucket: 'my-processed', prefix: '' },
  functionName: 'ImageProcessor', arch: 'arm64', memory: 1024, timeout: 30, logRetentionDays: 30,
};
const account = { accountId: '123456789012', region: 'eu-west-1', partition: 'aws' };

describe('the loop check', () => {
  const refused = (bucket: string, prefix: string, out: string) => () => checkDeployRequest({ ...base, bucket, prefix, out: { bucket, prefix: out } });
  it.each([
    ['an empty trigger prefix', '', 'processed/'],
    ['an empty output prefix', 'uploads/', ''],
    ['outputs inside the trigger prefix', 'uploads/', 'uploads/processed/'],
    ['a trigger prefix inside the outputs', 'site/uploads/', 'site/'],
    ['the same prefix', 'media/', 'media/'],
    ['a trigger prefix without a slash that covers the outputs', 'up', 'up/out/'],
  ])('refuses the same bucket with %s', (_name, prefix, out) => {
    expect(refused('media-bucket', prefix, out)).toThrow(DeployError);
    expect(refused('media-bucket', prefix, out)).toThrow(/refusing to deploy.*Nothing was created/);
  });

  it('accepts separate prefixes in one bucket, and any prefixes across two buckets', () => {
    expect(checkDeployRequest({ ...base, bucket: 'media', prefix: 'uploads/', out: { bucket: 'media', prefix: 'processed/' } }).prefix).toBe('uploads/');
    expect(checkDeployRequest({ ...base, prefix: '', out: { bucket: 'my-processed', prefix: '' } }).prefix).toBe('');
  });

  it('checks the flags and names the one that is wrong', () => {
    expect(() => checkDeployRequest({ ...base, memory: 64 })).toThrow(/--memory: expected an integer from 128 to 10240, received 64/);
    expect(() => checkDeployRequest({ ...base, timeout: 901 })).toThrow(/--timeout/);
    expect(() => checkDeployRequest({ ...base, arch: 'x86' as never })).toThrow(ConfigError);
    expect(() => checkDeployRequest({ ...base, functionName: 'has space' })).toThrow(/--function-name/);
    expect(() => checkDeployRequest({ ...base, snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:t', notifyEmail: 'a@b.c' })).toThrow(/not both/);
    expect(() => checkDeployRequest({ ...base, notifyEmail: 'nope' })).toThrow(/--notify-email/);
  });

  it('normalises prefixes to folders', () => {
    expect(normalizePrefix('uploads')).toBe('uploads/');
    expect(normalizePrefix('/uploads/')).toBe('uploads/');
    expect(normalizePrefix('')).toBe('');
  });
});

describe('the plan', () => {
  it('grants exactly what the handler needs, on its own resources only', () => {
    const plan = planDeploy(checkDeployRequest({ ...base, out: { bucket: 'my-processed', prefix: 'site/' }, snsTopicArn: 'arn:aws:sns:eu-west-1:123456789012:team' }), account);
    expect(plan.role.policy.Statement).toEqual([
      { Sid: 'ReadUploads', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::my-uploads/uploads/*' },
      // So a GET of a deleted key is a 404 (a stale event, skipped), not a 403 (a failure, retried).
      { Sid: 'KnowDeletedUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::my-uploads', Condition: { StringLike: { 's3:prefix': 'uploads/*' } } },
      { Sid: 'WriteOutputs', Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::my-processed/site/*' },
      { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ImageProcessor', 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ImageProcessor:*'] },
      { Sid: 'FailureQueue', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: 'arn:aws:sqs:eu-west-1:123456789012:ImageProcessor-failures' },
      { Sid: 'Notify', Effect: 'Allow', Action: 'sns:Publish', Resource: 'arn:aws:sns:eu-west-1:123456789012:team' },
    ]);
    expect(JSON.stringify(plan.role.policy)).not.toMatch(/FullAccess|"\*"|"[a-z0-9]+:\*"/);
    expect(plan.fn.environment).toEqual({ PROCESSED_BUCKET: 'my-processed', PROCESSED_PREFIX: 'site/', SOURCE_PREFIX: 'uploads/', SNS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:team' });
    expect(plan.topic).toEqual({ kind: 'existing', arn: 'arn:aws:sns:eu-west-1:123456789012:team' });
    expect(plan.fn).toMatchObject({ runtime: 'nodejs24.x', handler: 'index.handler', architecture: 'arm64', memory: 1024, timeout: 30 });
    expect(plan.testCommand).toBe('aws s3 cp photo.jpg s3://my-uploads/uploads/');
  });

  it('with the whole bucket as the trigger, s3:ListBucket on the bucket without a prefix condition', () => {
    const plan = planDeploy(checkDeployRequest({ ...base, prefix: '' }), account);
    expect(plan.role.policy.Statement.find((s) => s.Action === 's3:ListBucket')).toEqual({ Sid: 'KnowDeletedUploads', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::my-uploads' });
    expect(plan.role.policy.Statement.find((s) => s.Action === 's3:GetObject')?.Resource).toBe('arn:aws:s3:::my-uploads/*');
  });

  it('a * ? or $ in a prefix is a literal character in the role\'s policy, never an IAM wildcard', () => {
    // IAM reads * and ? in a Resource or a StringLike value as wildcards; ${*}, ${?} and ${$} stand for the
    // characters themselves (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
    const plan = planDeploy(checkDeployRequest({ ...base, prefix: 'a*?$/', out: { bucket: 'my-processed', prefix: 'o*/' } }), account);
    const statement = (sid: string) => plan.role.policy.Statement.find((s) => s.Sid === sid);
    expect(statement('ReadUploads')?.Resource).toBe('arn:aws:s3:::my-uploads/a${*}${?}${$}/*');
    expect(statement('KnowDeletedUploads')?.Condition).toEqual({ StringLike: { 's3:prefix': 'a${*}${?}${$}/*' } });
    expect(statement('WriteOutputs')?.Resource).toBe('arn:aws:s3:::my-processed/o${*}/*');
    expect(plan.fn.environment['SOURCE_PREFIX']).toBe('a*?$/');
  });

  it('without notifications, neither sns:Publish nor SNS_TOPIC_ARN', () => {
    const plan = planDeploy(checkDeployRequest(base), account);
    expect(JSON.stringify(plan.role.policy)).not.toContain('sns:');
    expect(plan.fn.environment).toEqual({ PROCESSED_BUCKET: 'my-processed', SOURCE_PREFIX: 'uploads/' });
  });

  it('compares policies whatever the key order and single-item arrays', () => {
    expect(samePolicy({ Version: '1', Statement: [{ Action: ['a'], Resource: 'r' }] }, { Statement: [{ Resource: ['r'], Action: 'a' }], Version: '1' })).toBe(true);
    expect(samePolicy({ Statement: [{ Action: 'a' }] }, { Statement: [{ Action: 'b' }] })).toBe(false);
  });
});

describe('bucket notifications', () => {
  const ours = { Id: 'img-pipeline-F', LambdaFunctionArn: 'arn:f', Events: ['s3:ObjectCreated:*' as const] };
  it('merge replaces its own entry by Id and keeps every other destination', () => {
    const current = { LambdaFunctionConfigurations: [{ ...ours, LambdaFunctionArn: 'arn:old' }, { Id: 'x', LambdaFunctionArn: 'arn:x', Events: [] }], TopicConfigurations: [{ Id: 't', TopicArn: 'arn:t', Events: [] }] };
    expect(mergeNotification(current, ours)).toEqual({ LambdaFunctionConfigurations: [{ Id: 'x', LambdaFunctionArn: 'arn:x', Events: [] }, ours], TopicConfigurations: [{ Id: 't', TopicArn: 'arn:t', Events: [] }] });
    expect(removeNotification(mergeNotification(current, ours), ours.Id)).toEqual({ LambdaFunctionConfigurations: [{ Id: 'x', LambdaFunctionArn: 'arn:x', Events: [] }], TopicConfigurations: [{ Id: 't', TopicArn: 'arn:t', Events: [] }] });
  });
});

describe('one-line errors', () => {
  beforeEach(() => resetMocks());

  it('AccessDenied names the action and the resource', () => {
    const error = explainAwsError(awsError('AccessDenied', 'User is not authorized', 403), 'iam:CreateRole', 'ImageProcessor-role');
    expect(error.message).toBe('access denied: iam:CreateRole on ImageProcessor-role; the deploying identity needs this permission (see "Permissions for the deploying user" in docs/lambda.md)');
    expect(explainAwsError(awsError('AccessDeniedException', 'x', 403), 'lambda:CreateFunction', 'F').code).toBe('ACCESS_DENIED');
  });

  it('a missing bucket and a bucket in another region are named before anything is created', async () => {
    mocks.s3.on(HeadBucketCommand, { Bucket: 'gone' }).rejects(awsError('NotFound', 'NotFound', 404));
    mocks.s3.on(HeadBucketCommand, { Bucket: 'far' }).rejects(awsError('301', 'Moved', 301, { 'x-amz-bucket-region': 'ap-southeast-2' }));
    mocks.s3.on(HeadBucketCommand, { Bucket: 'near-but-not' }).resolves({ BucketRegion: 'us-west-2' });
    const s3 = clients().s3;
    await expect(checkBucket(s3, 'gone', account, '--bucket')).rejects.toThrow('the bucket gone (--bucket) does not exist');
    await expect(checkBucket(s3, 'far', account, '--out')).rejects.toThrow('the bucket far (--out) is in ap-southeast-2, but the function would be in eu-west-1: run again with --region ap-southeast-2');
    await expect(checkBucket(s3, 'near-but-not', account, '--out')).rejects.toMatchObject({ code: 'WRONG_REGION' });
  });
});

describe('names of global resources', () => {
  it('are <function>-<region>-<suffix>, at most 64 characters, hashed when cut, and stable', () => {
    expect(regionalName('ImageProcessor', 'us-east-1', 'role')).toBe('ImageProcessor-us-east-1-role');
    const long = 'a'.repeat(64);
    const name = regionalName(long, 'ap-southeast-2', 'role');
    expect(name).toHaveLength(64);
    expect(name).toMatch(/^a+-[0-9a-f]{8}$/);
    expect(regionalName(long, 'ap-southeast-2', 'role')).toBe(name);
    expect(regionalName(long, 'ap-southeast-1', 'role')).not.toBe(name);
    expect(regionalName(long, 'ap-southeast-2', 'batch-role')).not.toBe(name);
  });

  it('the plan puts them in the role and the destroy names', () => {
    expect(resourceNames('ImageProcessor', 'eu-west-1').role).toBe('ImageProcessor-eu-west-1-role');
    expect(planDeploy(checkDeployRequest(base), account).role.name).toBe('ImageProcessor-eu-west-1-role');
  });
});

describe('the notification filter', () => {
  it.each([
    ['camera roll/', 'camera+roll/'],
    ['uploads/', 'uploads/'],
    ['a+b/', 'a%2Bb/'],
    ['fotos/año 2026/', 'fotos/a%C3%B1o+2026/'],
    ["it's (1)/", 'it%27s+%281%29/'],
  ])('%s is sent as %s', (raw, encoded) => {
    expect(encodeFilterValue(raw)).toBe(encoded);
  });
});

describe('KMS findings in the plan', () => {
  it('an unknown key gives a warning and no statement; a known key a statement and no warning', () => {
    const unknown = planDeploy(checkDeployRequest(base), account, { source: { kind: 'unknown', why: 'denied' }, output: { kind: 'none' }, topic: { kind: 'none' } });
    expect(JSON.stringify(unknown.role.policy)).not.toContain('kms:');
    expect(unknown.warnings).toHaveLength(1);
    const known = planDeploy(checkDeployRequest(base), account, { source: { kind: 'none' }, output: { kind: 'kms', keyArn: 'arn:aws:kms:eu-west-1:123456789012:key/k' }, topic: { kind: 'none' } });
    expect(known.warnings).toEqual([]);
    expect(known.role.policy.Statement.at(-1)).toEqual({ Sid: 'EncryptOutputs', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: 'arn:aws:kms:eu-west-1:123456789012:key/k' });
  });

  it('keys named by alias: aws/s3 needs nothing, another alias cannot be resolved without kms:DescribeKey', () => {
    const where = { partition: 'aws', region: 'eu-west-1', accountId: '123456789012' };
    expect(keyFinding('alias/aws/s3', where, 'alias/aws/s3')).toEqual({ kind: 'none' });
    expect(keyFinding('arn:aws:kms:eu-west-1:123456789012:alias/photos', where, 'alias/aws/s3')).toMatchObject({ kind: 'unknown', keyId: 'arn:aws:kms:eu-west-1:123456789012:alias/photos' });
    expect(keyFinding('1234abcd-12ab', where, 'alias/aws/s3')).toEqual({ kind: 'kms', keyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab' });
  });
});
