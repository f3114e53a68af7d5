// The SNS half of notify.ts, in a module of its own: the handler imports it (and the SNS client with it)
// only when SNS_TOPIC_ARN is set, so a function without a topic never loads or compiles that SDK client.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { subjectFor, type NotificationMessage } from './notify.js';

/** An SNS client for `topicArn`'s region: a topic in another region is published to through that region's endpoint. */
export function createSnsClient(topicArn: string): SNSClient {
  return new SNSClient({ region: topicArn.split(':')[3] || undefined });
}

/** Publishes one message; `status` is also a message attribute, so subscriptions can filter on it. */
export async function publishNotification(sns: SNSClient, topicArn: string, message: NotificationMessage): Promise<void> {
  await sns.send(new PublishCommand({
    TopicArn: topicArn,
    Subject: subjectFor(message),
    Message: JSON.stringify(message),
    MessageAttributes: { status: { DataType: 'String', StringValue: message.status } },
  }));
}
