import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SubscribeCommand,
  type SNSClient,
  type Subscription,
} from '@aws-sdk/client-sns';
import { DeployError } from '../errors.js';
import { attempt, must, type StepOptions, type StepResult } from './aws.js';
import type { DeployPlan } from './plan.js';

export const TOPIC_MISSING = ['NotFoundException', 'NotFound', 'ResourceNotFoundException'];

async function listSubscriptions(sns: SNSClient, topicArn: string): Promise<Subscription[]> {
  const all: Subscription[] = [];
  let token: string | undefined;
  do {
    const page = await must('sns:ListSubscriptionsByTopic', topicArn, () => sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: token })));
    all.push(...(page.Subscriptions ?? []));
    token = page.NextToken;
  } while (token);
  return all;
}

/**
 * Step: where the handler publishes one JSON message per image. With --sns-topic the topic must exist and
 * is only used; with --notify-email a topic is created (tagged, so destroy removes it) and the address
 * subscribed. Returns no result when notifications are off.
 */
export async function ensureNotifications(sns: SNSClient, plan: DeployPlan, options: StepOptions): Promise<StepResult[]> {
  const { topic } = plan;
  if (topic.kind === 'none') return [];
  const exists = await attempt('sns:GetTopicAttributes', topic.arn, () => sns.send(new GetTopicAttributesCommand({ TopicArn: topic.arn })), TOPIC_MISSING);
  if (topic.kind === 'existing') {
    if (!exists) throw new DeployError('TOPIC_NOT_FOUND', `the SNS topic ${topic.arn} (--sns-topic) does not exist or is in another account or region`);
    return [{ resource: 'SNS topic', name: topic.arn, status: 'unchanged', detail: 'existing topic, used as given' }];
  }
  const results: StepResult[] = [];
  if (exists) {
    results.push({ resource: 'SNS topic', name: topic.name, status: 'unchanged' });
  } else if (options.dryRun) {
    results.push({ resource: 'SNS topic', name: topic.name, status: 'would create' });
  } else {
    await must('sns:CreateTopic', topic.name, () =>
      sns.send(new CreateTopicCommand({ Name: topic.name, Tags: Object.entries(plan.tags).map(([Key, Value]) => ({ Key, Value })) })));
    results.push({ resource: 'SNS topic', name: topic.name, status: 'created' });
  }
  const subscription = { resource: 'email subscription', name: topic.email };
  const subscribed = exists ? (await listSubscriptions(sns, topic.arn)).some((s) => s.Protocol === 'email' && s.Endpoint?.toLowerCase() === topic.email.toLowerCase()) : false;
  if (subscribed) {
    results.push({ ...subscription, status: 'unchanged' });
  } else if (options.dryRun) {
    results.push({ ...subscription, status: 'would create' });
  } else {
    await must('sns:Subscribe', topic.arn, () => sns.send(new SubscribeCommand({ TopicArn: topic.arn, Protocol: 'email', Endpoint: topic.email })));
    results.push({ ...subscription, status: 'created', detail: `confirm the link AWS emailed to ${topic.email}` });
  }
  return results;
}
