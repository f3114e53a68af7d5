import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_KEY, OUTPUT_MARKER, SOURCE_ETAG_METADATA, SOURCE_KEY_METADATA, STATE_KEY } from '../../src/pipeline/layout.js';
import type { OutputReport, RunReport } from '../../src/runner/run-pipeline.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { BIN } from '../helpers/paths.js';
import { getObject, headObject, listKeys, putObject, s3Env, startS3Server, testClient, TEST_REGION, type S3Server } from '../helpers/s3-server.js';
import { listOutputFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

/** The `--json` document (toJson writes the report's fields; files carry no bytesIn). */
type JsonReport = RunReport;
type JsonOutput = OutputReport;
interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let server: S3Server;
let proxy: FaultProxy;
let direct: S3Client;
let work: string;

/** Runs the built CLI as a whole process against the proxy (asynchronously: the proxy lives in this process). */
function cli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; endpoint?: string | false; onSpawn?: (child: ChildProcess) => void } = {}): Promise<Result> {
  const endpoint = options.endpoint === undefined ? ['--endpoint', proxy.endpoint, '--region', TEST_REGION] : options.endpoint === false ? [] : ['--endpoint', options.endpoint, '--region', TEST_REGION];
  const child = spawn(process.execPath, [BIN, ...args, ...endpoint], { cwd: work, env: options.env ?? s3Env(), stdio: ['ignore', 'pipe', 'pipe'] });
  options.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Accepted PUTs of outputs to the processed bucket: not the state file, not the run lock. */
function outputPuts() {
  return proxy.successfulPuts('processed').filter((r) => !r.key.endsWith(STATE_KEY) && !r.key.endsWith(LOCK_KEY));
}

function report(result: Result): JsonReport {
  try {
    return JSON.parse(result.stdout) as JsonReport;
  } catch {
    throw new Error(`no JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}

/** A small photo-like image (a gradient, so encoders have something to do). */
async function image(format: 'jpeg' | 'png' | 'webp', width = 160, height = 120, seed = 0): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = (seed * 37) % 256;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).toFormat(format).toBuffer();
}

/** Each output object exists once, decodes completely and matches what the report says about it. */
async function expectOutputsIntact(outputs: JsonOutput[]): Promise<void> {
  for (const output of outputs) {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.*)$/.exec(output.path)!;
    const data = await getObject(direct, bucket!, key!);
    expect(data.length).toBe(output.bytes);
    const { info } = await sharp(data).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([output.width, output.height]);
  }
}

beforeAll(async () => {
  server = await startS3Server(['uploads', 'processed']);
  proxy = await startFaultProxy(server.endpoint);
  direct = testClient(server.endpoint);
  work = await makeTempDir();
  const [jpeg, png, webp] = await Promise.all([image('jpeg'), image('png', 200, 100), image('webp', 90, 160)]);
  await Promise.all([
    putObject(direct, 'uploads', 'uploads/2024/cat.PNG', png),
    putObject(direct, 'uploads', 'uploads/my photo é+1.jpg', jpeg),
    putObject(direct, 'uploads', 'uploads/a/b/deep.webp', webp),
    putObject(direct, 'uploads', 'uploads/folder/', ''),
    putObject(direct, 'uploads', 'uploads/empty.jpg', ''),
    putObject(direct, 'uploads', 'uploads/readme.txt', 'not an image'),
    putObject(direct, 'uploads', 'uploads/broken.jpg', 'this is text, not a JPEG'),
    putObject(direct, 'uploads', 'uploads/huge.jpg', Buffer.alloc(300 * 1024, 1)),
    putObject(direct, 'uploads', 'uploads/ours.jpg', jpeg, { [OUTPUT_MARKER]: 'true' }),
  ]);
});

afterAll(async () => {
  direct?.destroy();
  await proxy?.close();
  await server?.stop();
  await removeTempDirs();
});

afterEach(() => proxy.reset());

describe('S3 -> S3 backfill', () => {
  const args = ['s3://uploads/uploads/', '--out', 's3://processed/site/', '--json', '-f', 'jpeg,webp', '--cache-control', 'public, max-age=60', '--max-file-size', '200KB', '--s3-page-size', '3', '-j', '2'];

  it('writes the shared layout with Content-Type, Cache-Control and marker metadata; skips, fails and refuses what it should', async () => {
    const result = await cli(args);
    expect(result.code, result.stderr).toBe(1);
    const json = report(result);
    const byInput = Object.fromEntries(json.files.map((f) => [f.input, f]));
    expect(Object.keys(byInput).sort()).toEqual(
      ['2024/cat.PNG', 'a/b/deep.webp', 'broken.jpg', 'empty.jpg', 'folder/', 'huge.jpg', 'my photo é+1.jpg', 'ours.jpg'].map((k) => `s3://uploads/uploads/${k}`),
    );
    expect([json.processed, json.skipped, json.failed]).toEqual([3, 3, 2]);
    expect(byInput['s3://uploads/uploads/folder/']).toMatchObject({ status: 'skipped', reason: 'folder marker' });
    expect(byInput['s3://uploads/uploads/empty.jpg']).toMatchObject({ status: 'skipped', reason: 'empty object' });
    expect(byInput['s3://uploads/uploads/ours.jpg']).toMatchObject({ status: 'skipped' });
    expect(byInput['s3://uploads/uploads/ours.jpg']!.reason).toContain('img-pipeline output');
    expect(byInput['s3://uploads/uploads/huge.jpg']).toMatchObject({ status: 'failed', code: 'INPUT_TOO_LARGE' });
    expect(byInput['s3://uploads/uploads/broken.jpg']).toMatchObject({ status: 'failed' });
    expect(byInput['s3://uploads/uploads/2024/cat.PNG']!.outputs.map((o) => o.path)).toEqual([
      's3://processed/site/thumb/2024/cat.jpg',
      's3://processed/site/thumb/2024/cat.webp',
      's3://processed/site/medium/2024/cat.jpg',
      's3://processed/site/medium/2024/cat.webp',
    ]);
    expect(json.bytesTransferred).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/transferred/);

    const keys = (await listKeys(direct, 'processed', 'site/')).map((k) => k.key);
    expect(keys).toEqual([
      'site/.img-pipeline.json',
      ...['medium', 'thumb'].flatMap((v) => [`${v}/2024/cat`, `${v}/a/b/deep`, `${v}/my photo é+1`].flatMap((k) => [`site/${k}.jpg`, `site/${k}.webp`])),
    ].sort());
    for (const file of json.files.filter((f) => f.status === 'processed')) await expectOutputsIntact(file.outputs);

    const head = await headObject(direct, 'processed', 'site/thumb/my photo é+1.webp');
    const source = await headObject(direct, 'uploads', 'uploads/my photo é+1.jpg');
    expect(head.ContentType).toBe('image/webp');
    expect((await headObject(direct, 'processed', 'site/medium/my photo é+1.jpg')).ContentType).toBe('image/jpeg');
    expect(head.CacheControl).toBe('public, max-age=60');
    expect(head.Metadata).toEqual({
      [OUTPUT_MARKER]: 'true',
      [SOURCE_KEY_METADATA]: encodeURI('s3://uploads/uploads/my photo é+1.jpg'),
      [SOURCE_ETAG_METADATA]: source.ETag!.replace(/"/g, ''),
    });

    // Paged listing; the oversized object was judged from the listing and never downloaded.
    expect(proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'uploads').length).toBeGreaterThan(2);
    expect(proxy.requests.filter((r) => r.op === 'get' && r.key === 'uploads/huge.jpg')).toEqual([]);
    const puts = proxy.successfulPuts('processed').map((r) => r.key);
    expect(puts.length).toBe(new Set(puts).size);
  });

  it('writes nothing on a rerun (one paged listing per variant folder, no HEADs), and --force redoes everything', async () => {
    const rerun = await cli(args);
    expect(rerun.code).toBe(1); // the two bad objects still fail
    expect(report(rerun)).toMatchObject({ processed: 0, skipped: 6, failed: 2 });
    expect(proxy.requests.filter((r) => r.method === 'PUT' && !r.key.endsWith(LOCK_KEY))).toEqual([]);
    expect(proxy.requests.filter((r) => r.op === 'head')).toEqual([]);
    // The destination is read once: the state file, then each variant folder's listing in step with the
    // sources. --s3-page-size 3 reaches the destination too: six outputs a folder take two pages each,
    // so the resume works across destination pages.
    expect(proxy.requests.filter((r) => r.op === 'get' && r.bucket === 'processed' && !r.key.endsWith(LOCK_KEY)).map((r) => r.key)).toEqual([`site/${STATE_KEY}`]);
    // The lock: read before it is created, read back, and read before it is deleted.
    expect(proxy.requests.filter((r) => r.op === 'get' && r.key === `site/${LOCK_KEY}`)).toHaveLength(3);
    const lists = proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'processed');
    expect([...new Set(lists.map((r) => r.query.get('prefix')))].sort()).toEqual(['site/medium/', 'site/thumb/']);
    for (const variant of ['thumb', 'medium']) {
      const pages = lists.filter((r) => r.query.get('prefix') === `site/${variant}/`);
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.every((r) => r.query.get('max-keys') === '3')).toBe(true);
      expect(pages.filter((r) => !r.query.get('continuation-token'))).toHaveLength(1);
    }

    proxy.reset();
    const forced = await cli([...args, '--force']);
    expect(report(forced)).toMatchObject({ processed: 3, failed: 2 });
    expect(outputPuts()).toHaveLength(12);
  });

  it('lists every planned file with --dry-run and writes nothing', async () => {
    const result = await cli(['s3://uploads/uploads/', '--out', 's3://processed/dry/', '--json', '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    const json = report(result);
    // What only a read can tell (a broken body, the output marker in an object's metadata) is planned like
    // the rest: a dry run makes no request per object.
    expect([json.planned, json.skipped, json.failed]).toEqual([6, 2, 0]);
    expect(json.files.filter((f) => f.status === 'planned').flatMap((f) => f.outputs.map((o) => o.path)).sort()).toEqual(
      ['2024/cat', 'a/b/deep', 'broken', 'huge', 'my photo é+1', 'ours'].flatMap((k) => [`s3://processed/dry/medium/${k}.jpg`, `s3://processed/dry/thumb/${k}.jpg`]).sort(),
    );
    expect(proxy.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    // No download: the only object read is the destination's state file (absent here).
    expect(proxy.requests.filter((r) => r.op === 'get').map((r) => r.key)).toEqual([`dry/${STATE_KEY}`]);
    expect(await listKeys(direct, 'processed', 'dry/')).toEqual([]);
  });

  it('refuses a destination inside the source with exit 2 and writes nothing', async () => {
    const result = await cli(['s3://uploads/uploads/', '--out', 's3://uploads/uploads/processed/']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('inside the source s3://uploads/uploads/');
    expect(proxy.requests).toEqual([]);
  });
});

describe('one run per S3 destination (the lock object)', () => {
  const lockOf = (pid: number) => JSON.stringify({ tool: 'img-pipeline', pid, hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'img-pipeline "s3://uploads/uploads/" --out "s3://processed/locked/" --watermark A', token: 'theirs' });
  const keysUnder = async (prefix: string) => (await listKeys(direct, 'processed', prefix)).map((k) => k.key);

  it('refuses a run while a live run holds the lock (exit 2, naming it), writing nothing', async () => {
    // This test process stands for the other run: it is alive, on this machine.
    await putObject(direct, 'processed', `held/${LOCK_KEY}`, lockOf(process.pid));
    const result = await cli(['s3://uploads/uploads/', '--out', 's3://processed/held/']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`img-pipeline: another img-pipeline run is writing to s3://processed/held/ (pid ${process.pid} on this machine, started 2026-01-01T00:00:00.000Z: img-pipeline "s3://uploads/uploads/" --out "s3://processed/locked/" --watermark A)`);
    expect(await keysUnder('held/')).toEqual([`held/${LOCK_KEY}`]);
  });

  it('creates the lock with If-None-Match: * and deletes it at the end; a dead run\'s lock is taken over', async () => {
    const fresh = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/lock-new/']);
    expect(fresh.code, fresh.stderr).toBe(0);
    const create = proxy.requests.find((r) => r.op === 'put' && r.key === `lock-new/${LOCK_KEY}`)!;
    expect(create.headers['if-none-match']).toBe('*');
    expect(proxy.requests.some((r) => r.method === 'DELETE' && r.key === `lock-new/${LOCK_KEY}` && r.status === 204)).toBe(true);
    expect(await keysUnder('lock-new/')).not.toContain(`lock-new/${LOCK_KEY}`);

    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.on('close', resolve));
    await putObject(direct, 'processed', `lock-stale/${LOCK_KEY}`, lockOf(dead.pid!));
    const takeover = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/lock-stale/']);
    expect(takeover.code, takeover.stderr).toBe(0);
    expect(await keysUnder('lock-stale/')).toEqual(['lock-stale/.img-pipeline.json', 'lock-stale/medium/cat.jpg', 'lock-stale/thumb/cat.jpg']);
  });

  it('reads the lock for its release while the last outputs upload, and deletes it only after them', async () => {
    const completed: string[] = [];
    proxy.onComplete = (r) => completed.push(`${r.method} ${r.key}`);
    // The outputs take a while to land, as over a slow link: the release's read goes out meanwhile.
    proxy.rule = (r) => (r.op === 'put' && r.bucket === 'processed' && !r.key.endsWith(STATE_KEY) && !r.key.endsWith(LOCK_KEY) ? { kind: 'delay', ms: 400 } : undefined);
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/lock-release/']);
    expect(result.code, result.stderr).toBe(0);
    const lockGet = completed.lastIndexOf(`GET lock-release/${LOCK_KEY}`);
    const outputs = completed.flatMap((c, i) => (/^PUT lock-release\/(thumb|medium)\//.test(c) ? [i] : []));
    expect(outputs).toHaveLength(2);
    expect(lockGet).toBeLessThan(Math.max(...outputs));
    expect(completed.indexOf(`DELETE lock-release/${LOCK_KEY}`)).toBeGreaterThan(Math.max(...outputs));
    expect(await keysUnder('lock-release/')).toEqual(['lock-release/.img-pipeline.json', 'lock-release/medium/cat.jpg', 'lock-release/thumb/cat.jpg']);
  });

  it('is refused when S3 answers the conditional write 412 PreconditionFailed (another run created it first)', async () => {
    // What AWS answers when the key exists (s3rver ignores If-None-Match on PUT, so the proxy plays AWS):
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
    proxy.rule = (r) => (r.op === 'put' && r.key === `lock-race/${LOCK_KEY}` ? { kind: 'error', status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold', extra: { Condition: 'If-None-Match' } } : undefined);
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/lock-race/']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/another img-pipeline run is starting on s3:\/\/processed\/lock-race\//);
    expect(await keysUnder('lock-race/')).toEqual([]);
  });
});

describe('S3 and local folders', () => {
  it('backfills S3 -> local with the same layout, reporting s3:// inputs', async () => {
    const out = join(work, 'from-s3');
    const result = await cli(['s3://uploads/uploads/2024/', 's3://uploads/uploads/a', '--out', out, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const json = report(result);
    expect(json.files.map((f) => f.input).sort()).toEqual(['s3://uploads/uploads/2024/cat.PNG', 's3://uploads/uploads/a/b/deep.webp']);
    expect(json.files[0]!.outputs[0]!.path.startsWith(out)).toBe(true);
    expect(await listOutputFiles(out)).toEqual(['.img-pipeline.json', 'medium/b/deep.jpg', 'medium/cat.jpg', 'thumb/b/deep.jpg', 'thumb/cat.jpg']);
    expect((await sharp(join(out, 'thumb', 'cat.jpg')).metadata()).width).toBe(128);
  });

  it('uploads local -> S3 (prefix without a trailing slash), and a rerun writes nothing', async () => {
    const input = join(work, 'photos');
    await mkdir(join(input, '2024'), { recursive: true });
    await writeFile(join(input, '2024', 'été+plage 1.jpg'), await image('jpeg', 300, 200, 3));
    await writeFile(join(input, 'logo.png'), await image('png', 64, 64, 4));
    const args = [input, '--out', 's3://processed/from-local', '--json', '--watermark', '© Test'];
    const first = await cli(args);
    expect(first.code, first.stderr).toBe(0);
    const json = report(first);
    expect(json.files.flatMap((f) => f.outputs.map((o) => o.path)).sort()).toEqual(
      ['s3://processed/from-local/medium/2024/été+plage 1.jpg', 's3://processed/from-local/medium/logo.jpg', 's3://processed/from-local/thumb/2024/été+plage 1.jpg', 's3://processed/from-local/thumb/logo.jpg'],
    );
    for (const file of json.files) await expectOutputsIntact(file.outputs);
    // A local source is named by its key relative to the input folder: never the absolute path, which
    // would publish the uploader's folder names.
    const metadata = (await headObject(direct, 'processed', 'from-local/thumb/2024/été+plage 1.jpg')).Metadata;
    expect(metadata).toEqual({ [OUTPUT_MARKER]: 'true', [SOURCE_KEY_METADATA]: encodeURI('2024/été+plage 1.jpg') });
    expect(JSON.stringify(metadata)).not.toContain(encodeURI(work));

    proxy.reset();
    const rerun = await cli(args);
    expect(report(rerun)).toMatchObject({ processed: 0, skipped: 2 });
    expect(proxy.requests.filter((r) => r.method === 'PUT' && !r.key.endsWith(LOCK_KEY))).toEqual([]);
  });
});

describe('credentials', () => {
  it('takes a --profile from the shared credentials file, ahead of nothing in the environment', async () => {
    const credentials = join(work, 'aws-credentials');
    await writeFile(credentials, '[backfill]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    const env = s3Env({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: credentials });
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/profile/', '--profile', 'backfill', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(report(result).processed).toBe(1);
    expect(proxy.requests.find((r) => r.op === 'list')!.headers['authorization']).toContain('Credential=S3RVER/');
  });
  it('says a --profile does not exist, naming it and the files looked in: one line, exit 2, no SDK warning', async () => {
    const credentials = join(work, 'aws-credentials-other');
    const config = join(work, 'aws-config-other');
    await writeFile(credentials, '[backfill]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    await writeFile(config, '[default]\nregion = us-east-1\n[profile nope-not-this]\nregion = us-east-1\n');
    // Keys in the environment too: with a profile given, the SDK warns about the clash over several lines.
    const env = s3Env({ AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: config });
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/no-profile/', '--profile', 'nope'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`img-pipeline: the AWS profile "nope" does not exist: it is in neither ${config} nor ${credentials} (see "aws configure list-profiles")\n`);
    expect(proxy.requests).toEqual([]);
  });

  it('deploy, destroy and backfill name a missing --profile the same way, before any AWS call', async () => {
    const credentials = join(work, 'aws-credentials-none');
    const config = join(work, 'aws-config-none');
    await writeFile(credentials, '');
    await writeFile(config, '[default]\nregion = us-east-1\n');
    const env = s3Env({ AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: config });
    const expected = `img-pipeline: the AWS profile "nope" does not exist: it is in neither ${config} nor ${credentials} (see "aws configure list-profiles")\n`;
    for (const args of [
      ['deploy', '--bucket', 'my-uploads', '--out', 's3://my-processed/', '--profile', 'nope'],
      ['destroy', '--bucket', 'my-uploads', '--profile', 'nope'],
      ['backfill', 's3://my-uploads/uploads/', '--function-name', 'ImageProcessor', '--yes', '--profile', 'nope'],
    ]) {
      // No --endpoint (deploy and destroy have none): the refusal comes before any client is built.
      const result = await cli([...args, '--region', TEST_REGION], { env, endpoint: false });
      expect(result.code, args[0]).toBe(2);
      expect(result.stderr, args[0]).toBe(expected);
    }
  });
});

describe('setup errors: one line, the right exit code, nothing written', () => {
  it('names a missing bucket, missing credentials, the region to use and an unreachable endpoint', async () => {
    const noCredentials = s3Env({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    const [missing, credentials, unreachable] = await Promise.all([
      cli(['s3://no-such-bucket/in/', '--out', 's3://processed/x/']),
      cli(['s3://uploads/uploads/', '--out', 's3://processed/x/'], { env: noCredentials }),
      cli(['s3://uploads/uploads/', '--out', 's3://processed/x/', '--max-attempts', '1'], { endpoint: 'http://127.0.0.1:1' }),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('img-pipeline: NoSuchBucket: the bucket no-such-bucket does not exist (s3:ListBucket on s3://no-such-bucket/in/)\n');
    expect(credentials.code).toBe(2);
    expect(credentials.stderr).toMatch(/^img-pipeline: no AWS credentials found .*--profile.*\n$/);
    // Nothing could start: a usage-level failure (exit 2), not "some files failed" (exit 1).
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/^img-pipeline: cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\).*\n$/);

    proxy.reset();
    proxy.rule = () => ({ kind: 'error', status: 301, code: 'PermanentRedirect', headers: { 'x-amz-bucket-region': 'eu-west-1' }, extra: { Endpoint: 'uploads.s3.eu-west-1.amazonaws.com' } });
    const region = await cli(['s3://uploads/uploads/', '--out', 's3://processed/x/']);
    expect(region.code).toBe(2);
    expect(region.stderr).toMatch(/^img-pipeline: the bucket uploads is in another region .*--region eu-west-1\n$/);
    expect(await listKeys(direct, 'processed', 'x/')).toEqual([]);
  });

  it('exit 2 with one JSON document carrying the error under --json: refused credentials, an unreachable endpoint', async () => {
    const refused = s3Env({ AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1', AWS_SECRET_ACCESS_KEY: 'wrong' });
    const [credentials, unreachable] = await Promise.all([
      cli(['s3://uploads/uploads/', '--out', 's3://processed/x/', '--json'], { env: refused }),
      cli(['s3://uploads/uploads/', '--out', 's3://processed/x/', '--json', '--max-attempts', '1'], { endpoint: 'http://127.0.0.1:1' }),
    ]);
    for (const result of [credentials, unreachable]) {
      expect(result.code, result.stderr).toBe(2);
      const doc = JSON.parse(result.stdout);
      expect(doc).toMatchObject({ processed: 0, skipped: 0, failed: 0, files: [], error: { code: expect.stringMatching(/^S3_/), message: expect.any(String) } });
    }
    expect(JSON.parse(credentials.stdout).error.code).toBe('S3_CREDENTIALS_REFUSED');
    expect(JSON.parse(unreachable.stdout).error).toMatchObject({ code: 'S3_UNREACHABLE', message: expect.stringContaining('cannot reach the S3 endpoint http://127.0.0.1:1') });
  });
});

describe('faults', () => {
  it('processes every object exactly once, or fails it with a reason, through 500s, SlowDowns and cut connections', async () => {
    const names = Array.from({ length: 9 }, (_, i) => `faults/img-${i}.jpg`);
    await Promise.all([
      ...names.map(async (key, i) => putObject(direct, 'uploads', key, await image('jpeg', 120 + i * 10, 90, i))),
      putObject(direct, 'uploads', 'faults/denied.jpg', await image('jpeg')),
    ]);
    const seen = new Map<string, number>();
    const nth = (r: { method: string; key: string }) => {
      const id = `${r.method} ${r.key}`;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      return seen.get(id)!;
    };
    proxy.rule = (r) => {
      const n = nth(r);
      if (r.op === 'list' && r.bucket === 'uploads' && n === 1) return { kind: 'error', status: 500, code: 'InternalError' };
      if (r.op === 'get' && r.key === 'faults/denied.jpg') return { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' };
      if (r.op === 'get' && /img-[036]/.test(r.key) && n === 1) return { kind: 'cut-response', fraction: 0.4 };
      if (r.op === 'put' && /thumb\/img-[147]/.test(r.key) && n === 1) return { kind: 'error', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
      if (r.op === 'put' && /medium\/img-[258]/.test(r.key) && n === 1) return { kind: 'cut-request' };
      if (r.op === 'put' && /medium\/img-[0]/.test(r.key) && n <= 2) return { kind: 'error', status: 500, code: 'InternalError' };
      return undefined;
    };
    const result = await cli(['s3://uploads/faults/', '--out', 's3://processed/faults/', '--json', '-j', '3']);
    expect(result.code, result.stderr).toBe(1);
    const json = report(result);
    expect(json.files.map((f) => f.input).sort()).toEqual([...names, 'faults/denied.jpg'].map((k) => `s3://uploads/${k}`).sort());
    expect([json.processed, json.failed]).toEqual([9, 1]);
    expect(json.files.find((f) => f.status === 'failed')).toMatchObject({ input: 's3://uploads/faults/denied.jpg', error: 'AccessDenied: s3:GetObject on s3://uploads/faults/denied.jpg' });
    for (const file of json.files.filter((f) => f.status === 'processed')) await expectOutputsIntact(file.outputs);

    // Every output landed by exactly one accepted PUT; nothing else is under the prefix.
    const puts = outputPuts().map((r) => r.key).sort();
    const expected = names.flatMap((k) => ['thumb', 'medium'].map((v) => `faults/${v}/${k.slice('faults/'.length)}`)).sort();
    expect(puts).toEqual(expected);
    expect((await listKeys(direct, 'processed', 'faults/')).map((k) => k.key).filter((k) => !k.endsWith(STATE_KEY))).toEqual(expected);
    // The faults did happen.
    expect(proxy.requests.filter((r) => r.fault === 'cut-response')).toHaveLength(3);
    expect(proxy.requests.filter((r) => r.fault === 'cut-request')).toHaveLength(3);
  });

  it('on Ctrl-C finishes the images in flight, fails none and leaves only whole outputs', async () => {
    await Promise.all(Array.from({ length: 12 }, async (_, i) => putObject(direct, 'uploads', `interrupt/i${String(i).padStart(2, '0')}.jpg`, await image('jpeg', 100, 80, i))));
    let child: ChildProcess | undefined;
    // The first two downloads are quick, the rest hang: Ctrl-C comes while later images wait on them.
    proxy.rule = (r) => (r.op === 'get' && r.key.endsWith('.jpg') ? { kind: 'delay', ms: /i0[01]/.test(r.key) ? 50 : 5000 } : undefined);
    proxy.onComplete = () => {
      // Once: a second Ctrl-C means "quit now".
      if (proxy.successfulPuts('processed').length >= 3 && proxy.onComplete) {
        proxy.onComplete = undefined;
        interruptedAt = Date.now();
        child?.kill('SIGINT');
      }
    };
    let interruptedAt = Infinity;
    const result = await cli(['s3://uploads/interrupt/', '--out', 's3://processed/interrupt/', '--json', '-j', '2'], { onSpawn: (c) => (child = c) });
    expect(result.code, result.stderr).toBe(130);
    // Downloads in progress were stopped, not waited for: the exit comes well before the 5 s hang ends.
    // Timed from the Ctrl-C, not from the spawn, so a slow start on a busy machine does not count.
    expect(Date.now() - interruptedAt).toBeLessThan(3500);
    const json = report(result);
    expect(json.failed).toBe(0);
    expect(json.processed).toBe(2);
    for (const file of json.files.filter((f) => f.status === 'skipped')) expect(file.reason).toBe('interrupted before it was processed');
    // Every object whose download had started (queued behind the slots, or running) is in the report,
    // and the counts add up to the files reported.
    const downloads = new Set(proxy.requests.filter((r) => r.op === 'get' && r.key.endsWith('.jpg')).map((r) => `s3://uploads/${r.key}`));
    expect(downloads.size).toBeGreaterThan(2);
    expect(json.files.map((f) => f.input)).toEqual(expect.arrayContaining([...downloads]));
    expect(json.processed + json.skipped + json.failed).toBe(json.files.length);
    expect(json.skipped).toBeGreaterThan(0);
    const written = (await listKeys(direct, 'processed', 'interrupt/')).map((k) => `s3://processed/${k.key}`).filter((k) => !k.endsWith('.img-pipeline.json'));
    const reported = json.files.filter((f) => f.status === 'processed').flatMap((f) => f.outputs.map((o) => o.path));
    expect(written.sort()).toEqual(reported.sort());
  });

  it('on Ctrl-C reports every object already listed, the unfinished ones as interrupted, so the counts add up', async () => {
    await Promise.all(Array.from({ length: 40 }, async (_, i) => putObject(direct, 'uploads', `counted/c${String(i).padStart(2, '0')}.jpg`, await image('jpeg', 64, 48, i))));
    let child: ChildProcess | undefined;
    proxy.rule = (r) => (r.op === 'get' && r.key.startsWith('counted/') ? { kind: 'delay', ms: 300 } : undefined);
    proxy.onComplete = (r) => {
      if (r.op === 'put' && r.key.startsWith('counted/thumb/') && proxy.onComplete) {
        proxy.onComplete = undefined;
        child?.kill('SIGINT');
      }
    };
    const result = await cli(['s3://uploads/counted/', '--out', 's3://processed/counted/', '--json', '-j', '1'], { onSpawn: (c) => (child = c) });
    expect(result.code, result.stderr).toBe(130);
    const json = report(result);
    expect(json.files).toHaveLength(40);
    expect(json.processed + json.skipped + json.failed).toBe(40);
    expect(json.failed).toBe(0);
    expect(json.processed).toBeLessThan(40);
    expect(json.files.filter((f) => f.status === 'skipped').every((f) => f.reason === 'interrupted before it was processed')).toBe(true);
  });

  it('stops after a few objects in a row cannot reach the store: one "unreachable" line, exit 1, the counts add up', async () => {
    await Promise.all(Array.from({ length: 20 }, async (_, i) => putObject(direct, 'uploads', `dying/d${String(i).padStart(2, '0')}.jpg`, await image('jpeg', 64, 48, i))));
    let dead = false;
    // Once two sources are written the server "dies": every request after that has its connection cut.
    proxy.onComplete = () => {
      if (outputPuts().filter((r) => r.key.startsWith('dying/')).length >= 4) dead = true;
    };
    proxy.rule = () => (dead ? { kind: 'cut-request' } : undefined);
    const result = await cli(['s3://uploads/dying/', '--out', 's3://processed/dying/', '--json', '-j', '1', '--max-attempts', '1', '--connections', '2']);
    expect(result.code, result.stderr).toBe(1);
    const json = report(result);
    expect(json.files).toHaveLength(20);
    expect(json.processed + json.skipped + json.failed).toBe(20);
    expect(json.interrupted).toBe(false);
    // Three in a row stop the run; downloads already in flight when the store died (they run ahead of the
    // decoder) fail too and are reported as such, but nothing new starts: some files are left unprocessed.
    expect(json.failed).toBeGreaterThanOrEqual(3);
    expect(json.files.filter((f) => f.status === 'failed').every((f) => f.code === 'S3_UNREACHABLE')).toBe(true);
    const left = json.files.filter((f) => f.status === 'skipped');
    expect(left.length).toBe(20 - json.processed - json.failed);
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((f) => f.reason === 'not processed: the run stopped because the S3 store was unreachable')).toBe(true);
    expect(json.error).toMatchObject({ code: 'S3_UNREACHABLE', message: expect.stringContaining(`${left.length} files were left unprocessed`) });
    expect(result.stderr.split('\n').filter((line) => line.includes('unreachable'))).toEqual([expect.stringMatching(/^img-pipeline: the run stopped early: the S3 store is unreachable \(3 files in a row failed: cannot reach the S3 endpoint/)]);
  });

  it('finishes the rest when a run killed halfway is started again', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `slow/p${String(i).padStart(2, '0')}.jpg`);
    await Promise.all(names.map(async (key, i) => putObject(direct, 'uploads', key, await image('jpeg', 100, 80, i))));
    const args = ['s3://uploads/slow/', '--out', 's3://processed/slow/', '--json', '-j', '1'];

    let child: ChildProcess | undefined;
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'delay', ms: 150 } : undefined);
    proxy.onComplete = () => {
      // State file plus both outputs of two sources, then pull the plug mid-run.
      if (proxy.successfulPuts('processed').length >= 5) child?.kill('SIGKILL');
    };
    const killed = await cli(args, { onSpawn: (c) => (child = c) });
    expect(killed.code).toBeNull();
    const done = outputPuts().length;
    expect(done).toBeGreaterThanOrEqual(4);
    expect(done).toBeLessThan(20);

    proxy.reset();
    const rerun = await cli(args);
    expect(rerun.code, rerun.stderr).toBe(0);
    const json = report(rerun);
    expect(json.processed + json.skipped).toBe(10);
    expect(json.skipped).toBeGreaterThanOrEqual(Math.floor(done / 2));
    expect(outputPuts().map((r) => r.key), JSON.stringify(json.files?.map((f) => [f.input, f.status]))).toHaveLength(json.processed * 2);
    expect((await listKeys(direct, 'processed', 'slow/')).filter((k) => !k.key.endsWith('.img-pipeline.json'))).toHaveLength(20);
  });
});

describe('listing', () => {
  const twelve = (prefix: string) =>
    Promise.all(Array.from({ length: 12 }, async (_, i) => putObject(direct, 'uploads', `${prefix}/p${String(i).padStart(2, '0')}.jpg`, await image('jpeg', 100, 80, i))));

  it('starts processing before the listing ends', async () => {
    await twelve('stream');
    const result = await cli(['s3://uploads/stream/', '--out', 's3://processed/stream/', '--json', '--s3-page-size', '2', '-j', '1']);
    expect(result.code, result.stderr).toBe(0);
    expect(report(result).processed).toBe(12);
    const lists = proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'uploads');
    expect(lists.length).toBeGreaterThanOrEqual(6);
    // The first download goes out while later pages are still being listed.
    const firstDownload = proxy.requests.find((r) => r.op === 'get' && r.bucket === 'uploads')!;
    expect(firstDownload.seq).toBeLessThan(Math.max(...lists.map((r) => r.seq)));
  });

  it('checks the source with the first page it lists from: no listing request of its own before it', async () => {
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/one-page/', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(report(result).processed).toBe(1);
    const lists = proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'uploads');
    expect(lists.map((r) => r.query.get('max-keys'))).toEqual([null]);
  });

  it('ends quietly on Ctrl-C during a listing: exit 130, the summary and the JSON report', async () => {
    await twelve('slowlist');
    let child: ChildProcess | undefined;
    let pages = 0;
    proxy.rule = (r) => {
      if (r.op !== 'list' || r.bucket !== 'uploads' || !r.query.get('continuation-token')) return undefined;
      pages += 1;
      // The second page hangs; Ctrl-C lands while the listing waits for it.
      if (pages === 1) setTimeout(() => {
        interruptedAt = Date.now();
        child?.kill('SIGINT');
      }, 300);
      return { kind: 'delay', ms: 3000 };
    };
    // Timed from the signal, not from the start: the run lock's requests come before the listing.
    let interruptedAt = Infinity;
    const result = await cli(['s3://uploads/slowlist/', '--out', 's3://processed/slowlist/', '--json', '--s3-page-size', '2', '-j', '1'], { onSpawn: (c) => (child = c) });
    expect(result.code, result.stderr).toBe(130);
    // Well before the hanging page (3 s) would have answered.
    expect(Date.now() - interruptedAt).toBeLessThan(2500);
    const json = report(result);
    expect(json.interrupted).toBe(true);
    expect(json.error).toBeUndefined();
    expect(json.failed).toBe(0);
    expect(json.processed + json.skipped).toBe(json.files.length);
    expect(result.stderr).toMatch(/Interrupted: \d+ processed, \d+ skipped, 0 failed/);
    expect(result.stderr).not.toMatch(/Abort/);
  });

  it('keeps the report when a listing fails midway: the error in it, the summary, exit 1', async () => {
    await twelve('listfail');
    let pages = 0;
    // Page 3 of the source listing always answers 503, through every retry.
    proxy.rule = (r) => (r.op === 'list' && r.bucket === 'uploads' && r.query.get('continuation-token') && ++pages >= 2 ? { kind: 'error', status: 503, code: 'SlowDown' } : undefined);
    const result = await cli(['s3://uploads/listfail/', '--out', 's3://processed/listfail/', '--json', '--s3-page-size', '2', '-j', '1', '--max-attempts', '2']);
    expect(result.code, result.stderr).toBe(1);
    const json = report(result);
    expect(json.error).toEqual({ code: 'S3_THROTTLED', message: expect.stringContaining('s3:ListBucket on s3://uploads/listfail/') });
    // The two pages listed before it were processed, and are reported.
    expect(json.processed).toBe(4);
    // In the order they finished: uploads run behind the decoder, side by side.
    expect(json.files.map((f) => f.input).sort()).toEqual(['p00', 'p01', 'p02', 'p03'].map((k) => `s3://uploads/listfail/${k}.jpg`));
    expect(outputPuts()).toHaveLength(8);
    expect(result.stderr).toMatch(/the run stopped early: SlowDown: s3:ListBucket/);
    expect(result.stderr).toMatch(/4 processed, 0 skipped, 0 failed/);
  });

  it('makes exactly --max-attempts attempts per request', async () => {
    proxy.rule = (r) => (r.op === 'list' ? { kind: 'error', status: 503, code: 'SlowDown' } : undefined);
    for (const attempts of [2, 3]) {
      proxy.requests.length = 0;
      const result = await cli(['s3://uploads/stream/', '--out', 's3://processed/attempts/', '--max-attempts', String(attempts)]);
      // The source's first listing never succeeded: the run could not start (exit 2).
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('SlowDown: s3:ListBucket on s3://uploads/stream/');
      // The source's listing (the destination's folders are asked for too, beside its state file).
      expect(proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'uploads')).toHaveLength(attempts);
    }
  });
});

describe('endpoints', () => {
  it('follows AWS_ENDPOINT_URL_S3 without --endpoint, with path-style addressing', async () => {
    const port = new URL(proxy.endpoint).port;
    const env = s3Env({ AWS_ENDPOINT_URL_S3: `http://localhost:${port}`, AWS_REGION: TEST_REGION });
    const result = await cli(['s3://uploads/uploads/2024/', '--out', 's3://processed/env-endpoint/', '--json'], { env, endpoint: false });
    expect(result.code, result.stderr).toBe(0);
    expect(report(result).files.flatMap((f) => f.outputs.map((o) => o.path))).toEqual(['s3://processed/env-endpoint/thumb/cat.jpg', 's3://processed/env-endpoint/medium/cat.jpg']);
    // Path-style: the bucket is in the path, never a subdomain of localhost.
    expect(proxy.requests.length).toBeGreaterThan(0);
    expect(new Set(proxy.requests.map((r) => r.headers['host']))).toEqual(new Set([`localhost:${port}`]));
    expect(new Set(proxy.requests.map((r) => r.bucket))).toEqual(new Set(['uploads', 'processed']));
  });

  it('names the variable, not --endpoint, when the endpoint from AWS_ENDPOINT_URL_S3 cannot be reached', async () => {
    const env = s3Env({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1', AWS_REGION: TEST_REGION });
    const result = await cli(['s3://uploads/uploads/', '--out', 's3://processed/x/', '--max-attempts', '1'], { env, endpoint: false });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('img-pipeline: cannot reach the S3 endpoint http://127.0.0.1:1 (ECONNREFUSED); check AWS_ENDPOINT_URL_S3 and the network\n');
  });

  it('refuses an --endpoint without http:// or https:// with exit 2, before any request', async () => {
    const result = await cli(['s3://uploads/uploads/', '--out', 's3://processed/x/', '--endpoint', 'localhost:9000', '--region', TEST_REGION], { endpoint: false });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('s3.endpoint: expected an http:// or https:// URL, such as http://127.0.0.1:9000, received "localhost:9000"');
    expect(proxy.requests).toEqual([]);
  });
});

describe('mixed inputs', () => {
  it('skips an empty S3 object as a placeholder but fails an empty local file, in the same run', async () => {
    const input = join(work, 'mixed');
    await mkdir(input, { recursive: true });
    await writeFile(join(input, 'local-empty.jpg'), '');
    await writeFile(join(input, 'local.jpg'), await image('jpeg'));
    await putObject(direct, 'uploads', 'mixed/s3-empty.jpg', '');
    await putObject(direct, 'uploads', 'mixed/s3.jpg', await image('jpeg'));
    const result = await cli([input, 's3://uploads/mixed/', '--out', 's3://processed/mixed/', '--json']);
    expect(result.code, result.stderr).toBe(1);
    const json = report(result);
    const byInput = Object.fromEntries(json.files.map((f) => [f.input, f]));
    expect(byInput['s3://uploads/mixed/s3-empty.jpg']).toMatchObject({ status: 'skipped', reason: 'empty object' });
    expect(byInput[join(input, 'local-empty.jpg')]).toMatchObject({ status: 'failed', code: 'INPUT_EMPTY' });
    expect([json.processed, json.skipped, json.failed]).toEqual([2, 1, 1]);
  });
});

describe('unsafe keys', () => {
  it('never writes outside --out for keys with "..", "." or empty segments (S3 -> local)', async () => {
    // s3rver keeps objects as files, so these keys come from a stand-in that only lists and serves.
    const jpeg = await image('jpeg');
    const keys = ['in/ok.jpg', 'in/../../escaped.jpg', 'in/a/../../../../escaped2.jpg', 'in//double.jpg', 'in/./dot.jpg'];
    const fake = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.searchParams.get('list-type') === '2') {
        const contents = keys.map((k) => `<Contents><Key>${k}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"e"</ETag><Size>${jpeg.length}</Size></Contents>`).join('');
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0"?><ListBucketResult><Name>b</Name><Prefix>in/</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
        return;
      }
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length, etag: '"e"' });
      res.end(jpeg);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const base = await makeTempDir();
      const out = join(base, 'deep', 'out');
      const result = await cli(['s3://b/in/', '--out', out, '--json'], { endpoint: `http://127.0.0.1:${(fake.address() as AddressInfo).port}` });
      expect(result.code, result.stderr).toBe(1);
      const json = report(result);
      expect(json.processed).toBe(1);
      const failed = json.files.filter((f) => f.status === 'failed');
      expect(failed.map((f) => `${f.code} ${f.input}`).sort()).toEqual(keys.slice(1).map((k) => `UNSAFE_KEY s3://b/${k}`).sort());
      expect(failed.find((f) => f.input.endsWith('/escaped.jpg'))!.error).toContain('".." segment');
      expect(await listOutputFiles(base)).toEqual(['deep/out/.img-pipeline.json', 'deep/out/medium/ok.jpg', 'deep/out/thumb/ok.jpg']);
    } finally {
      fake.close();
    }
  });
});

describe('S3 -> S3 with --sidecar', () => {
  it('writes meta/<key>.json beside the variants, marked and typed as JSON, and a rerun lists meta/ and writes nothing', async () => {
    const args = ['s3://uploads/uploads/', '--out', 's3://processed/sc/', '--json', '--sidecar', '--max-file-size', '200KB', '--s3-page-size', '3'];
    const first = await cli(args);
    const files = report(first).files as (RunReport['files'][number] & { placeholder?: { thumbhash: string } })[];
    const cat = files.find((f) => f.input === 's3://uploads/uploads/2024/cat.PNG')!;
    expect(cat).toMatchObject({ status: 'processed', sidecar: 's3://processed/sc/meta/2024/cat.PNG.json' });
    const head = await headObject(direct, 'processed', 'sc/meta/2024/cat.PNG.json');
    expect(head.ContentType).toBe('application/json');
    expect(head.Metadata?.[OUTPUT_MARKER]).toBe('true');
    const sidecar = JSON.parse((await getObject(direct, 'processed', 'sc/meta/2024/cat.PNG.json')).toString('utf8'));
    expect(sidecar).toMatchObject({ source: { key: '2024/cat.PNG', width: 200, height: 100, aspectRatio: 2 }, placeholder: { thumbhash: cat.placeholder!.thumbhash } });
    expect(sidecar.outputs.map((o: { key: string }) => o.key)).toEqual(['thumb/2024/cat.jpg', 'medium/2024/cat.jpg']);
    expect((await listKeys(direct, 'processed', 'sc/meta/')).map((k) => k.key).sort()).toEqual(['sc/meta/2024/cat.PNG.json', 'sc/meta/a/b/deep.webp.json', 'sc/meta/my photo é+1.jpg.json']);

    proxy.reset();
    const rerun = await cli(args);
    expect(report(rerun)).toMatchObject({ processed: 0, skipped: 6 });
    expect(proxy.requests.filter((r) => r.method === 'PUT' && !r.key.endsWith(LOCK_KEY))).toEqual([]);
    const prefixes = new Set(proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'processed').map((r) => r.query.get('prefix')));
    expect([...prefixes].sort()).toEqual(['sc/medium/', 'sc/meta/', 'sc/thumb/']);
  });
});
