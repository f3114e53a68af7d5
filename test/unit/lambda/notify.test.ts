import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SUBJECT_MAX, subjectFor, type NotificationMessage } from '../../../src/lambda/notify.js';
import { publishNotification } from '../../../src/lambda/publish.js';

const sns = mockClient(SNSClient);

/**
 * SNS as it answers a Subject that is not "ASCII text ... less than 100 characters long"
 * (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): InvalidParameter, "Invalid parameter:
 * Subject" (https://github.com/getmoto/moto/issues/1276, https://github.com/panther-labs/panther/issues/1947).
 */
function snsChecksSubjects(): void {
  sns.on(PublishCommand).callsFake((input: { Subject?: string }) => {
    const subject = input.Subject ?? '';
    if (subject.length >= 100 || /[^\x20-\x7e]/.test(subject)) {
      throw Object.assign(new Error('Invalid parameter: Subject'), { name: 'InvalidParameterException', Code: 'InvalidParameter', $metadata: { httpStatusCode: 400 } });
    }
    return { MessageId: 'm' };
  });
}

const message = (key: string): NotificationMessage => ({ tool: 'img-pipeline', status: 'processed', source: { bucket: 'b', key }, outputs: [] });

beforeEach(() => sns.reset());

describe('SNS subjects', () => {
  it('a long file name is cut to fewer than 100 characters, and the Publish succeeds', async () => {
    snsChecksSubjects();
    // "img-pipeline: processed " is 24 characters: 76 more make exactly 100, the length SNS refuses.
    for (const length of [74, 75, 76, 77, 200]) {
      await publishNotification(new SNSClient({ region: 'us-east-1' }), 'arn:aws:sns:us-east-1:123456789012:t', message(`photos/${'x'.repeat(length - 4)}.jpg`));
    }
    const subjects = sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Subject!);
    expect(subjects.map((s) => s.length)).toEqual([98, 99, 99, 99, 99]);
    expect(subjects[4]).toMatch(/\.\.\.$/);
  });

  it('counts code points: an emoji is one "?", not two, and the cap still holds', () => {
    expect(subjectFor(message('📷 beach.jpg'))).toBe('img-pipeline: processed ? beach.jpg');
    expect(subjectFor(message(`${'😀'.repeat(120)}.jpg`)).length).toBe(SUBJECT_MAX);
  });
});
