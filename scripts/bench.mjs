// `npm run bench [folder] [-- --runs N]`: throughput of the real CLI as a whole process against the decode
// floor (one shrink-on-load decode per file with the same sharp, same images in flight), measured in the
// same run, plus the tools users would otherwise pick where they are installed. Prints a table.
// `npm run bench -- [folder] --s3`: S3 -> S3 against local -> local through a loopback S3 server instead.
// `npm run bench -- [folder] --sidecar`: the CLI with and without --sidecar, and what the sidecars cost.
// `npm run bench -- --heic [photo]`: time per 12 MP HEIC next to a 12 MP JPEG (scripts/bench-heic.mjs).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
if (args.includes('--s3')) {
  const forwarded = args.filter((a) => a !== '--s3');
  process.exit(spawnSync(process.execPath, [new URL('./bench-s3.mjs', import.meta.url).pathname, ...forwarded], { stdio: 'inherit' }).status ?? 1);
}
if (args.includes('--heic')) {
  process.exit(spawnSync(process.execPath, [new URL('./bench-heic.mjs', import.meta.url).pathname, ...args], { stdio: 'inherit' }).status ?? 1);
}
const sidecarMode = args.includes('--sidecar');
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const folder = resolve(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs') ?? 'fixtures/images');
const root = new URL('..', import.meta.url).pathname;
const font = createRequire(import.meta.url).resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');
const IMAGE = /\.(jpe?g|png|webp|tiff?|gif|avif)$/i;
const files = readdirSync(folder, { recursive: true }).map(String).filter((f) => IMAGE.test(f));
if (files.length === 0) {
  console.error(`no images in ${folder}`);
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'img-pipeline-bench-'));
const J = 2;

function has(command, ...probe) {
  return spawnSync(command, probe, { stdio: 'ignore' }).status === 0;
}

/** Runs one command to completion; returns wall seconds and, for node, peak RSS in MiB. */
function measure(command, argv, options = {}) {
  const rssFile = join(work, 'rss');
  rmSync(rssFile, { force: true });
  const env = { ...process.env, BENCH_RSS_FILE: rssFile, ...options.env };
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, argv, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env, shell: options.shell ?? false });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return fail(new Error(`${command} ${argv.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
      let rss;
      let cpu;
      try {
        const [kib, cpuSeconds] = readFileSync(rssFile, 'utf8').split(' ').map(Number);
        rss = kib / 1024;
        cpu = cpuSeconds;
      } catch {
        rss = undefined;
      }
      done({ seconds, rss, cpu });
    });
  });
}

// The CLI runs through its bin file, as `npx img-pipeline` does, so its shebang's MALLOC_ARENA_MAX applies;
// the floor gets the same allocator setting, so the two differ only in the work they do.
const preload = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ./scripts/report-rss.mjs`.trim() };
const contenders = [
  {
    name: 'decode floor (sharp, shrink-on-load to 512)',
    run: () => measure(process.execPath, ['scripts/decode-floor.mjs', folder, String(J)], { env: { ...preload, MALLOC_ARENA_MAX: '2' } }),
  },
  {
    name: 'img-pipeline (thumb+medium, watermark, jpeg q85, -j 2)',
    tool: true,
    run: () => measure('./bin/img-pipeline.js', [folder, '--out', join(work, 'tool'), '-j', String(J), '--watermark', '© img-pipeline', '--force', '--quiet'], { env: preload }),
  },
];
if (sidecarMode) {
  contenders.push({
    name: 'img-pipeline, same, with --sidecar (ThumbHash, blur URL, JSON per image)',
    sidecar: true,
    run: () => measure('./bin/img-pipeline.js', [folder, '--out', join(work, 'tool-sidecar'), '-j', String(J), '--watermark', '© img-pipeline', '--force', '--quiet', '--sidecar'], { env: preload }),
  });
}
// The sidecar mode compares two runs of the tool only; the other tools would only add noise and time.
if (!sidecarMode && has('/usr/bin/python3', '-c', 'import PIL')) {
  contenders.push({ name: 'Python/Pillow original (2 LANCZOS thumbs, watermark, q85, 2 processes)', pillow: true, run: () => measure('/usr/bin/python3', ['scripts/baseline_pillow.py', folder, join(work, 'pillow'), String(J), font]) });
}
const list = files.map((f) => JSON.stringify(join(folder, f))).join(' ');
if (!sidecarMode && has('vipsthumbnail', '--vips-version')) {
  const out = join(work, 'vips');
  contenders.push({
    name: 'vipsthumbnail (128 and 512, no watermark, 2 processes)',
    run: () => measure('sh', ['-c', `mkdir -p ${out} && printf '%s\\n' ${list} | xargs -d '\\n' -n 1 -P ${J} sh -c 'vipsthumbnail "$0" -s 512 -o ${out}/%s-512.jpg[Q=85,strip] && vipsthumbnail "$0" -s 128 -o ${out}/%s-128.jpg[Q=85,strip]'`]),
  });
}
if (!sidecarMode && has('convert', '-version') && spawnSync('convert', ['-version']).stdout?.toString().includes('ImageMagick')) {
  const out = join(work, 'magick');
  contenders.push({
    name: 'ImageMagick convert (512 then 128, no watermark, 2 processes)',
    run: () => measure('sh', ['-c', `mkdir -p ${out} && printf '%s\\n' ${list} | xargs -d '\\n' -n 1 -P ${J} sh -c 'b=$(basename "$0"); convert "$0" -auto-orient -strip -thumbnail 512x512 -quality 85 -write ${out}/$b-512.jpg -thumbnail 128x128 ${out}/$b-128.jpg'`]),
  });
}

// sharp-cli (`npm install -g sharp-cli`) names its bin `sharp`; it takes every input at once in one process
// and writes one size per invocation, so each size is one process over all files, two sizes side by side.
if (!sidecarMode && spawnSync('sharp', ['--version']).stdout?.toString().match(/^\d+\.\d+/)) {
  const out = join(work, 'sharp-cli');
  const size = (n) => `sharp -i ${list} -o ${out}/${n}/ -f jpeg -q 85 --autoOrient resize ${n} ${n} --fit inside`;
  contenders.push({
    name: 'sharp-cli (128 and 512, no watermark, one process per size)',
    run: () => measure('sh', ['-c', `mkdir -p ${out}/512 ${out}/128 && (${size(512)} >/dev/null & ${size(128)} >/dev/null & wait)`]),
  });
}

console.log(`img-pipeline bench: ${files.length} images in ${folder}, median of ${runs} runs, ${J} images in flight`);
const times = contenders.map(() => []);
const rss = contenders.map(() => []);
const cpu = contenders.map(() => []);
for (let r = 0; r < runs; r++) {
  // Interleaved, so drift in machine load hits every contender alike.
  for (const [i, c] of contenders.entries()) {
    const m = await c.run();
    times[i].push(m.seconds);
    if (m.rss !== undefined) rss[i].push(m.rss);
    if (m.cpu !== undefined) cpu[i].push(m.cpu);
  }
}
rmSync(work, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = median(times[0]);
const rows = contenders.map((c, i) => {
  const t = median(times[i]);
  return { name: c.name, seconds: t, rate: files.length / t, vsFloor: t / floor, rss: rss[i].length ? Math.max(...rss[i]) : undefined, cpu: cpu[i].length ? median(cpu[i]) : undefined, c };
});
const pad = Math.max(...rows.map((r) => r.name.length));
console.log(`${'contender'.padEnd(pad)}  ${'seconds'.padStart(8)}  ${'images/s'.padStart(9)}  ${'time/floor'.padStart(10)}  peak RSS`);
for (const r of rows) {
  console.log(`${r.name.padEnd(pad)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.rate.toFixed(1).padStart(9)}  ${r.vsFloor.toFixed(2).padStart(10)}  ${r.rss ? `${r.rss.toFixed(0)} MiB` : '-'}`);
}
const tool = rows.find((r) => r.c.tool);
const sidecar = rows.find((r) => r.c.sidecar);
if (sidecar) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  console.log(`\n--sidecar costs ${pct(1 - sidecar.rate / tool.rate)} of throughput (wall time, target < 5%), ${pct(sidecar.cpu / tool.cpu - 1)} more CPU time (all threads, median ${tool.cpu.toFixed(1)} s -> ${sidecar.cpu.toFixed(1)} s)`);
}
const pillow = rows.find((r) => r.c.pillow);
console.log(`\ntool/floor: ${tool.vsFloor.toFixed(2)} (target <= 1.2)   peak RSS: ${tool.rss?.toFixed(0)} MiB (target <= 400)`);
if (pillow) console.log(`img-pipeline vs Python/Pillow: ${(pillow.seconds / tool.seconds).toFixed(2)}x the throughput (target >= 1.6)`);
else console.log('Python/Pillow baseline skipped: install Debian python3-pil to compare.');
