import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { renderRegions, updateGeneratedRegions } from '../../scripts/docs/cli-reference.js';
import { buildProgram } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/commands/run.js';
import { configSchema } from '../../src/config/schema.js';
import { REPO_ROOT } from '../helpers/paths.js';

const CLI_MD = join(REPO_ROOT, 'docs', 'cli.md');

function program() {
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  const io: Io = { cwd: REPO_ROOT, stdout: sink, stderr: sink, signal: new AbortController().signal };
  return buildProgram(io, () => undefined);
}

describe('docs/cli.md', () => {
  it('matches what npm run docs generates from the code', async () => {
    const committed = await readFile(CLI_MD, 'utf8');
    const generated = updateGeneratedRegions(committed, renderRegions());
    // Compared as booleans first so the failure says what to do before the (long) diff.
    expect(generated === committed, 'docs/cli.md is out of date with the code: run npm run docs and commit the result').toBe(true);
  });

  it('lists every visible option of every command, with the default --help gives', async () => {
    const text = await readFile(CLI_MD, 'utf8');
    for (const command of program().commands) {
      expect(text, `section for ${command.name()}`).toContain(`<!-- generated:options:${command.name()} -->`);
      for (const option of command.options.filter((o) => !o.hidden)) expect(text, option.flags).toContain(`| \`${option.flags}\` |`);
    }
    expect(text).toContain('| `-q, --quality <1-100>` | encoder quality for jpeg, webp and avif | `85` |');
    expect(text).toContain('| `-o, --out <dir>` | output folder or s3://bucket/prefix/ | `./processed` |');
    expect(text).toContain('| `--arch <arch>` | Lambda architecture (one of `arm64`, `x86_64`) | `arm64` |');
  });

  it('describes every config field, with its type and its default from the schema', () => {
    const undescribed: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const inner = (node['anyOf'] as Record<string, unknown>[] | undefined)?.find((m) => m['type'] !== 'null') ?? node;
      if (path && !node['description']) undescribed.push(path);
      const properties = (inner['properties'] ?? (inner['additionalProperties'] as Record<string, unknown> | undefined)?.['properties']) as Record<string, Record<string, unknown>> | undefined;
      for (const [field, child] of Object.entries(properties ?? {})) walk(child, path ? `${path}.${field}` : field);
    };
    walk(z.toJSONSchema(configSchema, { io: 'input' }) as Record<string, unknown>, '');
    expect(undescribed, 'give these fields a .describe() in src/config/schema.ts, then run npm run docs').toEqual([]);
    const config = renderRegions().get('config')!;
    expect(config).toContain('| `quality` | integer ≥ 1, ≤ 100 | `85` | Encoder quality for jpeg, webp and avif. |');
    expect(config).toContain('| `formats` | list of at least 1, each `"jpeg"` \\| `"png"` \\| `"webp"` \\| `"avif"` \\| `"jpg"` | `["jpeg"]` |');
    // Machine-dependent: named, never this machine's core count.
    expect(config).toContain('| `concurrency` | integer ≥ 1, ≤ 64 | the number of CPU cores |');
    expect(renderRegions().get('config-defaults')).not.toContain('concurrency');
  });

  it('lists the exit codes from the code, with the error codes that mean a usage error', () => {
    const exits = renderRegions().get('exit-codes')!;
    expect(exits).toMatch(/^\| `0` \| all processed or skipped/m);
    expect(exits).toMatch(/^\| `2` \| .*`LOCAL_NOT_FOUND`/m);
    expect(exits).toMatch(/^\| `130` \| interrupted/m);
  });
});

describe('updateGeneratedRegions', () => {
  const regions = new Map([['options:run', 'RUN'], ['config', 'CONFIG']]);

  it('replaces only what lies between the markers, keeping the prose around them', () => {
    const before = '# CLI\n\nprose\n\n<!-- generated:options:run -->\nold\n<!-- /generated -->\n\nmore prose\n\n<!-- generated:config -->\n<!-- /generated -->\n';
    expect(updateGeneratedRegions(before, regions)).toBe('# CLI\n\nprose\n\n<!-- generated:options:run -->\nRUN\n<!-- /generated -->\n\nmore prose\n\n<!-- generated:config -->\nCONFIG\n<!-- /generated -->\n');
  });

  it('gives a command added to the code a section after the last command, so npm run docs is all it takes', () => {
    const before = '<!-- generated:options:run -->\nRUN\n<!-- /generated -->\n\n## Config\n\n<!-- generated:config -->\nCONFIG\n<!-- /generated -->\n';
    const after = updateGeneratedRegions(before, new Map([...regions, ['options:backfill', 'BACKFILL']]));
    expect(after).toBe('<!-- generated:options:run -->\nRUN\n<!-- /generated -->\n\n## `backfill`\n\n<!-- generated:options:backfill -->\nBACKFILL\n<!-- /generated -->\n\n## Config\n\n<!-- generated:config -->\nCONFIG\n<!-- /generated -->\n');
    expect(updateGeneratedRegions(after, new Map([...regions, ['options:backfill', 'BACKFILL']]))).toBe(after);
  });

  it('refuses a region the code no longer has, naming it', () => {
    expect(() => updateGeneratedRegions('<!-- generated:options:gone -->\nx\n<!-- /generated -->\n', regions)).toThrow(/"options:gone" that the code no longer has/);
  });
});
