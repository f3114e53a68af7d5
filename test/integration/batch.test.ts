// The backfill end to end without AWS: the manifest from `backfill --manifest-only`, a local Batch
// Operations driver (test/helpers/batch-driver.ts) invoking the unpacked zip in separate node processes
// at concurrency 2 against loopback S3, and `backfill --status` reading the report it wrote. The outputs
// must be the ones `run` makes from the same source.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { DescribeJobCommand, S3ControlClient } from '@aws-sdk/client-s3-control';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backfillCommand, type BackfillCommandOptions, type BackfillDeps } from '../../src/cli/commands/backfill.js';
import { createAwsClients } from '../../src/cli/commands/deploy.js';
import { validateConfig } from '../../src/config/load.js';
import { buildLambdaPackage } from '../../src/deploy/package.js';
import { runBatchJob, manifestFor, type BatchJobResult } from '../helpers/batch-driver.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { unzipTo } from '../helpers/lambda.js';
import { BIN } from '../helpers/paths.js';
import { createBucket, putObject, s3Env, startS3Server, testClient, TEST_REGION, type S3Server } from '../helpers/s3-server.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
const HOST_FITS = process.platform === 'linux' && process.arch === 'x64' && glibc !== undefined;

const ACCOUNT = '123456789012';
const IMAGES = 240;
const KEYS = [
  ...Array.from({ length: IMAGES }, (_, i) => `uploads/batch/img-${String(i).padStart(3, '0')}.png`),
  'uploads/odd/a b+c%25,d.png', 'uploads/odd/café ü.png',
  'uploads/flaky/slow-1.png', 'uploads/flaky/slow-2.png',
];
const CORRUPT = ['uploads/bad/corrupt-1.jpg', 'uploads/bad/corrupt-2.png'];

let server: S3Server;
let proxy: FaultProxy;
let s3: S3Client;
let fnDir: string;
let work: string;
let env: NodeJS.ProcessEnv;
let job: BatchJobResult;
const mocks = { sts: mockClient(STSClient), s3control: mockClient(S3ControlClient) };

function io(cwd: string) {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) => ({ write: (s: string) => (append(s), true), isTTY: false }) as unknown as NodeJS.WriteStream;
  return { cwd, stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), signal: new AbortController().signal, out: () => out, err: () => err };
}

const deps = (): BackfillDeps => ({
  createClients: (region, profile) => ({ ...createAwsClients(region, profile), s3control: new S3ControlClient({ region: TEST_REGION }) }),
  createS3: async () => testClient(server.endpoint),
  sleep: async () => undefined,
  interactive: () => false,
  ask: async () => 'n',
});
const base: BackfillCommandOptions = { functionName: 'ImageProcessor', report: 'failed', priority: '10', region: TEST_REGION };

/** Every object under a bucket with its ETag (the MD5 of its bytes on s3rver), state files and backfill folders left out. */
async function outputs(bucket: string): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (!o.Key!.startsWith('.img-pipeline')) all.set(o.Key!, o.ETag!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return all;
}

beforeAll(async () => {
  if (!HOST_FITS) return;
  // One S3 attempt per request in the function, so one 503 from the proxy is a TemporaryFailure at once.
  const config = validateConfig({ s3: { maxAttempts: 1 } }, 'test');
  const pkg = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'host', env: process.env });
  fnDir = await makeTempDir('img-pipeline-batch-fn-');
  work = await makeTempDir('img-pipeline-batch-work-');
  await unzipTo(pkg.zip, fnDir);
  server = await startS3Server();
  s3 = testClient(server.endpoint);
  proxy = await startFaultProxy(server.endpoint);
  // The first GET of each flaky key is throttled: the function answers TemporaryFailure and Batch redrives it.
  const throttled = new Set<string>();
  proxy.rule = (request) => {
    if (request.op !== 'get' || !request.key.includes('flaky/') || throttled.has(request.key)) return undefined;
    throttled.add(request.key);
    return { kind: 'error', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
  };
  for (const bucket of ['uploads-bkt', 'processed-bkt', 'cli-bkt']) await createBucket(s3, bucket);
  // Tiny images, each a little different, so outputs can be compared one by one.
  await Promise.all(KEYS.map(async (key, i) => {
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i % 256, g: (i * 7) % 256, b: 90 } } }).png().toBuffer();
    await putObject(s3, 'uploads-bkt', key, png);
  }));
  for (const key of CORRUPT) await putObject(s3, 'uploads-bkt', key, 'not an image at all');
  env = s3Env({ AWS_REGION: TEST_REGION, AWS_ENDPOINT_URL_S3: proxy.endpoint, PROCESSED_BUCKET: 'processed-bkt', SOURCE_PREFIX: 'uploads/', NODE_NO_WARNINGS: '1' });
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await proxy?.close();
  await server?.stop();
  await removeTempDirs();
});

describe.skipIf(!HOST_FITS)('a backfill played by a local S3 Batch Operations driver', () => {
  it('the manifest holds every image; the job redrives temporary failures, fails only the corrupt ones', async () => {
    const local = io(work);
    expect(await backfillCommand('s3://uploads-bkt/uploads/', { ...base, out: 's3://processed-bkt/', manifestOnly: 'manifest.csv' }, local, deps())).toBe(0);
    const manifest = await readFile(join(work, 'manifest.csv'), 'utf8');
    expect(manifest.split('\n').filter(Boolean)).toHaveLength(KEYS.length + CORRUPT.length);
    await putObject(s3, 'processed-bkt', '.img-pipeline/backfill/local/manifest.csv', manifest);

    const started = performance.now();
    job = await runBatchJob({
      fnDir, env, s3, jobId: 'local-job-1', concurrency: 2, userArguments: { notify: 'false' },
      manifest: { bucket: 'processed-bkt', key: '.img-pipeline/backfill/local/manifest.csv' },
      report: { bucket: 'processed-bkt', prefix: '.img-pipeline/backfill/local/report', scope: 'FailedTasksOnly' },
    });
    const seconds = (performance.now() - started) / 1000;
    expect(job).toMatchObject({ status: 'Complete', total: KEYS.length + CORRUPT.length, succeeded: KEYS.length, failed: CORRUPT.length, redriven: 2 });
    // For the record (not a target): a few hundred tiny images at concurrency 2.
    console.log(`local Batch driver: ${job.total} tasks, ${job.invocations} invocations in ${seconds.toFixed(1)} s at concurrency 2 (${(job.total / seconds).toFixed(0)} tasks/s)`);
  }, 120_000);

  it('makes the same outputs as `run` from the same source: the same keys, the same bytes', async () => {
    const cli = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'run', 's3://uploads-bkt/uploads/', '--out', 's3://cli-bkt/', '--endpoint', server.endpoint, '--region', TEST_REGION, '--quiet'], { cwd: work, env: s3Env(), timeout: 60_000 }, (error, _stdout, stderr) => {
        resolve({ code: typeof error?.code === 'number' ? error.code : error ? -1 : 0, stderr });
      });
    });
    expect(cli.code, cli.stderr).toBe(1); // the two corrupt inputs
    const batch = await outputs('processed-bkt');
    const direct = await outputs('cli-bkt');
    expect(batch.size).toBe(KEYS.length * 2);
    expect([...batch.keys()].sort()).toEqual([...direct.keys()].sort());
    for (const [key, etag] of batch) expect(direct.get(key), key).toBe(etag);
    expect(batch.has('thumb/odd/a b+c%25,d.jpg')).toBe(true);
  }, 120_000);

  it('`backfill --status` reads the report the driver wrote: the failed keys and why; exit 1', async () => {
    mocks.s3control.on(DescribeJobCommand).resolves({ Job: {
      JobId: 'local-job-1', Status: job.status,
      ProgressSummary: { TotalNumberOfTasks: job.total, NumberOfTasksSucceeded: job.succeeded, NumberOfTasksFailed: job.failed },
      Report: { Bucket: 'arn:aws:s3:::processed-bkt', Prefix: '.img-pipeline/backfill/local/report', Enabled: true, ReportScope: 'FailedTasksOnly' },
    } });
    const out = io(work);
    expect(await backfillCommand(undefined, { ...base, status: 'local-job-1', json: true }, out, deps())).toBe(1);
    const document = JSON.parse(out.out()) as { report: { failedCount: number; failed: { key: string; errorCode: string; message: string }[] } };
    expect(document.report.failedCount).toBe(2);
    expect(document.report.failed.map((f) => f.key).sort()).toEqual(CORRUPT);
    expect(document.report.failed.every((f) => f.errorCode === 'PermanentFailure' && /^INPUT_/.test(f.message))).toBe(true);
  });

  it('fails the job once more than half of its tasks failed after the threshold, as Batch does; --status exits 2', async () => {
    const bad = Array.from({ length: 12 }, (_, i) => `uploads/bad/missing-${i}.png`);
    await putObject(s3, 'processed-bkt', '.img-pipeline/backfill/failing/manifest.csv', manifestFor('uploads-bkt', [...bad, ...KEYS.slice(0, 20)]));
    const failing = await runBatchJob({
      fnDir, env, s3, jobId: 'local-job-2', concurrency: 2, userArguments: { notify: 'false' }, threshold: 10,
      manifest: { bucket: 'processed-bkt', key: '.img-pipeline/backfill/failing/manifest.csv' },
      report: { bucket: 'processed-bkt', prefix: '.img-pipeline/backfill/failing/report', scope: 'AllTasks' },
    });
    expect(failing.status).toBe('Failed');
    expect(failing.succeeded + failing.failed).toBeLessThan(failing.total);
    mocks.s3control.on(DescribeJobCommand).resolves({ Job: {
      JobId: 'local-job-2', Status: 'Failed', FailureReasons: failing.failureReasons,
      ProgressSummary: { TotalNumberOfTasks: failing.total, NumberOfTasksSucceeded: failing.succeeded, NumberOfTasksFailed: failing.failed },
      Report: { Bucket: 'arn:aws:s3:::processed-bkt', Prefix: '.img-pipeline/backfill/failing/report', Enabled: true, ReportScope: 'AllTasks' },
    } });
    const out = io(work);
    expect(await backfillCommand(undefined, { ...base, status: 'local-job-2' }, out, deps())).toBe(2);
    expect(out.err()).toMatch(/Job Task failure threshold: more than 50% of tasks failed/);
    expect(out.err()).toMatch(/s3:\/\/uploads-bkt\/uploads\/bad\/missing-0\.png: PermanentFailure: S3_NO_SUCH_KEY: /);
  }, 60_000);
});
