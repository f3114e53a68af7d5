import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { configSchema } from '../../src/config/schema.js';
import { createS3Client } from '../../src/storage/s3-client.js';

// The SDK's notice that its 2027 releases need Node 22 is noise in test output (the CLI silences it too).
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const SERVER_SCRIPT = fileURLToPath(new URL('./s3-server-process.mjs', import.meta.url));

/** s3rver checks signatures against its one built-in account. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const TEST_REGION = 'us-east-1';

export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** The server process's pid, for the bench to read its CPU time. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts s3rver on a free loopback port in a child process run with `--openssl-legacy-provider`
 * (see s3-server-process.mjs), with the given buckets, and waits until it listens.
 */
export async function startS3Server(buckets: readonly string[] = []): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'img-pipeline-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', SERVER_SCRIPT, directory, ...buckets], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A client for test set-up and checks, built by the same factory as the CLI's. */
export function testClient(endpoint: string, s3: Record<string, unknown> = {}): S3Client {
  const config = configSchema.parse({ s3: { endpoint, region: TEST_REGION, maxAttempts: 2, ...s3 } });
  return createS3Client(config.s3, { credentials: S3RVER_CREDENTIALS });
}

/**
 * Environment for a spawned CLI: s3rver's credentials, and nothing from this machine's AWS set-up
 * (no profiles, no instance metadata: the tests never leave loopback).
 */
export function s3Env(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('AWS_')) delete env[name];
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    ...overrides,
  });
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function putObject(client: S3Client, bucket: string, key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> {
  // A Buffer, so the SDK knows the length (an empty string would trip its "unknown length" warning).
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body), ...(metadata ? { Metadata: metadata } : {}) }));
}

/** Every key in a bucket (under a prefix), sorted, with size and time. */
export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<{ key: string; size: number; lastModified: number }[]> {
  const keys: { key: string; size: number; lastModified: number }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push({ key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

export async function headObject(client: S3Client, bucket: string, key: string) {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}
