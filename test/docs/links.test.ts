import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.js';

/** README.md and every docs/*.md, as absolute paths. */
async function docFiles(): Promise<string[]> {
  const docs = (await readdir(join(REPO_ROOT, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => join(REPO_ROOT, 'docs', name));
  return [join(REPO_ROOT, 'README.md'), ...docs];
}

/** GitHub's heading anchor: lower case, punctuation dropped (hyphens kept), each space a hyphen. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').replace(/ /g, '-');
}

/** The anchors of a markdown file's headings (outside code blocks). */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    const heading = !inCode && /^#{1,6} (.+)$/.exec(line);
    if (heading) found.add(anchorOf(heading[1]!));
  }
  return found;
}

describe('README.md and docs/', () => {
  it('keeps the README a three-minute read: at most about 12 KB', async () => {
    const size = Buffer.byteLength(await readFile(join(REPO_ROOT, 'README.md'), 'utf8'));
    expect(size, 'README.md grew past 12 KB: move the detail into docs/<topic>.md and link to it').toBeLessThanOrEqual(12 * 1024);
  });

  it('gives the set-up commands CI runs', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const ci = await readFile(join(REPO_ROOT, '.ci', 'run'), 'utf8');
    for (const command of ['npm install', 'npm test']) {
      expect(ci).toMatch(new RegExp(`^${command}$`, 'm'));
      expect(readme).toMatch(new RegExp(`^${command}\\b`, 'm'));
    }
  });

  it('links only to files and headings that exist', async () => {
    const files = await docFiles();
    const broken: string[] = [];
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const linked = path === '' ? file : join(dirname(file), path);
        const linkedText = await readFile(linked, 'utf8').catch(() => undefined);
        const where = `${relative(REPO_ROOT, file)} -> ${target}`;
        if (linkedText === undefined) broken.push(`${where}: no such file`);
        else if (anchor !== undefined && !anchors(linkedText).has(anchor)) broken.push(`${where}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});
