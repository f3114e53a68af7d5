import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTagsForResourceCommand,
  SubscribeCommand,
  type SNSClient,
  type Subscription,
} from '@aws-sdk/client-sns';
import { DeployError } from '../errors.js';
import { attempt, MISSING, must, stepResult, tagList, tagMap, type AwsClients, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import { isOwnedBy, OWNER_TAG, type DeployPlan } from './plan.js';

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

/** The region an SNS topic ARN names: arn:aws:sns:<region>:<account>:<name>. */
function topicRegion(arn: string): string {
  return arn.split(':')[3] ?? '';
}

/**
 * The notification steps, as a plan shows them and as they report: none when notifications are off; the
 * topic as given with --sns-topic (deploy never creates or changes it); or a topic and an email subscription.
 */
export function describeNotifications(plan: DeployPlan): { topic: StepTarget; subscription?: StepTarget } | undefined {
  const { topic } = plan;
  if (topic.kind === 'none') return undefined;
  if (topic.kind === 'existing') return { topic: { resource: 'SNS topic', name: topic.arn, detail: 'existing topic, used as given', arn: topic.arn, settings: { existing: true } } };
  return {
    topic: { resource: 'SNS topic', name: topic.name, arn: topic.arn, settings: { tags: plan.tags } },
    subscription: { resource: 'email subscription', name: topic.email, arn: topic.arn, settings: { Protocol: 'email', Endpoint: topic.email } },
  };
}

/**
 * Step: where the handler publishes one JSON message per image. With --sns-topic the topic must exist and
 * is only used (asked in its own region); with --notify-email a topic is created (tagged, so destroy
 * removes it) and the address subscribed. Returns no result when notifications are off.
 */
export async function ensureNotifications(clients: Pick<AwsClients, 'sns' | 'snsIn'>, plan: DeployPlan, options: StepOptions): Promise<StepResult[]> {
  const { topic } = plan;
  const targets = describeNotifications(plan);
  if (topic.kind === 'none' || !targets) return [];
  if (topic.kind === 'existing') {
    const region = topicRegion(topic.arn);
    const sns = region === plan.account.region ? clients.sns : clients.snsIn(region);
    const exists = await attempt('sns:GetTopicAttributes', topic.arn, () => sns.send(new GetTopicAttributesCommand({ TopicArn: topic.arn })), MISSING.sns);
    if (!exists) throw new DeployError('TOPIC_NOT_FOUND', `the SNS topic ${topic.arn} (--sns-topic) does not exist, or is in another account`);
    return [stepResult(targets.topic, 'unchanged')];
  }
  const { sns } = clients;
  const exists = await attempt('sns:GetTopicAttributes', topic.arn, () => sns.send(new GetTopicAttributesCommand({ TopicArn: topic.arn })), MISSING.sns);
  const results: StepResult[] = [];
  if (exists) {
    const tags = await must('sns:ListTagsForResource', topic.arn, () => sns.send(new ListTagsForResourceCommand({ ResourceArn: topic.arn })));
    if (!isOwnedBy(tagMap(tags.Tags), plan.fn.name)) {
      throw new DeployError('NOT_OURS', `the SNS topic ${topic.arn} exists but was not created by img-pipeline deploy (no ${OWNER_TAG}=${plan.fn.name} tag); choose another --function-name, or pass it with --sns-topic to publish to it as it is`);
    }
    results.push(stepResult(targets.topic, 'unchanged'));
  } else if (options.dryRun) {
    results.push(stepResult(targets.topic, 'would create'));
  } else {
    await must('sns:CreateTopic', topic.name, () => sns.send(new CreateTopicCommand({ Name: topic.name, Tags: tagList(plan.tags) })));
    results.push(stepResult(targets.topic, 'created'));
  }
  const subscription = targets.subscription!;
  const subscribed = exists ? (await listSubscriptions(sns, topic.arn)).some((s) => s.Protocol === 'email' && s.Endpoint?.toLowerCase() === topic.email.toLowerCase()) : false;
  if (subscribed) {
    results.push(stepResult(subscription, 'unchanged'));
  } else if (options.dryRun) {
    results.push(stepResult(subscription, 'would create'));
  } else {
    await must('sns:Subscribe', topic.arn, () => sns.send(new SubscribeCommand({ TopicArn: topic.arn, Protocol: 'email', Endpoint: topic.email })));
    results.push(stepResult(subscription, 'created', `confirm the link AWS emailed to ${topic.email}`));
  }
  return results;
}
