import { GetBucketEncryptionCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetTopicAttributesCommand } from '@aws-sdk/client-sns';
import { awsErrorName, explainAwsError, httpStatusOf, type AwsClients } from './aws.js';
import type { Account, DeployRequest, EncryptionFindings, KeyFinding } from './plan.js';

/** The region an ARN names: arn:<partition>:<service>:<region>:... */
function arnRegion(arn: string): string {
  return arn.split(':')[3] ?? '';
}

/**
 * A key as S3 or SNS name it (key ID, key ARN, alias name or alias ARN) as a finding: an AWS managed
 * key (aws/s3, aws/sns) needs no grant; a key ID becomes its ARN in the resource's region and account;
 * another alias cannot become a key ARN without kms:DescribeKey, so deploy says what to add.
 */
export function keyFinding(keyId: string | undefined, where: { partition: string; region: string; accountId: string }, managedAlias: string): KeyFinding {
  if (!keyId) return { kind: 'none' };
  const alias = /^(?:arn:[^:]+:kms:[^:]*:\d*:)?(alias\/.+)$/.exec(keyId)?.[1];
  if (alias === managedAlias) return { kind: 'none' };
  if (alias) return { kind: 'unknown', why: `it names the KMS key by its alias ${alias}, which deploy does not resolve (aws kms describe-key --key-id ${alias} gives the key ARN)`, keyId };
  if (keyId.startsWith('arn:')) return { kind: 'kms', keyArn: keyId };
  return { kind: 'kms', keyArn: `arn:${where.partition}:kms:${where.region}:${where.accountId}:key/${keyId}` };
}

/**
 * A bucket's default encryption. No configuration (ServerSideEncryptionConfigurationNotFoundError, from
 * before 2023, when SSE-S3 became the default) or SSE-S3 needs nothing; aws:kms without a key ID is the
 * AWS managed key aws/s3. Unreadable (AccessDenied) is unknown, and deploy warns.
 */
async function bucketKey(s3: S3Client, bucket: string, account: Account): Promise<KeyFinding> {
  try {
    const answer = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket, ExpectedBucketOwner: account.accountId }));
    const rule = answer.ServerSideEncryptionConfiguration?.Rules?.find((r) => r.ApplyServerSideEncryptionByDefault)?.ApplyServerSideEncryptionByDefault;
    if (!rule || !rule.SSEAlgorithm?.startsWith('aws:kms')) return { kind: 'none' };
    return keyFinding(rule.KMSMasterKeyID, account, 'alias/aws/s3');
  } catch (error) {
    if (awsErrorName(error) === 'ServerSideEncryptionConfigurationNotFoundError') return { kind: 'none' };
    if (httpStatusOf(error) === 403 || awsErrorName(error) === 'AccessDenied') {
      return { kind: 'unknown', why: 'deploy may not read it (s3:GetEncryptionConfiguration was denied)' };
    }
    throw explainAwsError(error, 's3:GetEncryptionConfiguration', `s3://${bucket}`);
  }
}

/** An existing topic's KmsMasterKeyId (a topic deploy creates is not encrypted). */
async function topicKey(clients: Pick<AwsClients, 'sns' | 'snsIn'>, topicArn: string, account: Account): Promise<KeyFinding> {
  const region = arnRegion(topicArn);
  const sns = region === account.region ? clients.sns : clients.snsIn(region);
  try {
    const answer = await sns.send(new GetTopicAttributesCommand({ TopicArn: topicArn }));
    return keyFinding(answer.Attributes?.['KmsMasterKeyId'], { partition: account.partition, region, accountId: topicArn.split(':')[4] ?? account.accountId }, 'alias/aws/sns');
  } catch (error) {
    if (httpStatusOf(error) === 403 || /AuthorizationError/.test(awsErrorName(error))) {
      return { kind: 'unknown', why: 'deploy may not read its attributes (sns:GetTopicAttributes was denied)' };
    }
    // A missing topic is reported, with its own message, by the notification step.
    return { kind: 'none' };
  }
}

/** Reads what the role's policy needs for encryption: both buckets' default keys and an existing topic's. */
export async function readEncryption(clients: Pick<AwsClients, 's3' | 'sns' | 'snsIn'>, request: DeployRequest, account: Account): Promise<EncryptionFindings> {
  const source = await bucketKey(clients.s3, request.bucket, account);
  const output = request.out.bucket === request.bucket ? source : await bucketKey(clients.s3, request.out.bucket, account);
  const topic = request.snsTopicArn ? await topicKey(clients, request.snsTopicArn, account) : { kind: 'none' as const };
  return { source, output, topic };
}
