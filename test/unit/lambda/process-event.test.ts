import { GetObjectCommand, NoSuchKey, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { notificationFor } from '../../../src/lambda/notify.js';
import { createEventHandler } from '../../../src/lambda/process-event.js';
import { loadBundledConfig, readLambdaSettings } from '../../../src/lambda/settings.js';
import { validateConfig } from '../../../src/config/load.js';
import type { Sink } from '../../../src/storage/types.js';
import { fixture } from '../../helpers/paths.js';
import { handlerDeps } from './handler-deps.js';

const s3Mock = mockClient(S3Client);
const snsMock = mockClient(SNSClient);

const deps = (lines: string[]) => handlerDeps(lines, { PROCESSED_BUCKET: 'out', PROCESSED_PREFIX: 'site', SOURCE_PREFIX: 'uploads', SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:1:t' });

const record = (bucket: string, key: string, size: number) => ({ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key, size } } });

beforeEach(() => {
  s3Mock.reset();
  snsMock.reset();
});

describe('the handler body', () => {
  it('ignores outputs, non-images, keys outside SOURCE_PREFIX; skips empties and folder markers; all without S3 calls', async () => {
    const lines: string[] = [];
    const summary = await createEventHandler(deps(lines))({ Records: [
      record('out', 'site/thumb/a.jpg', 10),
      record('in', 'uploads/readme.txt', 10),
      record('in', 'elsewhere/a.jpg', 10),
      record('in', 'uploads/empty.jpg', 0),
      record('in', 'uploads/folder/', 0),
    ] });
    expect(summary.records.map((r) => r.status)).toEqual(['ignored', 'ignored', 'ignored', 'skipped', 'skipped']);
    expect(s3Mock.calls()).toHaveLength(0);
    expect(snsMock.calls()).toHaveLength(0);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => l['key'])).toEqual(['site/thumb/a.jpg', 'uploads/readme.txt', 'elsewhere/a.jpg', 'uploads/empty.jpg', 'uploads/folder/']);
  });

  it('reports an object over the size limit without downloading it, notifies, and throws naming the key', async () => {
    snsMock.on(PublishCommand).resolves({ MessageId: '1' });
    const lines: string[] = [];
    const run = createEventHandler(deps(lines))({ Records: [record('in', 'uploads/huge.jpg', 60 * 1024 * 1024)] });
    await expect(run).rejects.toThrow(/1 of 1 records failed: s3:\/\/in\/uploads\/huge\.jpg \(file is 62914560 bytes, over the limit/);
    expect(s3Mock.calls()).toHaveLength(0);
    const published = snsMock.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(published.TopicArn).toBe('arn:aws:sns:us-east-1:1:t');
    expect(JSON.parse(published.Message!)).toMatchObject({ tool: 'img-pipeline', status: 'failed', source: { bucket: 'in', key: 'uploads/huge.jpg' }, outputs: [], code: 'INPUT_TOO_LARGE' });
    expect(published.MessageAttributes?.['status']?.StringValue).toBe('failed');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', status: 'failed', key: 'uploads/huge.jpg', code: 'INPUT_TOO_LARGE' });
  });

  // With s3:ListBucket (which deploy grants on the trigger prefix), S3 answers 404 for a key deleted
  // since the event; If-Match with the event's ETag answers 412 for an object overwritten since.
  const stale = (name: string, status: number) => new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
  const withEtag = (key: string) => ({ ...record('in', key, 1000), s3: { bucket: { name: 'in' }, object: { key, size: 1000, eTag: '0123456789abcdef0123456789abcdef' } } });

  it.each([
    ['overwritten since the event (412 PreconditionFailed)', stale('PreconditionFailed', 412), /changed after this event/],
    ['deleted since the event (404 NoSuchKey)', new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }), /deleted after this event/],
  ])('skips an object %s: no failure, no retry, no notification', async (_case, error, reason) => {
    s3Mock.on(GetObjectCommand).rejects(error);
    const lines: string[] = [];
    const summary = await createEventHandler(deps(lines))({ Records: [withEtag('uploads/photo.jpg')] });
    expect(summary).toMatchObject({ skipped: 1, failed: 0 });
    expect(summary.records[0]).toMatchObject({ status: 'skipped', reason: expect.stringMatching(reason) });
    // The event's bare ETag is quoted for If-Match, as S3 wants it.
    expect(s3Mock.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'in', Key: 'uploads/photo.jpg', IfMatch: '"0123456789abcdef0123456789abcdef"' });
    expect(snsMock.calls()).toHaveLength(0);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', status: 'skipped', key: 'uploads/photo.jpg' });
  });

  it('a 403 AccessDenied is a failure, retried by Lambda: without s3:ListBucket a deleted key looks like this', async () => {
    s3Mock.on(GetObjectCommand).rejects(stale('AccessDenied', 403));
    snsMock.on(PublishCommand).resolves({ MessageId: '1' });
    await expect(createEventHandler(deps([]))({ Records: [withEtag('uploads/photo.jpg')] })).rejects.toThrow(/1 of 1 records failed: s3:\/\/in\/uploads\/photo\.jpg \(s3:\/\/in\/uploads\/photo\.jpg is missing, or not readable by the function's role/);
    // Whether a prefix-conditioned ListBucket turns it into a 404 is undocumented: the message says both.
    const message = JSON.parse(String(snsMock.commandCalls(PublishCommand)[0]!.args[0].input.Message)) as { code: string };
    expect(message.code).toBe('S3_SOURCE_UNREADABLE');
  });

  it('publishes only processed and failed records', () => {
    const base = { bucket: 'b', key: 'k', outputs: [], bytes: 0, ms: 1 };
    expect(notificationFor({ ...base, status: 'skipped' })).toBeUndefined();
    expect(notificationFor({ ...base, status: 'ignored' })).toBeUndefined();
    expect(notificationFor({ ...base, status: 'failed', error: 'bad' })).toEqual({ tool: 'img-pipeline', status: 'failed', source: { bucket: 'b', key: 'k' }, outputs: [], error: 'bad' });
  });
});

describe('the Lambda settings', () => {
  it('needs PROCESSED_BUCKET and normalises the prefixes', () => {
    expect(() => readLambdaSettings({})).toThrow(/PROCESSED_BUCKET is not set/);
    expect(readLambdaSettings({ PROCESSED_BUCKET: 'out', PROCESSED_PREFIX: 'site', SOURCE_PREFIX: '' })).toEqual({ processedBucket: 'out', processedPrefix: 'site/', sourcePrefix: '', snsTopicArn: undefined, watermarkText: undefined });
  });

  // config.json as deploy writes it: the schema's output, every default filled in.
  const bundled = JSON.stringify(validateConfig({ concurrency: 1, quality: 70, watermark: { image: 'watermark/logo.png', position: 'top-left', opacity: 0.4 } }, 'test'));

  it('takes the bundled config as deploy stored it, the watermark image in the unpacked zip', async () => {
    const config = await loadBundledConfig(bundled, { root: '/var/task' });
    expect(config).toEqual({ ...JSON.parse(bundled), watermark: { ...JSON.parse(bundled).watermark, image: '/var/task/watermark/logo.png' } });
    await expect(loadBundledConfig('{"quality":', { root: '/' })).rejects.toThrow(/bundled config\.json is not valid JSON/);
  });

  it('WATERMARK_TEXT replaces the bundled watermark and keeps its placement; the schema still applies', async () => {
    const config = await loadBundledConfig(bundled, { root: '/var/task', watermarkText: '© Other' });
    expect(config.watermark).toMatchObject({ text: '© Other', position: 'top-left', opacity: 0.4 });
    expect(config.watermark?.image).toBeUndefined();
    expect(config.quality).toBe(70);
    await expect(loadBundledConfig(bundled, { root: '/', watermarkText: 'x'.repeat(201) })).rejects.toThrow(/bundled config\.json with WATERMARK_TEXT[\s\S]*watermark\.text/);
  });

  describe('publishes while the outputs upload', () => {
    /** A sink whose writes wait for the SNS publish to have been sent (or give up after 3 s), then do `then`. */
    function waitingSink(then: () => void): { sink: Sink; order: string[] } {
      const order: string[] = [];
      let published!: () => void;
      const publishedNow = new Promise<void>((done) => (published = done));
      snsMock.on(PublishCommand).callsFake(() => {
        order.push('publish');
        published();
        return { MessageId: '1' };
      });
      const waiting: Sink = {
        ...deps([]).sink,
        write: async (key) => {
          order.push(`put ${key}`);
          const timeout = new Promise((_, fail) => setTimeout(() => fail(new Error('published only after the uploads')), 3000).unref());
          await Promise.race([publishedNow, timeout]);
          then();
        },
      };
      return { sink: waiting, order };
    }
    const photo = async () => {
      const jpeg = await readFile(fixture('cases/grey.jpg'));
      s3Mock.on(GetObjectCommand).callsFake(() => ({ Body: Readable.from([jpeg]), ContentLength: jpeg.length }));
      return jpeg;
    };

    it('sends the "processed" message while the PUTs are in flight, once', async () => {
      const jpeg = await photo();
      const { sink: waiting, order } = waitingSink(() => undefined);
      const summary = await createEventHandler({ ...deps([]), sink: waiting })({ Records: [record('in', 'uploads/a.jpg', jpeg.length)] });
      expect(summary.processed).toBe(1);
      expect(order.slice(0, 2).sort()).toEqual(['publish', 'put thumb/a.jpg']);
      const calls = snsMock.commandCalls(PublishCommand);
      expect(calls).toHaveLength(1);
      expect(JSON.parse(calls[0]!.args[0].input.Message!)).toMatchObject({ status: 'processed', outputs: [{ key: 'site/thumb/a.jpg' }, { key: 'site/medium/a.jpg' }] });
    });

    it('follows with a "failed" message, and fails the invocation, when an upload fails after the publish', async () => {
      const jpeg = await photo();
      const { sink: failing } = waitingSink(() => {
        throw new Error('the PUT broke');
      });
      const run = createEventHandler({ ...deps([]), sink: failing })({ Records: [record('in', 'uploads/a.jpg', jpeg.length)] });
      await expect(run).rejects.toThrow('img-pipeline: 1 of 1 records failed: s3://in/uploads/a.jpg');
      const statuses = snsMock.commandCalls(PublishCommand).map((c) => (JSON.parse(c.args[0].input.Message!) as { status: string }).status);
      expect(statuses).toEqual(['processed', 'failed']);
    });
  });
});
