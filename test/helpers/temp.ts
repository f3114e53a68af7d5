import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

const created: string[] = [];

/** A fresh empty folder under the OS temp dir, removed by `removeTempDirs()`. */
export async function makeTempDir(prefix = 'img-pipeline-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Removes every folder `makeTempDir` made in this test file; call it from `afterAll`. */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Every file under `root` (hidden ones included), as `/`-separated paths relative to it, sorted. */
export async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** sha256 of every file under `root`, keyed by relative path: compare before and after to prove nothing changed. */
export async function hashTree(root: string): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {};
  for (const file of await listFiles(root)) hashes[file] = createHash('sha256').update(await readFile(join(root, file))).digest('hex');
  return hashes;
}

/** The marker each local variant folder gets (OUTPUT_FOLDER_MARKER); tests about it list it on their own. */
export const FOLDER_MARKER = /^(.*\/)?[^/]+\/\.img-pipeline-output\.json$/;

/** Like listFiles, without the variant folders' markers. */
export async function listOutputFiles(root: string): Promise<string[]> {
  return (await listFiles(root)).filter((f) => !FOLDER_MARKER.test(f));
}
