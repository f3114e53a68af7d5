import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT as repoRoot } from '../helpers/paths.js';

interface LockEntry {
  dev?: boolean;
  engines?: { node?: string } | string[];
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string }; files: string[]; scripts: Record<string, string> };
const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
/** The oldest Node the CLI promises to run on. */
const OLDEST = semver.minVersion(pkg.engines.node)!.version;

describe('the published dependency tree', () => {
  it(`every package a user installs runs on Node ${OLDEST} (the AWS SDK after January 2027 would not)`, () => {
    const refusing = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !entry.dev)
      .flatMap(([path, entry]) => {
        const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
        return range && !semver.satisfies(OLDEST, range) ? [`${path.replace(/^.*node_modules\//, '')} wants node ${range}`] : [];
      });
    expect(refusing).toEqual([]);
  });

  it('is published as npm-shrinkwrap.json, so npx installs exactly the tree tested here', () => {
    expect(pkg.files).toContain('npm-shrinkwrap.json');
    expect(pkg.scripts['prepack']).toBe('node scripts/shrinkwrap.mjs');
    expect(pkg.scripts['postpack']).toBe('node scripts/shrinkwrap.mjs remove');
  });
});
