import { describe, expect, it } from 'vitest';
import { decodeS3Key, parseEvent } from '../../../src/lambda/parse-event.js';

function record(key: string, eventName = 'ObjectCreated:Put', bucket = 'uploads') {
  return { eventSource: 'aws:s3', eventName, s3: { bucket: { name: bucket }, object: { key, size: 10, eTag: 'abc' } } };
}

describe('parseEvent', () => {
  it('reads several S3 records, URL-decoding keys with + as a space', () => {
    const parsed = parseEvent({ Records: [record('uploads/my+photo%2B1.jpg'), record('uploads/caf%C3%A9.png'), record('uploads/a%2Fb.jpg')] });
    expect(parsed.objects.map((o) => o.key)).toEqual(['uploads/my photo+1.jpg', 'uploads/café.png', 'uploads/a/b.jpg']);
    expect(parsed.objects[0]).toEqual({ bucket: 'uploads', key: 'uploads/my photo+1.jpg', size: 10, etag: 'abc', via: 's3' });
  });

  it('skips records that are not object creations, and S3\'s test event', () => {
    expect(parseEvent({ Records: [record('a.jpg', 'ObjectRemoved:Delete')] })).toEqual({ objects: [], ignored: ['ObjectRemoved:Delete for a.jpg: not an object creation'] });
    expect(parseEvent({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'uploads' }).ignored).toEqual(['s3:TestEvent']);
  });

  it('unwraps SNS messages and SQS bodies, including SNS delivered to SQS', () => {
    const s3Event = { Records: [record('uploads/x.jpg')] };
    const viaSns = parseEvent({ Records: [{ EventSource: 'aws:sns', Sns: { Message: JSON.stringify(s3Event) } }] });
    expect(viaSns.objects).toMatchObject([{ key: 'uploads/x.jpg', via: 'sns' }]);
    const viaSqs = parseEvent({ Records: [{ eventSource: 'aws:sqs', body: JSON.stringify(s3Event) }, { eventSource: 'aws:sqs', body: JSON.stringify(s3Event) }] });
    expect(viaSqs.objects).toHaveLength(2);
    expect(viaSqs.objects[0]!.via).toBe('sqs');
    const snsToSqs = parseEvent({ Records: [{ eventSource: 'aws:sqs', body: JSON.stringify({ Type: 'Notification', Message: JSON.stringify(s3Event) }) }] });
    expect(snsToSqs.objects).toMatchObject([{ key: 'uploads/x.jpg', via: 'sqs' }]);
  });

  it('reads EventBridge "Object Created", whose keys are not encoded', () => {
    const parsed = parseEvent({ 'detail-type': 'Object Created', source: 'aws.s3', detail: { bucket: { name: 'uploads' }, object: { key: 'uploads/a b+c.jpg', size: 5, etag: 'e' } } });
    expect(parsed.objects).toEqual([{ bucket: 'uploads', key: 'uploads/a b+c.jpg', size: 5, etag: 'e', via: 'eventbridge' }]);
    expect(parseEvent({ 'detail-type': 'Object Deleted', source: 'aws.s3', detail: {} }).objects).toEqual([]);
  });

  it('never throws on junk', () => {
    expect(parseEvent(null).ignored).toHaveLength(1);
    expect(parseEvent({ Records: [1, { eventSource: 'aws:sqs', body: 'not json' }] }).ignored).toHaveLength(2);
    expect(decodeS3Key('bad%E0%A4%A')).toBe('bad%E0%A4%A');
  });
});
