// `node scripts/bench-s3.mjs [folder] [--runs N] [--latency MS] [-- <extra CLI flags>]`: S3 -> S3 throughput
// of the real CLI against local -> local, on the same photos in the same run, with peak RSS.
//
// S3 is a loopback s3rver started here (in a child process with --openssl-legacy-provider, for its DES
// continuation tokens, as the tests start it: test/helpers/s3-server-process.mjs). Between the CLI and
// s3rver sits a TCP latency proxy (test/helpers/latency-proxy.ts): every response reaches the CLI MS
// later (a new connection's first one 2 x MS, for the TCP handshake), which stands in for a remote S3's
// round trip. It passes bytes unparsed, so it costs little CPU; the tests' HTTP fault proxy, which used
// to be used here, took 0.5-1.1 CPU-s a run. Rows: local, S3 through the proxy at 0 ms, and S3 at MS
// (default 50), each as a ratio to local in the same run, and the latency row also as a ratio to the S3
// +0 ms row of the same run (`x S3+0`): what the round trips alone cost, apart from the loopback CPU.
// s3rver and the proxy share the 2 cores with the CLI, so the S3 rows also pay for their CPU, which a real
// S3 would not: both are printed.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const argv = process.argv.slice(2);
const dashes = argv.indexOf('--');
const args = dashes >= 0 ? argv.slice(0, dashes) : argv;
const extra = dashes >= 0 ? argv.slice(dashes + 1) : [];
const valueOf = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const runs = valueOf('--runs', 3);
const latency = valueOf('--latency', 50);
const folder = resolve(args.find((a, i) => !a.startsWith('--') && !['--runs', '--latency'].includes(args[i - 1])) ?? 'fixtures/images');
// fileURLToPath, not URL.pathname: a checkout path with spaces or non-ASCII stays a path, not %20s.
const root = fileURLToPath(new URL('..', import.meta.url));
const IMAGE = /\.(jpe?g|png|webp|tiff?|gif|avif)$/i;
const files = readdirSync(folder, { recursive: true }).map(String).filter((f) => IMAGE.test(f));
if (files.length === 0) {
  console.error(`no images in ${folder}`);
  process.exit(2);
}
if (!Number.isFinite(latency) || latency < 0) {
  console.error(`--latency: expected milliseconds >= 0, received ${args[args.indexOf('--latency') + 1]}`);
  process.exit(2);
}
const J = 2;
const load = (path) => tsImport(join(root, path), import.meta.url);
const { startS3Server, testClient, s3Env, putObject } = await load('test/helpers/s3-server.ts');
const { startLatencyProxy } = await load('test/helpers/latency-proxy.ts');

const work = mkdtempSync(join(tmpdir(), 'img-pipeline-bench-s3-'));
const server = await startS3Server(['bench-src', 'bench-dst']);
const proxy = await startLatencyProxy(server.endpoint);
/** s3rver's CPU seconds so far (Linux /proc; undefined elsewhere). */
const serverCpu = () => {
  const stat = `/proc/${server.pid}/stat`;
  if (!existsSync(stat)) return undefined;
  const fields = readFileSync(stat, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const client = testClient(server.endpoint);
const env = s3Env({ AWS_REGION: 'us-east-1' });

try {
  const queue = [...files];
  const upload = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      await putObject(client, 'bench-src', `photos/${file.split(sep).join('/')}`, readFileSync(join(folder, file)));
    }
  };
  await Promise.all(Array.from({ length: 4 }, upload));

  /**
   * Runs the CLI (its bin file, shebang and all) to completion; returns wall seconds, peak RSS in MiB, the
   * CLI's CPU seconds, and this process's (the proxy's) and s3rver's CPU seconds meanwhile.
   */
  const measure = (cliArgs) =>
    new Promise((done, fail) => {
      const rssFile = join(work, 'rss');
      rmSync(rssFile, { force: true });
      const options = { BENCH_RSS_FILE: rssFile, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ./scripts/report-rss.mjs`.trim() };
      const started = process.hrtime.bigint();
      const proxyCpu = process.cpuUsage();
      const serverBefore = serverCpu();
      const child = spawn('./bin/img-pipeline.js', cliArgs, { cwd: root, env: { ...env, ...options }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => {
        if (code !== 0) return fail(new Error(`img-pipeline ${cliArgs.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
        const proxied = process.cpuUsage(proxyCpu);
        const [kib, cpuSeconds] = readFileSync(rssFile, 'utf8').split(' ').map(Number);
        done({
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          rss: kib / 1024,
          cpu: cpuSeconds,
          proxyCpu: (proxied.user + proxied.system) / 1e6,
          serverCpu: serverBefore === undefined ? NaN : serverCpu() - serverBefore,
        });
      });
    });
  const common = ['-j', String(J), '--watermark', '© img-pipeline', '--force', '--quiet', ...extra];
  const s3Run = (ms) => () => {
    proxy.latencyMs = ms;
    return measure(['s3://bench-src/photos/', '--out', 's3://bench-dst/processed/', '--endpoint', proxy.endpoint, ...common]);
  };
  const contenders = [
    { name: 'local -> local', run: () => measure([folder, '--out', join(work, 'local-out'), ...common]) },
    { name: 'S3 -> S3, +0 ms per response', run: s3Run(0) },
    { name: `S3 -> S3, +${latency} ms per response`, run: s3Run(latency) },
  ];

  console.log(`img-pipeline S3 bench: ${files.length} images in ${folder}, thumb+medium, watermark, jpeg q85, -j ${J}${extra.length ? ` ${extra.join(' ')}` : ''}, median of ${runs} runs`);
  const results = contenders.map(() => []);
  for (let r = 0; r < runs; r++) {
    // Interleaved, so drift in machine load hits every row alike; each run's ratio is to that run's local.
    const local = await contenders[0].run();
    results[0].push({ ...local, ratio: 1 });
    let s3Zero;
    for (const [i, c] of contenders.entries()) {
      if (i === 0) continue;
      const m = await c.run();
      s3Zero ??= m;
      results[i].push({ ...m, ratio: local.seconds / m.seconds, toS3Zero: s3Zero.seconds / m.seconds });
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const pad = Math.max(...contenders.map((c) => c.name.length));
  console.log(`${'mode'.padEnd(pad)}  ${'seconds'.padStart(8)}  ${'images/s'.padStart(9)}  ${'x local'.padStart(7)}  ${'(min-max)'.padStart(11)}  ${'x S3+0'.padStart(6)}  peak RSS  CLI CPU-s  proxy CPU-s  s3rver CPU-s`);
  for (const [i, c] of contenders.entries()) {
    const seconds = median(results[i].map((m) => m.seconds));
    const ratios = results[i].map((m) => m.ratio);
    const spread = i === 0 ? '' : `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
    const rss = Math.max(...results[i].map((m) => m.rss));
    const cpu = median(results[i].map((m) => m.cpu));
    const proxyCpu = i === 0 ? '' : median(results[i].map((m) => m.proxyCpu)).toFixed(2);
    const s3rverCpu = i === 0 ? '' : median(results[i].map((m) => m.serverCpu)).toFixed(2);
    const toS3Zero = i === 0 ? '' : median(results[i].map((m) => m.toS3Zero)).toFixed(2);
    console.log(`${c.name.padEnd(pad)}  ${seconds.toFixed(2).padStart(8)}  ${(files.length / seconds).toFixed(1).padStart(9)}  ${median(ratios).toFixed(2).padStart(7)}  ${spread.padStart(11)}  ${toS3Zero.padStart(6)}  ${`${rss.toFixed(0)} MiB`.padStart(8)}  ${cpu.toFixed(2).padStart(9)}  ${proxyCpu.padStart(11)}  ${s3rverCpu.padStart(12)}`);
  }
  console.log(`\nS3 / local (median of per-run ratios): +0 ms ${median(results[1].map((m) => m.ratio)).toFixed(2)}x, +${latency} ms ${median(results[2].map((m) => m.ratio)).toFixed(2)}x (targets: >= 0.9 at 50 ms, >= 0.85 at 100 ms)`);
  console.log(`S3 +${latency} ms / S3 +0 ms (the round trips alone, median of per-run ratios): ${median(results[2].map((m) => m.toS3Zero)).toFixed(2)}x`);
} finally {
  client.destroy();
  await proxy.close();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
