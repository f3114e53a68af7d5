// `node scripts/bench-s3.mjs [folder] [--runs N]`: S3 -> S3 throughput of the real CLI against local -> local,
// on the same photos in the same run. S3 is a loopback s3rver started here (in a child process with
// --openssl-legacy-provider, for its DES continuation tokens), so the figure measures our S3 path:
// paged listing, downloads, uploads and request overhead. Loopback has no network latency and the server
// shares the CPU with the CLI, so this is not a prediction for a remote S3 either way: it shows what our
// S3 path costs in CPU. Target: S3 -> S3 >= 0.8x local -> local.
// The server is started as the tests start it (test/helpers/s3-server-process.mjs); the tests' TypeScript
// wrapper is not importable from a plain node script.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const folder = resolve(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs') ?? 'fixtures/images');
// fileURLToPath, not URL.pathname: a checkout path with spaces or non-ASCII stays a path, not %20s.
const root = fileURLToPath(new URL('..', import.meta.url));
const IMAGE = /\.(jpe?g|png|webp|tiff?|gif|avif)$/i;
const files = readdirSync(folder, { recursive: true }).map(String).filter((f) => IMAGE.test(f));
if (files.length === 0) {
  console.error(`no images in ${folder}`);
  process.exit(2);
}
const J = 2;
const work = mkdtempSync(join(tmpdir(), 'img-pipeline-bench-s3-'));
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

const server = spawn(process.execPath, ['--openssl-legacy-provider', join(root, 'test/helpers/s3-server-process.mjs'), join(work, 's3rver'), 'bench-src', 'bench-dst'], { stdio: ['pipe', 'pipe', 'inherit'] });
const port = await new Promise((done, fail) => {
  server.once('exit', (code) => fail(new Error(`s3rver exited with ${code}`)));
  createInterface({ input: server.stdout }).once('line', (line) => done(JSON.parse(line).port));
});
const endpoint = `http://127.0.0.1:${port}`;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });

try {
  const queue = [...files];
  const upload = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const key = `photos/${file.split(sep).join('/')}`;
      await client.send(new PutObjectCommand({ Bucket: 'bench-src', Key: key, Body: readFileSync(join(folder, file)) }));
    }
  };
  await Promise.all(Array.from({ length: 4 }, upload));

  /** Runs the CLI to completion as a whole process; returns wall seconds. */
  const measure = (argv) =>
    new Promise((done, fail) => {
      const started = process.hrtime.bigint();
      const child = spawn(process.execPath, ['bin/img-pipeline.js', ...argv], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => {
        if (code !== 0) return fail(new Error(`img-pipeline ${argv.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
        done(Number(process.hrtime.bigint() - started) / 1e9);
      });
    });
  const common = ['-j', String(J), '--watermark', '© img-pipeline', '--force', '--quiet'];
  const contenders = [
    { name: 'local -> local', run: () => measure([folder, '--out', join(work, 'local-out'), ...common]) },
    { name: 'S3 -> S3 (loopback s3rver)', run: () => measure(['s3://bench-src/photos/', '--out', 's3://bench-dst/processed/', '--endpoint', endpoint, ...common]) },
  ];

  console.log(`img-pipeline S3 bench: ${files.length} images in ${folder}, thumb+medium, watermark, jpeg q85, -j ${J}, median of ${runs} runs`);
  const times = contenders.map(() => []);
  for (let r = 0; r < runs; r++) {
    // Interleaved, so drift in machine load hits both alike.
    for (const [i, c] of contenders.entries()) times[i].push(await c.run());
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rates = contenders.map((c, i) => ({ name: c.name, seconds: median(times[i]), rate: files.length / median(times[i]) }));
  const pad = Math.max(...rates.map((r) => r.name.length));
  console.log(`${'mode'.padEnd(pad)}  ${'seconds'.padStart(8)}  ${'images/s'.padStart(9)}`);
  for (const r of rates) console.log(`${r.name.padEnd(pad)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.rate.toFixed(1).padStart(9)}`);
  const ratio = rates[1].rate / rates[0].rate;
  console.log(`\nS3 -> S3 / local -> local: ${ratio.toFixed(2)}x the throughput (target >= 0.8)`);
} finally {
  client.destroy();
  server.kill('SIGTERM');
  await new Promise((done) => (server.exitCode === null ? server.once('exit', done) : done()));
  rmSync(work, { recursive: true, force: true });
}
