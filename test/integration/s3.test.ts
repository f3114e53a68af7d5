import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_MARKER, SOURCE_ETAG_METADATA, SOURCE_KEY_METADATA } from '../../src/pipeline/layout.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { BIN } from '../helpers/paths.js';
import { getObject, headObject, listKeys, putObject, s3Env, startS3Server, testClient, TEST_REGION, type S3Server } from '../helpers/s3-server.js';
import { listFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

interface JsonOutput {
  variant: string;
  format: string;
  path: string;
  width?: number;
  height?: number;
  bytes?: number;
}
interface JsonReport {
  processed: number;
  skipped: number;
  failed: number;
  planned: number;
  bytesTransferred?: number;
  files: { input: string; status: string; error?: string; code?: string; reason?: string; outputs: JsonOutput[] }[];
}
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

  it('writes nothing on a rerun (one listing of the destination, no HEADs), and --force redoes everything', async () => {
    const rerun = await cli(args);
    expect(rerun.code).toBe(1); // the two bad objects still fail
    expect(report(rerun)).toMatchObject({ processed: 0, skipped: 6, failed: 2 });
    expect(proxy.requests.filter((r) => r.method === 'PUT')).toEqual([]);
    expect(proxy.requests.filter((r) => r.op === 'head')).toEqual([]);
    expect(proxy.requests.filter((r) => r.op === 'list' && r.bucket === 'processed')).toHaveLength(1);

    proxy.reset();
    const forced = await cli([...args, '--force']);
    expect(report(forced)).toMatchObject({ processed: 3, failed: 2 });
    expect(proxy.successfulPuts('processed')).toHaveLength(12);
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
    expect(proxy.requests.filter((r) => r.op === 'get')).toEqual([]);
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

describe('S3 and local folders', () => {
  it('backfills S3 -> local with the same layout, reporting s3:// inputs', async () => {
    const out = join(work, 'from-s3');
    const result = await cli(['s3://uploads/uploads/2024/', 's3://uploads/uploads/a', '--out', out, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const json = report(result);
    expect(json.files.map((f) => f.input).sort()).toEqual(['s3://uploads/uploads/2024/cat.PNG', 's3://uploads/uploads/a/b/deep.webp']);
    expect(json.files[0]!.outputs[0]!.path.startsWith(out)).toBe(true);
    expect(await listFiles(out)).toEqual(['.img-pipeline.json', 'medium/b/deep.jpg', 'medium/cat.jpg', 'thumb/b/deep.jpg', 'thumb/cat.jpg']);
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
    expect((await headObject(direct, 'processed', 'from-local/thumb/2024/été+plage 1.jpg')).Metadata?.[OUTPUT_MARKER]).toBe('true');

    proxy.reset();
    const rerun = await cli(args);
    expect(report(rerun)).toMatchObject({ processed: 0, skipped: 2 });
    expect(proxy.requests.filter((r) => r.method === 'PUT')).toEqual([]);
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
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^img-pipeline: cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\).*\n$/);

    proxy.reset();
    proxy.rule = () => ({ kind: 'error', status: 301, code: 'PermanentRedirect', headers: { 'x-amz-bucket-region': 'eu-west-1' }, extra: { Endpoint: 'uploads.s3.eu-west-1.amazonaws.com' } });
    const region = await cli(['s3://uploads/uploads/', '--out', 's3://processed/x/']);
    expect(region.code).toBe(2);
    expect(region.stderr).toMatch(/^img-pipeline: the bucket uploads is in another region .*--region eu-west-1\n$/);
    expect(await listKeys(direct, 'processed', 'x/')).toEqual([]);
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
    const puts = proxy.successfulPuts('processed').map((r) => r.key).filter((k) => !k.endsWith('.img-pipeline.json')).sort();
    const expected = names.flatMap((k) => ['thumb', 'medium'].map((v) => `faults/${v}/${k.slice('faults/'.length)}`)).sort();
    expect(puts).toEqual(expected);
    expect((await listKeys(direct, 'processed', 'faults/')).map((k) => k.key).filter((k) => !k.endsWith('.img-pipeline.json'))).toEqual(expected);
    // The faults did happen.
    expect(proxy.requests.filter((r) => r.fault === 'cut-response')).toHaveLength(3);
    expect(proxy.requests.filter((r) => r.fault === 'cut-request')).toHaveLength(3);
  });

  it('on Ctrl-C finishes the images in flight, fails none and leaves only whole outputs', async () => {
    await Promise.all(Array.from({ length: 12 }, async (_, i) => putObject(direct, 'uploads', `interrupt/i${String(i).padStart(2, '0')}.jpg`, await image('jpeg', 100, 80, i))));
    let child: ChildProcess | undefined;
    // The first two downloads are quick, the rest hang: Ctrl-C comes while later images wait on them.
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'delay', ms: /i0[01]/.test(r.key) ? 50 : 5000 } : undefined);
    proxy.onComplete = () => {
      // Once: a second Ctrl-C means "quit now".
      if (proxy.successfulPuts('processed').length >= 3 && proxy.onComplete) {
        proxy.onComplete = undefined;
        child?.kill('SIGINT');
      }
    };
    const started = Date.now();
    const result = await cli(['s3://uploads/interrupt/', '--out', 's3://processed/interrupt/', '--json', '-j', '2'], { onSpawn: (c) => (child = c) });
    expect(result.code, result.stderr).toBe(130);
    // Downloads in progress were stopped, not waited for.
    expect(Date.now() - started).toBeLessThan(4500);
    const json = report(result);
    expect(json.failed).toBe(0);
    expect(json.processed).toBe(2);
    for (const file of json.files.filter((f) => f.status === 'skipped')) expect(file.reason).toBe('interrupted before it was processed');
    const written = (await listKeys(direct, 'processed', 'interrupt/')).map((k) => `s3://processed/${k.key}`).filter((k) => !k.endsWith('.img-pipeline.json'));
    const reported = json.files.filter((f) => f.status === 'processed').flatMap((f) => f.outputs.map((o) => o.path));
    expect(written.sort()).toEqual(reported.sort());
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
    const done = proxy.successfulPuts('processed').filter((r) => !r.key.endsWith('.img-pipeline.json')).length;
    expect(done).toBeGreaterThanOrEqual(4);
    expect(done).toBeLessThan(20);

    proxy.reset();
    const rerun = await cli(args);
    expect(rerun.code, rerun.stderr).toBe(0);
    const json = report(rerun);
    expect(json.processed + json.skipped).toBe(10);
    expect(json.skipped).toBeGreaterThanOrEqual(Math.floor(done / 2));
    expect(proxy.successfulPuts('processed')).toHaveLength(json.processed * 2);
    expect((await listKeys(direct, 'processed', 'slow/')).filter((k) => !k.key.endsWith('.img-pipeline.json'))).toHaveLength(20);
  });
});
