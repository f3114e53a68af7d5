import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './paths.js';

const run = promisify(execFile);

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** True when some `src/x.ts` has no `dist/x.js`, or it or the CLI bundle (dist/bin/main.js) is older than it. */
async function distIsStale(): Promise<boolean> {
  const src = join(REPO_ROOT, 'src');
  const bundle = await stat(join(REPO_ROOT, 'dist', 'bin', 'main.js')).catch(() => undefined);
  if (!bundle) return true;
  for await (const file of sourceFiles(src)) {
    const built = join(REPO_ROOT, 'dist', relative(src, file).replace(/\.ts$/, '.js'));
    const [s, d] = await Promise.all([stat(file), stat(built).catch(() => undefined)]);
    if (!d || d.mtimeMs < s.mtimeMs || bundle.mtimeMs < s.mtimeMs) return true;
  }
  return false;
}

/** Builds dist/ (tsc, then the CLI bundle) once before the suite, only when it is missing or older than src/. */
export default async function setup(): Promise<void> {
  if (!(await distIsStale())) return;
  try {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT });
  } catch (error) {
    // tsc still emits on type errors (someone else's work in progress); only a missing entry point is fatal.
    const built = await stat(join(REPO_ROOT, 'dist', 'cli', 'main.js')).catch(() => undefined);
    if (!built) throw error;
    const { stdout = '' } = error as { stdout?: string };
    process.stderr.write(`global-setup: tsc reported errors, testing the emitted dist/ anyway:\n${stdout}\n`);
  }
  // The bin runs the esbuild bundle of the CLI, built from src/ like `npm run build` does.
  await run(process.execPath, ['scripts/bundle-cli.mjs'], { cwd: REPO_ROOT });
}
