// S3 Batch Operations events and answers, as documented in
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html (schema 1.0 and 2.0,
// response with invocationSchemaVersion, treatMissingKeysAs, invocationId and one result per task).
import { HeadObjectCommand, NotFound, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { batchResultOf } from '../../../src/lambda/batch-result.js';
import type { RecordResult } from '../../../src/lambda/notify.js';
import { parseBatchEvent } from '../../../src/lambda/parse-event.js';
import { createLambdaHandler } from '../../../src/lambda/process-event.js';
import { handlerDeps } from './handler-deps.js';

const s3Mock = mockClient(S3Client);
const snsMock = mockClient(SNSClient);

const deps = (lines: string[]) => handlerDeps(lines, { PROCESSED_BUCKET: 'out', SOURCE_PREFIX: 'uploads', SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:1:t' });

const v2 = (tasks: { taskId: string; s3Key: string }[], userArguments: Record<string, string> = {}) => ({
  invocationSchemaVersion: '2.0',
  invocationId: 'YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo',
  job: { id: 'f3cc4f60-61f6-4a2b-8a21-d07600c373ce', userArguments },
  tasks: tasks.map((t) => ({ ...t, s3Bucket: 'in', s3VersionId: null })),
});

beforeEach(() => {
  s3Mock.reset();
  snsMock.reset();
});

describe('parseBatchEvent', () => {
  it('reads schema 1.0 (bucket ARN, no user arguments) and decodes the URL-encoded key', () => {
    const event = {
      invocationSchemaVersion: '1.0',
      invocationId: 'YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo',
      job: { id: 'f3cc4f60-61f6-4a2b-8a21-d07600c373ce' },
      tasks: [{ taskId: 'dGFza2lkZ29lc2hlcmUK', s3Key: 'uploads/a%20b%2Bc%25%2C%C3%A9.jpg', s3VersionId: '1', s3BucketArn: 'arn:aws:s3:::amzn-s3-demo-bucket' }],
    };
    expect(parseBatchEvent(event)).toEqual({
      schema: '1.0',
      invocationId: event.invocationId,
      jobId: 'f3cc4f60-61f6-4a2b-8a21-d07600c373ce',
      userArguments: {},
      tasks: [{ taskId: 'dGFza2lkZ29lc2hlcmUK', object: { bucket: 'amzn-s3-demo-bucket', key: 'uploads/a b+c%,é.jpg', size: undefined, etag: undefined, via: 'batch' } }],
    });
  });

  it('reads schema 2.0 (bucket name, user arguments); S3 events are not Batch events', () => {
    const parsed = parseBatchEvent(v2([{ taskId: 't1', s3Key: 'uploads/x.jpg' }], { notify: 'true' }));
    expect(parsed).toMatchObject({ schema: '2.0', userArguments: { notify: 'true' }, tasks: [{ taskId: 't1', object: { bucket: 'in', key: 'uploads/x.jpg' } }] });
    expect(parseBatchEvent({ Records: [] })).toBeUndefined();
    expect(parseBatchEvent({ invocationSchemaVersion: '3.0', invocationId: 'x', tasks: [] })).toBeUndefined();
  });
});

describe('batchResultOf: the result code of a record', () => {
  const base: RecordResult = { status: 'processed', bucket: 'in', key: 'uploads/a.jpg', outputs: [], bytes: 1, ms: 1 };
  it.each([
    ['processed', { status: 'processed' }, 'Succeeded'],
    ['a folder marker', { status: 'skipped', reason: 'folder marker' }, 'Succeeded'],
    ['throttled after every retry', { status: 'failed', code: 'S3_THROTTLED', error: 'SlowDown' }, 'TemporaryFailure'],
    ['an endpoint that did not answer', { status: 'failed', code: 'S3_UNREACHABLE', error: 'timed out' }, 'TemporaryFailure'],
    ['a 5xx', { status: 'failed', code: 'S3_REQUEST_FAILED', error: 'InternalError (HTTP 500): s3:GetObject on s3://in/a failed' }, 'TemporaryFailure'],
    ['a 4xx', { status: 'failed', code: 'S3_REQUEST_FAILED', error: 'InvalidRequest (HTTP 400): s3:GetObject on s3://in/a failed' }, 'PermanentFailure'],
    ['a corrupt image', { status: 'failed', code: 'INPUT_CORRUPT', error: 'not a JPEG' }, 'PermanentFailure'],
    ['a refused SVG', { status: 'failed', code: 'INPUT_REFUSED', error: 'SVG refused' }, 'PermanentFailure'],
    ['a key deleted since the manifest', { status: 'skipped', code: 'S3_NO_SUCH_KEY', reason: 'the object was deleted after this event' }, 'PermanentFailure'],
    ['access denied', { status: 'failed', code: 'S3_ACCESS_DENIED', error: 'AccessDenied' }, 'PermanentFailure'],
    ['a key outside SOURCE_PREFIX', { status: 'ignored', reason: 'outside SOURCE_PREFIX uploads/' }, 'PermanentFailure'],
  ] as const)('%s: %s', (_case, fields, code) => {
    const result = batchResultOf({ ...base, ...fields });
    expect(result.resultCode).toBe(code);
    if (code !== 'Succeeded') expect(result.resultString).toMatch(/^[A-Z0-9_]+: /);
  });
});

describe('the handler, on a Batch event', () => {
  const denied = new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' });

  it('answers every task (never throws), with the same invocationId and schema, and sends no notification', async () => {
    s3Mock.on(HeadObjectCommand, { Key: 'uploads/gone.jpg' }).rejects(new NotFound({ message: 'NotFound', $metadata: { httpStatusCode: 404 } }));
    s3Mock.on(HeadObjectCommand, { Key: 'uploads/busy.jpg' }).rejects(denied);
    const lines: string[] = [];
    const event = v2([{ taskId: 't1', s3Key: 'uploads/gone.jpg' }, { taskId: 't2', s3Key: 'uploads/busy.jpg' }, { taskId: 't3', s3Key: 'elsewhere/x.jpg' }, { taskId: 't4', s3Key: 'uploads/readme.txt' }]);
    const response = await createLambdaHandler(deps(lines))(event);
    expect(response).toEqual({
      invocationSchemaVersion: '2.0',
      treatMissingKeysAs: 'PermanentFailure',
      invocationId: event.invocationId,
      results: [
        { taskId: 't1', resultCode: 'PermanentFailure', resultString: expect.stringMatching(/^S3_NO_SUCH_KEY: /) },
        { taskId: 't2', resultCode: 'TemporaryFailure', resultString: expect.stringMatching(/^S3_THROTTLED: /) },
        { taskId: 't3', resultCode: 'PermanentFailure', resultString: 'NOT_PROCESSED: outside SOURCE_PREFIX uploads/' },
        { taskId: 't4', resultCode: 'PermanentFailure', resultString: 'NOT_PROCESSED: not an image (by extension)' },
      ],
    });
    expect(snsMock.calls()).toHaveLength(0);
    expect(lines.map((l) => (JSON.parse(l) as { via: string }).via)).toEqual(['batch', 'batch', 'batch', 'batch']);
  });

  it('fails the invocation, naming the version, for a Batch event of a schema it does not know', async () => {
    // Batch Operations documents schemas 1.0 and 2.0 only, and not what it makes of an answer in another
    // shape: an S3-event summary would pass for a success. A thrown error is a function error, which Batch
    // records against the tasks. https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html
    const lines: string[] = [];
    const event = { ...v2([{ taskId: 't1', s3Key: 'uploads/x.jpg' }]), invocationSchemaVersion: '3.0' };
    await expect(createLambdaHandler(deps(lines))(event)).rejects.toMatchObject({ code: 'BATCH_SCHEMA_UNSUPPORTED', message: expect.stringMatching(/invocationSchemaVersion "3\.0".*1\.0 or 2\.0/) });
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([expect.objectContaining({ level: 'error', code: 'BATCH_SCHEMA_UNSUPPORTED' })]);
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('notifies per task only when the job passed notify=true', async () => {
    s3Mock.on(HeadObjectCommand).rejects(denied);
    snsMock.on(PublishCommand).resolves({ MessageId: '1' });
    await createLambdaHandler(deps([]))(v2([{ taskId: 't1', s3Key: 'uploads/busy.jpg' }], { notify: 'true' }));
    expect(snsMock.commandCalls(PublishCommand)).toHaveLength(1);
  });
});
