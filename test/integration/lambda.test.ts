import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildLambdaPackage, LAMBDA_LIMITS, type LambdaPackage } from '../../src/deploy/package.js';
import { CONTENT_TYPES, OUTPUT_MARKER, outputKey } from '../../src/pipeline/layout.js';
import { preparePipeline, processImage } from '../../src/pipeline/process.js';
import { runCli } from '../helpers/cli.js';
import { startSnsStub, runLambda, unzipTo, type SnsStub, type ZipEntryInfo } from '../helpers/lambda.js';
import { fixture } from '../helpers/paths.js';
import { readPixels, type Pixels } from '../helpers/pixels.js';
import { createBucket, getObject, headObject, listKeys, putObject, s3Env, startS3Server, testClient, type S3Server } from '../helpers/s3-server.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

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
let env: NodeJS.ProcessEnv;
let events = 0;

/** An S3 notification record, with the key encoded the way S3 encodes it ('+' for a space). */
function s3Record(bucket: string, key: string, size: number) {
  const encoded = encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+');
  return { eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', eventName: 'ObjectCreated:Put', s3: { s3SchemaVersion: '1.0', configurationId: 'img-pipeline-ImageProcessor', bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` }, object: { key: encoded, size, sequencer: '0' } } };
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
  config = validateConfig({ watermark: { text: WATERMARK } }, 'test');
  // x86_64: this host's own sharp build is copied, so the test needs no network.
  pkg = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'host' });
  fnDir = await makeTempDir('img-pipeline-fn-');
  work = await makeTempDir('img-pipeline-lambda-work-');
  entries = await unzipTo(pkg.zip, fnDir);

  s3server = await startS3Server();
  sns = await startSnsStub();
  client = testClient(s3server.endpoint);
  await createBucket(client, UPLOADS);
  await createBucket(client, PROCESSED);

  // No system fonts: text must render with the bundled font alone.
  const emptyFonts = join(work, 'fonts.conf');
  await writeFile(emptyFonts, '<?xml version="1.0"?>\n<fontconfig></fontconfig>\n');
  env = s3Env({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s3server.endpoint,
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
  await s3server?.stop();
  await sns?.stop();
  await removeTempDirs();
});

describe('the Lambda zip', () => {
  it('holds index.mjs, the config, the font and sharp for linux-x64, sorted, without symlinks, with fixed times and modes', () => {
    const names = entries.map((e) => e.name);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(names).toEqual(expect.arrayContaining([
      'index.mjs', 'config.json', 'fonts/DejaVuSans-Bold.ttf', 'fonts/fonts.conf',
      'node_modules/sharp/package.json', 'node_modules/@img/sharp-linux-x64/package.json',
    ]));
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

  it('bundles the config the user deployed with, validated by the same schema', async () => {
    const bundled = JSON.parse(await readFile(join(fnDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(validateConfig(bundled, 'bundled').watermark?.text).toBe(WATERMARK);
    expect(bundled).not.toHaveProperty('concurrency');
  });

  it('is deterministic: an unchanged rebuild has the same SHA-256 (so CodeSha256 skips the upload)', async () => {
    const again = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'host' });
    expect(again.sha256).toBe(pkg.sha256);
    expect(again.zip.equals(pkg.zip)).toBe(true);
    const other = await buildLambdaPackage({ config: validateConfig({ quality: 70 }, 'test'), arch: 'x86_64', sharp: 'host' });
    expect(other.sha256).not.toBe(pkg.sha256);
  });
});

describe('index.handler, unpacked and run in its own node process against loopback S3 and SNS', () => {
  it('processes several records into the CLI layout with Content-Type, Cache-Control and the marker, and publishes JSON', async () => {
    const landscape = await readFile(fixture('images/landscape.jpg'));
    const portrait = await readFile(fixture('images/2024/portrait.jpg'));
    await putObject(client, UPLOADS, 'uploads/landscape.jpg', landscape);
    await putObject(client, UPLOADS, 'uploads/2024/my photo+1.jpg', portrait);
    await putObject(client, UPLOADS, 'uploads/notes.txt', 'not an image');
    await putObject(client, UPLOADS, 'uploads/empty.jpg', Buffer.alloc(0));
    await putObject(client, UPLOADS, 'uploads/folder/', Buffer.alloc(0));
    sns.messages.length = 0;

    const run = await invoke({ Records: [
      s3Record(UPLOADS, 'uploads/landscape.jpg', landscape.length),
      s3Record(UPLOADS, 'uploads/2024/my photo+1.jpg', portrait.length),
      s3Record(UPLOADS, 'uploads/notes.txt', 12),
      s3Record(UPLOADS, 'uploads/empty.jpg', 0),
      s3Record(UPLOADS, 'uploads/folder/', 0),
    ] });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

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
    expect(run.logs.find((l) => l['status'] === 'init')?.['fingerprint']).toBe(pkg.fingerprint);

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

  it('ignores its own outputs: keys under PROCESSED_PREFIX in PROCESSED_BUCKET, and objects carrying the marker', async () => {
    const output = await getObject(client, PROCESSED, `${PROCESSED_PREFIX}thumb/landscape.jpg`);
    await putObject(client, UPLOADS, 'uploads/copied-output.jpg', output, { [OUTPUT_MARKER]: 'true' });
    const before = await listKeys(client, PROCESSED);
    sns.messages.length = 0;
    const run = await invoke({ Records: [
      s3Record(PROCESSED, `${PROCESSED_PREFIX}thumb/landscape.jpg`, output.length),
      s3Record(UPLOADS, 'uploads/copied-output.jpg', output.length),
    ] });
    expect(run.code).toBe(0);
    expect(await listKeys(client, PROCESSED)).toEqual(before);
    expect(sns.messages).toHaveLength(0);
    expect(run.logs.filter((l) => l['status'] !== 'init').map((l) => l['status'])).toEqual(['ignored', 'skipped']);
  });

  it('a corrupt upload fails the invocation, naming the key, after the other records were processed and both notified', async () => {
    const good = await readFile(fixture('images/meadow.webp'));
    await putObject(client, UPLOADS, 'uploads/corrupt.jpg', Buffer.from('this is not a jpeg at all, just text'));
    await putObject(client, UPLOADS, 'uploads/meadow.webp', good);
    sns.messages.length = 0;
    const run = await invoke({ Records: [s3Record(UPLOADS, 'uploads/corrupt.jpg', 36), s3Record(UPLOADS, 'uploads/meadow.webp', good.length)] });
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
    await putObject(client, UPLOADS, 'uploads/wrapped/a.jpg', landscape);
    await putObject(client, UPLOADS, 'uploads/bridge/b c.jpg', landscape);
    const s3Event = { Records: [s3Record(UPLOADS, 'uploads/wrapped/a.jpg', landscape.length)] };
    const snsEnvelope = { Type: 'Notification', MessageId: '1', TopicArn: TOPIC, Message: JSON.stringify(s3Event) };
    const sqs = { Records: [{ eventSource: 'aws:sqs', messageId: '1', body: JSON.stringify(snsEnvelope) }] };
    expect((await invoke(sqs)).code).toBe(0);
    const bridge = { 'detail-type': 'Object Created', source: 'aws.s3', detail: { bucket: { name: UPLOADS }, object: { key: 'uploads/bridge/b c.jpg', size: landscape.length } } };
    expect((await invoke(bridge)).code).toBe(0);
    const keys = (await listKeys(client, PROCESSED, `${PROCESSED_PREFIX}thumb/`)).map((k) => k.key);
    expect(keys).toEqual(expect.arrayContaining([`${PROCESSED_PREFIX}thumb/wrapped/a.jpg`, `${PROCESSED_PREFIX}thumb/bridge/b c.jpg`]));
  });
});
