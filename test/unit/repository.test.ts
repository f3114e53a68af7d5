import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.js';

/** Tracked entries with their modes, or undefined outside a git checkout (an unpacked tarball). */
function trackedEntries(): { mode: string; path: string }[] | undefined {
  try {
    const out = execFileSync('git', ['ls-files', '-s', '-z'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\0').filter(Boolean).map((line) => ({ mode: line.split(' ')[0]!, path: line.split('\t')[1]! }));
  } catch {
    return undefined;
  }
}

describe('the repository', () => {
  // A committed node_modules link replaces the folder npm install makes on every checkout (it once pointed
  // at one engineer's worktree, and at itself there).
  it.skipIf(trackedEntries() === undefined)('tracks no symlink and nothing named node_modules', () => {
    const entries = trackedEntries()!;
    expect(entries.filter((e) => e.mode === '120000').map((e) => e.path)).toEqual([]);
    expect(entries.filter((e) => e.path.split('/').includes('node_modules')).map((e) => e.path)).toEqual([]);
  });
});
