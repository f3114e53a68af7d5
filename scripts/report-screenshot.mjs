// Remakes docs/images/report.png, the README's picture of `--report`: `node scripts/report-screenshot.mjs`.
// It runs the built CLI over the shipped sample images (and one corrupt file, so the failures section
// shows) and photographs the page in Debian's chromium, the browser the tests use.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';

const repo = fileURLToPath(new URL('..', import.meta.url));
const work = await mkdtemp(join(tmpdir(), 'demo-'));
try {
  execFileSync('cp', ['-r', join(repo, 'fixtures/images'), join(work, 'photos')]);
  await copyFile(join(repo, 'fixtures/bad/truncated.jpg'), join(work, 'photos/truncated.jpg'));
  const cli = join(repo, 'bin/img-pipeline.js');
  try {
    execFileSync(process.execPath, [cli, 'photos', '--out', 'processed', '--watermark', '© Acme', '--report', 'report.html', '--quiet'], { cwd: work, stdio: 'inherit' });
  } catch {
    // Exit code 1: the corrupt file failed, as intended.
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  await page.goto(pathToFileURL(join(work, 'report.html')).href);
  await page.waitForFunction(() => [...document.images].every((i) => i.complete));
  const shot = await page.screenshot({ fullPage: true });
  await browser.close();
  await mkdir(join(repo, 'docs/images'), { recursive: true });
  const out = join(repo, 'docs/images/report.png');
  // A palette PNG: a tenth of the bytes, and the page has few colours beyond the thumbnails.
  await sharp(shot).png({ palette: true, quality: 80, effort: 10 }).toFile(out);
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
