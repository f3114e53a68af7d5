import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.js';

const BIN = join(REPO_ROOT, 'dist', 'bin');

/** The files of dist/bin that main.js reaches through static and dynamic imports of sibling chunks. */
function reachable(): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(join(BIN, file), 'utf8');
    for (const [, name] of text.matchAll(/["']\.\/([\w-]+\.js)["']/g)) visit(name!);
  };
  visit('main.js');
  return seen;
}

describe('the CLI bundle (scripts/bundle-cli.mjs)', () => {
  it('holds only what main.js loads: no chunks left over from earlier builds, which npm would publish', () => {
    const files = readdirSync(BIN).filter((f) => f.endsWith('.js'));
    expect(files.filter((f) => !reachable().has(f))).toEqual([]);
  });
});
