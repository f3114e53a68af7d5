import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildLambdaPackage, LAMBDA_LIMITS, packageFingerprint, type LambdaPackage } from '../../src/deploy/package.js';
import { STORED_MARKS_DIR } from '../../src/lambda/stored-marks.js';
import { CONTENT_TYPES, OUTPUT_MARKER, outputKey } from '../../src/pipeline/layout.js';
import { preparePipeline, processImage } from '../../src/pipeline/process.js';
import { runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startSnsStub, runLambda, unzipTo, type SnsStub, type ZipEntryInfo } from '../helpers/lambda.js';
import { BIN, fixture, REPO_ROOT } from '../helpers/paths.js';
import { readPixels, type Pixels } from '../helpers/pixels.js';
import { createBucket, getObject, headObject, listKeys, putObject, s3Env, startS3Server, testClient, type S3Server } from '../helpers/s3-server.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

/**
 * The zip is built from this machine's own sharp (no network), which runs only where that build is the
 * Lambda's: Linux, x64, glibc. Elsewhere these tests are skipped rather than failed.
 */
const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
const HOST_FITS = process.platform === 'linux' && process.arch === 'x64' && glibc !== undefined;
const SKIPPED = HOST_FITS ? '' : ` (skipped: needs a linux-x64 glibc host to copy its sharp into the zip; this is ${process.platform}-${process.arch}${glibc ? '' : ' without glibc'})`;

const UPLOADS = 'uploads-bkt';
const PROCESSED = 'processed-bkt';
const SOURCE_PREFIX = 'uploads/';
const PROCESSED_PREFIX = 'site/';
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:img-events';
const WATERMARK = '© Acme';

let config: Config;
let pkg: LambdaPackage;
let entries: ZipEntryInfo[];
let fnDir: string;
let work: string;
let s3server: S3Server;
let sns: SnsStub;
let client: S3Client;
let proxy: FaultProxy;
let env: NodeJS.ProcessEnv;
let sample: { Records: S3EventRecord[] };
let events = 0;

interface S3EventRecord {
  s3: { bucket: { name: string; arn: string }; object: { key: string; size: number; eTag: string } };
  [field: string]: unknown;
}

const md5 = (body: Buffer | string) => createHash('md5').update(body).digest('hex');

/**
 * An S3 notification record shaped like the sample event in fixtures/events/s3-put.json (AWS's own
 * sample, with our bucket and key), for another object: the key encoded the way S3 encodes it ('+' for a
 * space), and the ETag bare, without the quotes HTTP puts around it.
 */
function s3Record(bucket: string, key: string, body: Buffer | string): S3EventRecord {
  const record = structuredClone(sample.Records[0]!);
  record.s3.bucket = { ...record.s3.bucket, name: bucket, arn: `arn:aws:s3:::${bucket}` };
  record.s3.object = { ...record.s3.object, key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'), size: Buffer.byteLength(body), eTag: md5(body) };
  return record;
}

/**
 * What S3 holds now, by "bucket/key": its ETag as HTTP quotes it. s3rver ignores If-Match, so the proxy
 * in front of it answers 412 PreconditionFailed, as S3 does, when a GET's If-Match is not exactly this.
 */
const current = new Map<string, string>();

async function put(bucket: string, key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> {
  await putObject(client, bucket, key, body, metadata);
  current.set(`${bucket}/${key}`, `"${md5(body)}"`);
}

function invoke(event: unknown) {
  events += 1;
  return runLambda(fnDir, event, env, join(work, `event-${events}.json`));
}

/** Where a marked image differs clearly from the same image unmarked: the count and bounding box. */
function inkBox(marked: Pixels, plain: Pixels): { count: number; left: number; top: number; right: number; bottom: number } {
  const box = { count: 0, left: Infinity, top: Infinity, right: -1, bottom: -1 };
  for (let y = 0; y < marked.height; y++) {
    for (let x = 0; x < marked.width; x++) {
      const p = marked.at(x, y);
      const q = plain.at(x, y);
      if (Math.abs(p[0]! - q[0]!) + Math.abs(p[1]! - q[1]!) + Math.abs(p[2]! - q[2]!) <= 60) continue;
      box.count += 1;
      box.left = Math.min(box.left, x);
      box.top = Math.min(box.top, y);
      box.right = Math.max(box.right, x);
      box.bottom = Math.max(box.bottom, y);
    }
  }
  return box;
}

beforeAll(async () => {
  if (!HOST_FITS) return;
  sample = JSON.parse(await readFile(fixture('events/s3-put.json'), 'utf8')) as { Records: S3EventRecord[] };
  config = validateConfig({ watermark: { text: WATERMARK } }, 'test');
  // As in `img-pipeline deploy`, whose main() sets it: the text mark stored in the zip is rendered with the
  // CLI's fontconfig (this machine's has hinting rules that change the glyphs' edges).
  process.env['FONTCONFIG_FILE'] ??= join(REPO_ROOT, 'assets', 'fonts.conf');
  // x86_64: this host's own sharp build is copied, so the test needs no network.
  pkg = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'host', env: process.env });
  fnDir = await makeTempDir('img-pipeline-fn-');
  work = await makeTempDir('img-pipeline-lambda-work-');
  entries = await unzipTo(pkg.zip, fnDir);

  s3server = await startS3Server();
  sns = await startSnsStub();
  client = testClient(s3server.endpoint);
  proxy = await startFaultProxy(s3server.endpoint);
  proxy.rule = (request) => {
    const ifMatch = request.headers['if-match'];
    const now = current.get(`${request.bucket}/${request.key}`);
    if (request.op !== 'get' || ifMatch === undefined || now === undefined || ifMatch === now) return undefined;
    return { kind: 'error', status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' };
  };
  await createBucket(client, UPLOADS);
  await createBucket(client, PROCESSED);

  // No system fonts: text must render with the bundled font alone.
  const emptyFonts = join(work, 'fonts.conf');
  await writeFile(emptyFonts, '<?xml version="1.0"?>\n<fontconfig></fontconfig>\n');
  env = s3Env({
    AWS_REGION: 'us-east-1',
    // Through the proxy: it records each request, and enforces If-Match.
    AWS_ENDPOINT_URL_S3: proxy.endpoint,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    PROCESSED_BUCKET: PROCESSED,
    PROCESSED_PREFIX,
    SOURCE_PREFIX,
    SNS_TOPIC_ARN: TOPIC,
    FONTCONFIG_FILE: emptyFonts,
    FONTCONFIG_PATH: work,
    NODE_NO_WARNINGS: '1',
  });
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await s3server?.stop();
  await sns?.stop();
  await removeTempDirs();
});

describe.skipIf(!HOST_FITS)(`the Lambda zip${SKIPPED}`, () => {
  it('holds index.mjs, the config, the font and sharp for linux-x64, sorted, without symlinks, with fixed times and modes', () => {
    const names = entries.map((e) => e.name);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(names).toEqual(expect.arrayContaining([
      'index.mjs', 'config.json', 'fonts/DejaVuSans-Bold.ttf', 'fonts/fonts.conf',
      // The text mark, rendered at package time (one raster per number of lines "© Acme" can take).
      `${STORED_MARKS_DIR}/marks.json`, `${STORED_MARKS_DIR}/1-lines.rgba`, `${STORED_MARKS_DIR}/2-lines.rgba`,
      'node_modules/sharp/package.json', 'node_modules/@img/sharp-linux-x64/package.json',
      // The HEIC decoder, loaded on the first HEIC only: the WASM build, not the asm.js or base64 ones.
      'node_modules/libheif-js/libheif-wasm/libheif.js', 'node_modules/libheif-js/libheif-wasm/libheif.wasm',
    ]));
    expect(names.filter((n) => n.startsWith('node_modules/libheif-js/'))).toHaveLength(5);
    expect(names.some((n) => n.startsWith('node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.so'))).toBe(true);
    expect(names.some((n) => n.includes('/.bin/') || n.endsWith('.d.ts'))).toBe(false);
    for (const entry of entries) {
      expect((entry.mode & 0o170000).toString(8), entry.name).toBe('100000');
      expect(entry.mode & 0o777).toBe(0o644);
      expect(entry.mtime.getFullYear()).toBe(1980);
    }
    expect(pkg.zippedBytes).toBeLessThanOrEqual(LAMBDA_LIMITS.zipped);
    expect(pkg.unzippedBytes).toBeLessThanOrEqual(LAMBDA_LIMITS.unzipped);
    expect(pkg.sharpFrom).toBe('host');
  });

  it('bundles only the handler\'s code: no deploy or backfill code, and the SNS client in a chunk of its own', async () => {
    const code = entries.filter((e) => e.name === 'index.mjs' || e.name.startsWith('chunks/')).map((e) => e.name);
    const texts = await Promise.all(code.map(async (name) => ({ name, text: await readFile(join(fnDir, name), 'utf8') })));
    // Error codes only src/deploy and src/backfill throw, and the bundler deploy runs.
    for (const { name, text } of texts) expect(text, name).not.toMatch(/PACKAGE_BUNDLE_FAILED|BACKFILL_REFUSED|esbuild/);
    expect(texts.filter((t) => t.text.includes('PublishCommand')).map((t) => t.name)).toEqual([expect.stringMatching(/^chunks\/publish-[A-Z0-9]+\.mjs$/)]);
    // zod (the config schema) only in the chunk that WATERMARK_TEXT loads.
    expect(texts.filter((t) => t.text.includes('ZodError')).map((t) => t.name)).toEqual([expect.stringMatching(/^chunks\/load-[A-Z0-9]+\.mjs$/)]);
    // Only the S3 operations the handler sends have their schemas in the bundle (the SDK has ~100), while
    // S3's error classes stay registered, so a missing object is still told apart as NoSuchKey.
    const all = texts.map((t) => t.text).join('\n');
    expect(all).toContain('HeadObjectOutput');
    expect(all).toContain('"NoSuchKey"');
    for (const unused of ['PutBucketLifecycleConfiguration', 'SelectObjectContent', 'CreateMultipartUpload', 'waitUntilObjectExists']) expect(all).not.toContain(unused);
    // Credentials from the environment only (src/lambda/env-credentials.ts): none of the default chain's
    // other providers, nor the STS and SSO clients they bring, whose shared code split the bundle.
    for (const provider of ['fromIni', 'fromSSO', 'fromProcess', 'fromTokenFile', 'fromContainerMetadata', 'STSClient', 'SSOOIDCClient']) expect(all).not.toContain(`"${provider}"`);
  });

  it('bundles the config the user deployed with, as the schema gave it back (so the handler need not validate it)', async () => {
    const bundled = JSON.parse(await readFile(join(fnDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(validateConfig(bundled, 'bundled')).toEqual(bundled);
    expect(bundled).toMatchObject({ watermark: { text: WATERMARK }, concurrency: 1 });
  });

  it('is deterministic: an unchanged rebuild has the same SHA-256 (so CodeSha256 skips the upload)', async () => {
    const again = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'host', env: process.env });
    expect(again.sha256).toBe(pkg.sha256);
    expect(again.zip.equals(pkg.zip)).toBe(true);
    const other = await buildLambdaPackage({ config: validateConfig({ quality: 70 }, 'test'), arch: 'x86_64', sharp: 'host', env: process.env });
    expect(other.sha256).not.toBe(pkg.sha256);
  });

  it('reports its SHA-256 in base64, the form Lambda compares as CodeSha256 (not hex)', () => {
    expect(pkg.sha256).toBe(createHash('sha256').update(pkg.zip).digest('base64'));
  });

  it('knows the bundled config\'s fingerprint without a build, for a dry run without credentials', async () => {
    expect(await packageFingerprint(config)).toBe(pkg.fingerprint);
  });
});

describe.skipIf(!HOST_FITS)(`index.handler, unpacked and run in its own node process against loopback S3 and SNS${SKIPPED}`, () => {
  it('processes several records into the CLI layout with Content-Type, Cache-Control and the marker, and publishes JSON', async () => {
    const landscape = await readFile(fixture('images/landscape.jpg'));
    const portrait = await readFile(fixture('images/2024/portrait.jpg'));
    await put(UPLOADS, 'uploads/landscape.jpg', landscape);
    await put(UPLOADS, 'uploads/2024/my photo+1.jpg', portrait);
    await put(UPLOADS, 'uploads/notes.txt', 'not an image');
    await put(UPLOADS, 'uploads/empty.jpg', Buffer.alloc(0));
    await put(UPLOADS, 'uploads/folder/', Buffer.alloc(0));
    sns.messages.length = 0;
    proxy.requests.length = 0;

    // The sample event as it is on disk: its size and ETag are those of the landscape fixture.
    const [upload] = sample.Records;
    expect(upload!.s3.object).toMatchObject({ key: 'uploads/landscape.jpg', size: landscape.length, eTag: md5(landscape) });
    const run = await invoke({ Records: [
      upload,
      s3Record(UPLOADS, 'uploads/2024/my photo+1.jpg', portrait),
      s3Record(UPLOADS, 'uploads/notes.txt', 'not an image'),
      s3Record(UPLOADS, 'uploads/empty.jpg', Buffer.alloc(0)),
      s3Record(UPLOADS, 'uploads/folder/', Buffer.alloc(0)),
    ] });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // Each image was read only in the version its event announced: If-Match with the event's ETag, quoted.
    const gets = proxy.requests.filter((r) => r.op === 'get' && r.bucket === UPLOADS);
    expect(gets.map((r) => [r.key, r.headers['if-match']])).toEqual([
      ['uploads/landscape.jpg', `"${md5(landscape)}"`],
      ['uploads/2024/my photo+1.jpg', `"${md5(portrait)}"`],
    ]);
    expect(gets.map((r) => r.status)).toEqual([200, 200]);

    const expected = ['landscape.jpg', '2024/my photo+1.jpg'].flatMap((rel) =>
      ['thumb', 'medium'].map((variant) => `${PROCESSED_PREFIX}${outputKey(rel, variant, 'jpeg')}`));
    const keys = (await listKeys(client, PROCESSED, PROCESSED_PREFIX)).map((k) => k.key);
    expect(keys).toEqual([...expected].sort());
    for (const key of expected) {
      const head = await headObject(client, PROCESSED, key);
      expect(head.ContentType).toBe(CONTENT_TYPES.jpeg);
      expect(head.CacheControl).toBe(config.s3.cacheControl);
      expect(head.Metadata?.[OUTPUT_MARKER]).toBe('true');
    }

    // One JSON log line per record, plus the cold start's.
    const records = run.logs.filter((l) => l['status'] !== 'init');
    expect(records.map((l) => [l['key'], l['status']])).toEqual([
      ['uploads/landscape.jpg', 'processed'],
      ['uploads/2024/my photo+1.jpg', 'processed'],
      ['uploads/notes.txt', 'ignored'],
      ['uploads/empty.jpg', 'skipped'],
      ['uploads/folder/', 'skipped'],
    ]);
    expect(records[0]).toMatchObject({ bytes: landscape.length, outputs: expected.slice(0, 2) });
    expect(typeof records[0]!['ms']).toBe('number');
    expect(run.logs.find((l) => l['status'] === 'init')).toMatchObject({ fingerprint: pkg.fingerprint, watermark: 'stored' });

    // Processed records only, one message each, success with every output.
    expect(sns.messages).toHaveLength(2);
    expect(sns.messages[0]!.topicArn).toBe(TOPIC);
    const message = sns.messages[0]!.message as { status: string; source: unknown; outputs: Record<string, unknown>[] };
    expect(message.status).toBe('processed');
    expect(message.source).toEqual({ bucket: UPLOADS, key: 'uploads/landscape.jpg' });
    expect(message.outputs).toHaveLength(2);
    const thumb = message.outputs[0]!;
    expect(thumb).toMatchObject({ variant: 'thumb', format: 'jpeg', bucket: PROCESSED, key: expected[0] });
    const thumbPixels = await readPixels(await getObject(client, PROCESSED, expected[0]!));
    expect([thumb['width'], thumb['height']]).toEqual([thumbPixels.width, thumbPixels.height]);
    expect(thumb['bytes']).toBe((await headObject(client, PROCESSED, expected[0]!)).ContentLength);
  });

  it('renders the watermark with the bundled font alone, pixel for pixel the same as the CLI', async () => {
    const fromLambda = await readPixels(await getObject(client, PROCESSED, `${PROCESSED_PREFIX}medium/landscape.jpg`));
    // The real CLI, in its own process with its own (shipped) fontconfig, on the same input and settings.
    const out = await makeTempDir('img-pipeline-cli-twin-');
    const cli = await runCli([fixture('images/landscape.jpg'), '--out', out, '--watermark', WATERMARK, '--quiet'], { cwd: out });
    expect(cli.code, cli.stderr).toBe(0);
    const fromCli = await readPixels(join(out, 'medium', 'landscape.jpg'));
    expect([fromLambda.width, fromLambda.height]).toEqual([fromCli.width, fromCli.height]);
    expect(fromLambda.data.equals(fromCli.data)).toBe(true);
    // And the mark is really there: a missing font lights far fewer pixels (the issue saw 180 instead of 643).
    const input = await readFile(fixture('images/landscape.jpg'));
    const plain = await readPixels((await processImage(input, await preparePipeline({ ...config, watermark: null }))).find((o) => o.variant === 'medium')!.data);
    const ink = inkBox(fromLambda, plain);
    expect(ink.count).toBeGreaterThan(500);
    // Bottom-right, the default position.
    expect(ink.left).toBeGreaterThan(fromLambda.width / 2);
    expect(ink.top).toBeGreaterThan(fromLambda.height / 2);
  });

  it('with WATERMARK_TEXT, renders that text at init (the stored mark is the bundled text\'s), as the CLI does', async () => {
    const text = 'Other Studio';
    const jpeg = await readFile(fixture('images/landscape.jpg'));
    await put(UPLOADS, 'uploads/env-text.jpg', jpeg);
    const run = await runLambda(fnDir, { Records: [s3Record(UPLOADS, 'uploads/env-text.jpg', jpeg)] }, { ...env, WATERMARK_TEXT: text }, join(work, 'event-env-text.json'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.logs.find((l) => l['status'] === 'init')?.['watermark']).toBe('rendered');
    const out = await makeTempDir('img-pipeline-cli-env-text-');
    const cli = await runCli([fixture('images/landscape.jpg'), '--out', out, '--watermark', text, '--quiet'], { cwd: out });
    expect(cli.code, cli.stderr).toBe(0);
    for (const variant of ['thumb', 'medium']) {
      const fromLambda = await readPixels(await getObject(client, PROCESSED, `${PROCESSED_PREFIX}${variant}/env-text.jpg`));
      const fromCli = await readPixels(join(out, variant, 'landscape.jpg'));
      expect(fromLambda.data.equals(fromCli.data), variant).toBe(true);
    }
  });

  it('draws the stored mark it was deployed with: stored blank rasters give unmarked outputs', async () => {
    const blank = await makeTempDir('img-pipeline-fn-blank-mark-');
    await cp(fnDir, blank, { recursive: true });
    const dir = join(blank, STORED_MARKS_DIR);
    for (const name of await readdir(dir)) {
      if (name.endsWith('.rgba')) await writeFile(join(dir, name), Buffer.alloc((await readFile(join(dir, name))).length));
    }
    const jpeg = await readFile(fixture('images/landscape.jpg'));
    await put(UPLOADS, 'uploads/blank-mark.jpg', jpeg);
    const run = await runLambda(blank, { Records: [s3Record(UPLOADS, 'uploads/blank-mark.jpg', jpeg)] }, env, join(work, 'event-blank-mark.json'));
    expect(run.code, run.stderr).toBe(0);
    expect(run.logs.find((l) => l['status'] === 'init')?.['watermark']).toBe('stored');
    const plain = (await processImage(jpeg, await preparePipeline({ ...config, watermark: null }))).find((o) => o.variant === 'medium')!;
    const fromLambda = await readPixels(await getObject(client, PROCESSED, `${PROCESSED_PREFIX}medium/blank-mark.jpg`));
    expect(fromLambda.data.equals((await readPixels(plain.data)).data)).toBe(true);
  });

  /**
   * The unpacked zip without the chunk named `prefix`-*, run on one new upload with `without` (where it must
   * process it) and again with `needing` (where it must fail to start, naming the chunk: the deletion was real).
   */
  async function runWithoutChunk(prefix: string, name: string, without: NodeJS.ProcessEnv, needing: NodeJS.ProcessEnv): Promise<void> {
    const bare = await makeTempDir(`img-pipeline-fn-no-${prefix}`);
    await cp(fnDir, bare, { recursive: true });
    const chunk = (await readdir(join(bare, 'chunks'))).find((file) => file.startsWith(`${prefix}-`));
    expect(chunk).toBeDefined();
    await rm(join(bare, 'chunks', chunk!));
    const jpeg = await readFile(fixture('images/landscape.jpg'));
    await put(UPLOADS, `uploads/${name}.jpg`, jpeg);
    const event = { Records: [s3Record(UPLOADS, `uploads/${name}.jpg`, jpeg)] };
    const run = await runLambda(bare, event, without, join(work, `event-${name}.json`));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.logs.find((l) => l['key'] === `uploads/${name}.jpg`)?.['status']).toBe('processed');
    const failing = await runLambda(bare, event, needing, join(work, `event-${name}-needing.json`));
    expect(failing.code).not.toBe(0);
    expect(failing.stderr).toMatch(new RegExp(`${prefix}-`));
  }

  it('without SNS_TOPIC_ARN, never loads the SNS client: it runs with the chunk that holds it deleted', async () => {
    await runWithoutChunk('publish', 'no-topic', { ...env, SNS_TOPIC_ARN: '' }, env);
  });

  it('never loads zod at a cold start without WATERMARK_TEXT (which the schema validates): it runs with the schema\'s chunk deleted', async () => {
    await runWithoutChunk('load', 'no-zod', env, { ...env, WATERMARK_TEXT: 'Other' });
  });

  it('takes its credentials from the environment, where the Lambda runtime puts them, and from nowhere else', async () => {
    const jpeg = await readFile(fixture('images/landscape.jpg'));
    await put(UPLOADS, 'uploads/env-credentials.jpg', jpeg);
    const event = { Records: [s3Record(UPLOADS, 'uploads/env-credentials.jpg', jpeg)] };
    // Valid keys in a shared credentials file, which the SDK's default chain would have found.
    const file = join(work, 'aws-credentials-lambda');
    await writeFile(file, `[default]\naws_access_key_id = ${env['AWS_ACCESS_KEY_ID']}\naws_secret_access_key = ${env['AWS_SECRET_ACCESS_KEY']}\n`);
    const run = await runLambda(fnDir, event, { ...env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SHARED_CREDENTIALS_FILE: file }, join(work, 'event-env-credentials.json'));
    expect(run.code).not.toBe(0);
    expect(run.logs.find((l) => l['key'] === 'uploads/env-credentials.jpg')).toMatchObject({ status: 'failed', code: 'S3_NO_CREDENTIALS' });
    expect((await listKeys(client, PROCESSED)).filter((o) => o.key.includes('env-credentials'))).toEqual([]);
  });

  it('ignores its own outputs: keys under PROCESSED_PREFIX in PROCESSED_BUCKET, and objects carrying the marker', async () => {
    const output = await getObject(client, PROCESSED, `${PROCESSED_PREFIX}thumb/landscape.jpg`);
    await put(UPLOADS, 'uploads/copied-output.jpg', output, { [OUTPUT_MARKER]: 'true' });
    const before = await listKeys(client, PROCESSED);
    sns.messages.length = 0;
    const run = await invoke({ Records: [
      s3Record(PROCESSED, `${PROCESSED_PREFIX}thumb/landscape.jpg`, output),
      s3Record(UPLOADS, 'uploads/copied-output.jpg', output),
    ] });
    expect(run.code).toBe(0);
    expect(await listKeys(client, PROCESSED)).toEqual(before);
    expect(sns.messages).toHaveLength(0);
    expect(run.logs.filter((l) => l['status'] !== 'init').map((l) => l['status'])).toEqual(['ignored', 'skipped']);
  });

  it('a corrupt upload fails the invocation, naming the key, after the other records were processed and both notified', async () => {
    const good = await readFile(fixture('images/meadow.webp'));
    const corrupt = Buffer.from('this is not a jpeg at all, just text');
    await put(UPLOADS, 'uploads/corrupt.jpg', corrupt);
    await put(UPLOADS, 'uploads/meadow.webp', good);
    sns.messages.length = 0;
    const run = await invoke({ Records: [s3Record(UPLOADS, 'uploads/corrupt.jpg', corrupt), s3Record(UPLOADS, 'uploads/meadow.webp', good)] });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/1 of 2 records failed: s3:\/\/uploads-bkt\/uploads\/corrupt\.jpg/);
    expect((await listKeys(client, PROCESSED, `${PROCESSED_PREFIX}thumb/meadow`)).map((k) => k.key)).toEqual([`${PROCESSED_PREFIX}thumb/meadow.jpg`]);
    const [failure, success] = sns.messages.map((m) => m.message as Record<string, unknown>);
    expect(failure).toMatchObject({ status: 'failed', source: { bucket: UPLOADS, key: 'uploads/corrupt.jpg' }, outputs: [] });
    expect(String(failure!['error'])).toMatch(/corrupt\.jpg|not a|unsupported|corrupt/i);
    expect(success).toMatchObject({ status: 'processed', source: { key: 'uploads/meadow.webp' } });
    expect(run.logs.find((l) => l['key'] === 'uploads/corrupt.jpg')).toMatchObject({ level: 'error', status: 'failed' });
  });

  it('takes the same records wrapped in SQS and SNS messages, and EventBridge "Object Created"', async () => {
    const landscape = await readFile(fixture('images/landscape.jpg'));
    await put(UPLOADS, 'uploads/wrapped/a.jpg', landscape);
    await put(UPLOADS, 'uploads/bridge/b c.jpg', landscape);
    const s3Event = { Records: [s3Record(UPLOADS, 'uploads/wrapped/a.jpg', landscape)] };
    const snsEnvelope = { Type: 'Notification', MessageId: '1', TopicArn: TOPIC, Message: JSON.stringify(s3Event) };
    const sqs = { Records: [{ eventSource: 'aws:sqs', messageId: '1', body: JSON.stringify(snsEnvelope) }] };
    expect((await invoke(sqs)).code).toBe(0);
    const bridge = { 'detail-type': 'Object Created', source: 'aws.s3', detail: { bucket: { name: UPLOADS }, object: { key: 'uploads/bridge/b c.jpg', size: landscape.length } } };
    expect((await invoke(bridge)).code).toBe(0);
    const keys = (await listKeys(client, PROCESSED, `${PROCESSED_PREFIX}thumb/`)).map((k) => k.key);
    expect(keys).toEqual(expect.arrayContaining([`${PROCESSED_PREFIX}thumb/wrapped/a.jpg`, `${PROCESSED_PREFIX}thumb/bridge/b c.jpg`]));
  });

  it('a Batch task reads only the version its HEAD measured: one replaced in between is not downloaded', async () => {
    const jpeg = await readFile(fixture('images/landscape.jpg'));
    const batch = (key: string) => ({
      invocationSchemaVersion: '2.0', invocationId: 'inv', job: { id: 'job', userArguments: { notify: 'false' } },
      tasks: [{ taskId: 't', s3Bucket: UPLOADS, s3Key: key, s3VersionId: null }],
    });
    await put(UPLOADS, 'uploads/batch-pinned.jpg', jpeg);
    proxy.requests.length = 0;
    const run = await runLambda(fnDir, batch('uploads/batch-pinned.jpg'), env, join(work, 'event-batch-pinned.json'));
    expect(run.code, run.stderr).toBe(0);
    const gets = proxy.requests.filter((r) => r.op === 'get' && r.key === 'uploads/batch-pinned.jpg');
    expect(gets.map((r) => r.headers['if-match'])).toEqual([`"${md5(jpeg)}"`]);

    // Replaced right after the HEAD (the proxy answers the GET's If-Match as S3 would: 412).
    await put(UPLOADS, 'uploads/batch-replaced.jpg', jpeg);
    const rule = proxy.rule;
    proxy.rule = (request) => {
      if (request.op === 'head' && request.key === 'uploads/batch-replaced.jpg') current.set(`${UPLOADS}/${request.key}`, '"a-newer-version"');
      return rule?.(request);
    };
    try {
      const replaced = await runLambda(fnDir, batch('uploads/batch-replaced.jpg'), env, join(work, 'event-batch-replaced.json'));
      expect(replaced.code, replaced.stderr).toBe(0);
      expect(replaced.logs.find((l) => l['key'] === 'uploads/batch-replaced.jpg')).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/changed after this event/) });
      expect((await listKeys(client, PROCESSED)).filter((o) => o.key.includes('batch-replaced'))).toEqual([]);
    } finally {
      proxy.rule = rule;
    }
  });

  it('a stale event is skipped, not failed: the object was overwritten (412 on If-Match) or deleted (404) since', async () => {
    const first = await readFile(fixture('images/landscape.jpg'));
    const second = await readFile(fixture('images/2024/portrait.jpg'));
    await put(UPLOADS, 'uploads/stale/overwritten.jpg', first);
    const announced = s3Record(UPLOADS, 'uploads/stale/overwritten.jpg', first);
    await put(UPLOADS, 'uploads/stale/overwritten.jpg', second);
    const gone = s3Record(UPLOADS, 'uploads/stale/deleted.jpg', first);
    sns.messages.length = 0;
    proxy.requests.length = 0;
    const run = await invoke({ Records: [announced, gone] });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(proxy.requests.filter((r) => r.op === 'get').map((r) => [r.key, r.status])).toEqual([['uploads/stale/overwritten.jpg', 412], ['uploads/stale/deleted.jpg', 404]]);
    expect(run.logs.filter((l) => l['status'] !== 'init').map((l) => [l['key'], l['status'], l['reason']])).toEqual([
      ['uploads/stale/overwritten.jpg', 'skipped', 'the object changed after this event; the newer version has its own event'],
      ['uploads/stale/deleted.jpg', 'skipped', 'the object was deleted after this event'],
    ]);
    expect(await listKeys(client, PROCESSED, `${PROCESSED_PREFIX}thumb/stale/`)).toEqual([]);
    expect(sns.messages).toHaveLength(0);
  });
});

describe.skipIf(!HOST_FITS)(`a zip whose config asks for sidecars, run on a HEIC upload${SKIPPED}`, () => {
  it('decodes the HEIC with the WASM from the zip, writes meta/<key>.json after the outputs, and publishes the placeholder', async () => {
    const withSidecar = await buildLambdaPackage({ config: validateConfig({ sidecar: true, formats: ['jpeg', 'webp'] }, 'test'), arch: 'x86_64', sharp: 'host', env: process.env });
    const dir = await makeTempDir('img-pipeline-fn-sidecar-');
    await unzipTo(withSidecar.zip, dir);
    const heic = await readFile(fixture('cases/rotated-irot.heic'));
    await put(UPLOADS, 'uploads/phone/IMG 1.heic', heic);
    sns.messages.length = 0;
    events += 1;
    const run = await runLambda(dir, { Records: [s3Record(UPLOADS, 'uploads/phone/IMG 1.heic', heic)] }, { ...env, PROCESSED_PREFIX: 'sc/' }, join(work, `event-${events}.json`));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const keys = (await listKeys(client, PROCESSED, 'sc/')).map((k) => k.key);
    expect(keys).toEqual(['sc/medium/phone/IMG 1.jpg', 'sc/medium/phone/IMG 1.webp', 'sc/meta/phone/IMG 1.heic.json', 'sc/thumb/phone/IMG 1.jpg', 'sc/thumb/phone/IMG 1.webp']);
    const head = await headObject(client, PROCESSED, 'sc/meta/phone/IMG 1.heic.json');
    expect(head.ContentType).toBe('application/json');
    // Marked like every output, so the backfill and the Lambda never take it for an input.
    expect(head.Metadata?.[OUTPUT_MARKER]).toBe('true');
    const sidecar = JSON.parse((await getObject(client, PROCESSED, 'sc/meta/phone/IMG 1.heic.json')).toString('utf8'));
    // Upright (irot applied once), and keys relative to the processed prefix, as the CLI writes them.
    expect(sidecar).toMatchObject({ source: { key: 'phone/IMG 1.heic', format: 'heic', width: 32, height: 64 }, srcset: { jpeg: 'thumb/phone/IMG%201.jpg 32w' } });
    const upright = await readPixels(await getObject(client, PROCESSED, 'sc/medium/phone/IMG 1.jpg'));
    expect(upright.at(16, 8)[0]).toBeGreaterThan(150);
    const message = sns.messages[0]!.message as Record<string, unknown>;
    expect(message).toMatchObject({
      status: 'processed',
      sidecar: { bucket: PROCESSED, key: 'sc/meta/phone/IMG 1.heic.json' },
      placeholder: { thumbhash: sidecar.placeholder.thumbhash, dataURL: sidecar.placeholder.dataURL, color: sidecar.color },
    });
  }, 120_000);
});

describe('deploy and destroy from the terminal', () => {
  /** The built CLI with no AWS credentials at all, and none of this test process's AWS settings. */
  function runOffline(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    // The test runner turns the SDK's Node-version notice off; the CLI must do it itself.
    const env = s3Env({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined });
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: typeof error?.code === 'number' ? error.code : error ? 1 : 0, stdout, stderr });
      });
    });
  }

  it('a dry run without credentials prints the plan, and no AWS SDK notice about Node versions', async () => {
    const deploy = await runOffline(['deploy', '--bucket', 'my-uploads', '--prefix', 'uploads/', '--out', 's3://my-processed/', '--dry-run']);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout).toMatch(/would create\s+Lambda function\s+ImageProcessor/);
    const destroy = await runOffline(['destroy', '--bucket', 'my-uploads', '--dry-run']);
    expect(destroy.code, destroy.stderr).toBe(0);
    expect(destroy.stdout).toMatch(/would delete\s+SQS failure queue\s+ImageProcessor-failures/);
    // The machine-readable plan: one JSON document on stdout, offline too.
    const json = await runOffline(['deploy', '--bucket', 'my-uploads', '--prefix', 'uploads/', '--out', 's3://my-processed/', '--dry-run', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { checked: boolean; resources: { type: string; action: string }[] };
    expect(doc.checked).toBe(false);
    expect(doc.resources.every((r) => r.action === 'create')).toBe(true);
    for (const run of [deploy, destroy, json]) {
      expect(run.stderr).not.toMatch(/NodeVersionSupportWarning|upgrade to node/i);
    }
  });
});
