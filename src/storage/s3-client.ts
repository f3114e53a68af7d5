import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Config } from '../config/schema.js';

/** A custom S3 endpoint and where it was set, so messages can name the right thing to check. */
export interface CustomEndpoint {
  url: string;
  /** `--endpoint` (the flag, or `s3.endpoint` in the config file), or the environment variable's name. */
  origin: string;
}

/** The SDK's own variables for a custom endpoint, most specific first (it reads them itself). */
const ENDPOINT_VARIABLES = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'] as const;

/**
 * The one decision about custom endpoints: `s3.endpoint` (`--endpoint`), else the SDK's
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is set).
 * A custom endpoint means an S3-compatible store: path-style addressing (MinIO and LocalStack rarely have
 * wildcard DNS for bucket subdomains) and checksums only where S3 requires them.
 */
export function customEndpoint(s3: Pick<Config['s3'], 'endpoint'>, env: Readonly<Record<string, string | undefined>> = {}): CustomEndpoint | undefined {
  if (s3.endpoint) return { url: s3.endpoint, origin: '--endpoint' };
  if (env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS'] === 'true') return undefined;
  for (const name of ENDPOINT_VARIABLES) {
    const url = env[name];
    if (url) return { url, origin: name };
  }
  return undefined;
}

/** Sockets beyond s3.connections: a source's next page and each destination folder's next page. */
const LISTING_SOCKETS = 4;

export interface S3ClientOverrides {
  /** Explicit credentials (tests, or a caller that already holds them); otherwise the standard chain. */
  credentials?: S3ClientConfig['credentials'];
  /**
   * The environment the SDK will read, passed in by the edge that owns it (CLI main, Lambda module scope),
   * so an endpoint from `AWS_ENDPOINT_URL_S3` gets the same settings as `--endpoint`.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Builds the one S3 client of a run from `config.s3`. Called at the edge (CLI command, Lambda module scope)
 * and passed down. Without `profile` the SDK's default chain applies: environment, shared config and
 * profiles, SSO, container and instance roles. `AWS_ENDPOINT_URL_S3` is honoured by the SDK itself.
 */
export function createS3Client(s3: Config['s3'], overrides: S3ClientOverrides = {}): S3Client {
  const { credentials } = overrides;
  const custom = customEndpoint(s3, overrides.env);
  return new S3Client({
    ...(s3.region ? { region: s3.region } : {}),
    // The SDK's default chain takes the client's `profile` (its credentials, SSO or role), and the SDK
    // reads that profile's region too.
    ...(s3.profile ? { profile: s3.profile } : {}),
    ...(credentials ? { credentials } : {}),
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: custom !== undefined,
    // Since 2025 the SDK adds CRC32 checksum headers to every upload and asks for them on downloads;
    // several S3-compatible stores (older MinIO, R2 for some operations, Ceph) reject or mishandle them.
    ...(custom ? { requestChecksumCalculation: 'WHEN_REQUIRED' } as const : {}),
    // Downloads are not re-checksummed: S3 stores a CRC64NVME for objects uploaded since 2025, and the SDK
    // checks it in JavaScript at ~70-200 MB/s on this machine, main-thread CPU that a backfill of photos
    // pays per byte (0.4-1.3 s per 89 MB, next to 1.9 s for the whole local run). TLS protects the bytes
    // in transit, S3Source checks their length and pins the version by If-Match, and the decoder fails a
    // broken image. Uploads keep their CRC32 (outputs are small). See
    // https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An S3 -> S3 backfill may read a bucket in one region and write one in another: on a 301 the SDK
    // retries in the region S3 names. If that still fails, the error says which --region to use.
    followRegionRedirects: true,
    maxAttempts: s3.maxAttempts,
    // Standard and adaptive modes both retry 500/503 SlowDown with jittered backoff; adaptive also
    // slows the client down after throttling, which suits a long backfill against a busy bucket.
    retryMode: s3.retryMode,
    requestHandler: {
      // Fail fast on an endpoint that does not answer; a socket idle this long is dead, not slow.
      connectionTimeout: 10_000,
      socketTimeout: 120_000,
      // Kept alive, so a request costs one round trip and not a handshake too, and enough sockets for
      // the run's transfers (s3.connections) plus its listings, which then never queue behind them.
      // Options rather than Agent instances: the handler then owns them, and client.destroy() closes them.
      httpAgent: { keepAlive: true, maxSockets: s3.connections + LISTING_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: s3.connections + LISTING_SOCKETS },
    },
  });
}
