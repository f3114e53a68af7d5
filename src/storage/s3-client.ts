import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { Config } from '../config/schema.js';

export interface S3ClientOverrides {
  /**
   * Path-style addressing (`endpoint/bucket/key`). Always on with `s3.endpoint`; the CLI also turns it on
   * when `AWS_ENDPOINT_URL_S3` is set, since MinIO and LocalStack rarely have wildcard DNS for buckets.
   */
  forcePathStyle?: boolean;
  /** Explicit credentials (tests, or a caller that already holds them); otherwise the standard chain. */
  credentials?: S3ClientConfig['credentials'];
}

/**
 * Builds the one S3 client of a run from `config.s3`. Called at the edge (CLI command, Lambda module scope)
 * and passed down. Without `profile` the SDK's default chain applies: environment, shared config and
 * profiles, SSO, container and instance roles. `AWS_ENDPOINT_URL_S3` is honoured by the SDK itself.
 */
export function createS3Client(s3: Config['s3'], overrides: S3ClientOverrides = {}): S3Client {
  const credentials = overrides.credentials ?? (s3.profile ? fromNodeProviderChain({ profile: s3.profile }) : undefined);
  return new S3Client({
    ...(s3.region ? { region: s3.region } : {}),
    // `profile` also lets the SDK read the region from that profile's config.
    ...(s3.profile ? { profile: s3.profile } : {}),
    ...(credentials ? { credentials } : {}),
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: Boolean(s3.endpoint) || (overrides.forcePathStyle ?? false),
    maxAttempts: s3.maxAttempts,
    // Standard and adaptive modes both retry 500/503 SlowDown with jittered backoff; adaptive also
    // slows the client down after throttling, which suits a long backfill against a busy bucket.
    retryMode: s3.retryMode,
    // Fail fast on an endpoint that does not answer; a socket idle this long is dead, not slow.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  });
}
