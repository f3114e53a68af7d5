// `npm run bench -- --heic [photo] [--runs N]`: time per 12 MP HEIC next to the same photo as a 12 MP JPEG,
// through the real CLI (default sizes, -j 1 and -j 2). The HEIC is made here from the photo (4032x3024,
// an iPhone's size) at bench time with Debian's `vips heifsave --compression hevc` (apt-get install
// libvips-tools); nothing is committed. Without that tool the bench says how to get it and stops.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

const args = process.argv.slice(2).filter((a) => a !== '--heic');
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const given = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs');
const root = new URL('..', import.meta.url).pathname;
const COPIES = 4;

/** The photo to convert: the one given, or the largest JPEG or PNG in /tmp/photos. */
function pickPhoto() {
  if (given) return resolve(given);
  const dir = '/tmp/photos';
  let files = [];
  try {
    files = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).map((f) => join(dir, f));
  } catch {
    // No corpus: the message below says how to get one.
  }
  if (files.length === 0) {
    console.error('no photo given and none in /tmp/photos: run `bash /work/shared/corpus/fetch-photos.sh /tmp/photos` or pass one');
    process.exit(2);
  }
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

// sharp sets VIPSHOME to its own libvips when loaded, where the system vips would look for its modules.
const { VIPSHOME: _vipsHome, ...toolEnv } = process.env;
const probe = spawnSync('vips', ['heifsave'], { env: toolEnv, encoding: 'utf8' });
if (!`${probe.stdout ?? ''}${probe.stderr ?? ''}`.includes('HEIF')) {
  console.error('bench --heic needs `vips heifsave` with HEVC to make the 12 MP HEIC: apt-get install -y libvips-tools (Debian\'s libheif has the x265 encoder)');
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'img-pipeline-bench-heic-'));
const photo = pickPhoto();
const master = join(work, 'master.png');
// iPhone 12 MP: 4032x3024, cut from the photo and scaled to that size.
await sharp(photo).resize(4032, 3024, { fit: 'cover' }).png({ compressionLevel: 1 }).toFile(master);
const folders = { jpeg: join(work, 'jpeg'), heic: join(work, 'heic') };
for (const dir of Object.values(folders)) mkdirSync(dir);
await sharp(master).jpeg({ quality: 90 }).toFile(join(work, 'one.jpg'));
// Q 50 in libvips' heifsave is about the size iPhones write (1.5-3 MB for 12 MP).
spawnSync('vips', ['heifsave', master, join(work, 'one.heic'), '--compression', 'hevc', '--Q', '50'], { env: toolEnv, stdio: 'inherit' });
for (let i = 0; i < COPIES; i++) {
  copyFileSync(join(work, 'one.jpg'), join(folders.jpeg, `photo-${i}.jpg`));
  copyFileSync(join(work, 'one.heic'), join(folders.heic, `photo-${i}.heic`));
}

function measure(folder, jobs) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn('./bin/img-pipeline.js', [folder, '--out', join(work, `out-${jobs}`), '-j', String(jobs), '--force', '--quiet'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => (code === 0 ? done(Number(process.hrtime.bigint() - started) / 1e9) : fail(new Error(stderr))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const size = (f) => `${(statSync(join(work, f)).size / 1e6).toFixed(1)} MB`;
console.log(`img-pipeline bench --heic: ${COPIES} copies of ${photo} at 4032x3024 (JPEG q90 ${size('one.jpg')}, HEIC ${size('one.heic')}), thumb+medium jpeg, median of ${runs} runs`);
console.log(`${'jobs'.padEnd(6)}${'JPEG s/image'.padStart(14)}${'HEIC s/image'.padStart(14)}${'HEIC/JPEG'.padStart(11)}`);
for (const jobs of [1, 2]) {
  const times = { jpeg: [], heic: [] };
  for (let r = 0; r < runs; r++) {
    // Interleaved, so drift in machine load hits both alike.
    times.jpeg.push(await measure(folders.jpeg, jobs));
    times.heic.push(await measure(folders.heic, jobs));
  }
  const jpeg = median(times.jpeg) / COPIES;
  const heic = median(times.heic) / COPIES;
  console.log(`${`-j ${jobs}`.padEnd(6)}${jpeg.toFixed(3).padStart(14)}${heic.toFixed(3).padStart(14)}${`${(heic / jpeg).toFixed(1)}x`.padStart(11)}`);
}
rmSync(work, { recursive: true, force: true });
