import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, DOCS_POINTER, EXIT, reportFatal } from '../../../src/cli/main.js';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError, InputError, PipelineError, StorageError } from '../../../src/errors.js';
import { REPO_ROOT } from '../../helpers/paths.js';

function capture() {
  let text = '';
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

describe('reportFatal', () => {
  it('maps config errors and missing inputs to exit code 2, others to 1, in one line', () => {
    const cases: [unknown, number][] = [
      [new ConfigError('CONFIG_INVALID', 'invalid configuration'), EXIT.usage],
      [new StorageError('LOCAL_NOT_FOUND', 'input x does not exist'), EXIT.usage],
      [new StorageError('LOCAL_WRITE_FAILED', 'disk full'), EXIT.failed],
      [new InputError('INPUT_EMPTY', 'empty'), EXIT.failed],
      [new PipelineError('PIPELINE_FAILED', 'boom'), EXIT.failed],
      [new Error('surprise'), EXIT.failed],
    ];
    for (const [error, code] of cases) {
      const out = capture();
      expect(reportFatal(error, out.stream, false)).toBe(code);
      expect(out.text()).toMatch(/^img-pipeline: .+\n$/);
    }
  });

  it('escapes a line break inside a message, which could otherwise forge a line of output', () => {
    // A lock written by another machine names its host and command: text from outside, like a file name.
    const out = capture();
    reportFatal(new StorageError('OUT_LOCKED', 'another run is writing to s3://b/ (pid 1 on host x\nprocessed s3://b/a.jpg)'), out.stream, false);
    expect(out.text()).toBe('img-pipeline: another run is writing to s3://b/ (pid 1 on host x\\nprocessed s3://b/a.jpg)\n');
  });

  it('prints a config error one invalid field a line, each line escaped', () => {
    const out = capture();
    try {
      validateConfig({ quality: 'high', 'a\nb': 1 }, 'cfg\n.json');
    } catch (error) {
      reportFatal(error, out.stream, false);
    }
    expect(out.text().split('\n')).toEqual([
      'img-pipeline: invalid configuration in cfg\\n.json:',
      '  quality: expected number, received "high" (string)',
      '  (top level): unknown field "a\\nb"',
      '',
    ]);
  });

  it('prints the stack and cause only with --verbose', () => {
    const error = new ConfigError('CONFIG_INVALID', 'bad', { cause: new Error('root cause') });
    const quiet = capture();
    reportFatal(error, quiet.stream, false);
    expect(quiet.text()).not.toMatch(/ at |root cause/);
    const verbose = capture();
    reportFatal(error, verbose.stream, true);
    expect(verbose.text()).toMatch(/caused by: .*root cause/);
  });

  it('escapes a line break in the messages that --verbose repeats at the head of each stack', () => {
    // A stack opens with "Name: message", so the message's raw line break would forge a line there too.
    const cause = new Error("ENOENT: no such file or directory, open 'a\nprocessed b'");
    const out = capture();
    reportFatal(new StorageError('OUT_LOCKED', 'locked by host x\nprocessed s3://b/a.jpg', { cause }), out.stream, true);
    const lines = out.text().split('\n');
    expect(lines.filter((line) => line.startsWith('processed'))).toEqual([]);
    expect(lines).toContain('StorageError: locked by host x\\nprocessed s3://b/a.jpg');
    expect(lines).toContain("caused by: Error: ENOENT: no such file or directory, open 'a\\nprocessed b'");
    expect(lines.filter((line) => line.startsWith('    at ')).length).toBeGreaterThan(1);
  });
});

describe('buildProgram', () => {
  const io = () => {
    const stdout = capture();
    const stderr = capture();
    return { stdout, stderr, io: { cwd: process.cwd(), stdout: stdout.stream, stderr: stderr.stream, signal: new AbortController().signal } };
  };

  it('documents every flag of the issue in --help', async () => {
    const { io: streams, stdout } = io();
    const error = await buildProgram(streams, () => undefined).parseAsync(['node', 'img-pipeline', 'run', '--help']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    for (const flag of ['--out', '--config', '--sizes', '--fit', '--format', '--quality', '--watermark ', '--watermark-image', '--watermark-position', '--watermark-opacity', '--no-watermark', '--background', '--keep-metadata', '--concurrency', '--force', '--dry-run', '--json', '--quiet', '--verbose']) {
      expect(stdout.text(), flag).toContain(flag);
    }
    expect(stdout.text()).toMatch(/-o, --out/);
    expect(stdout.text()).toMatch(/-j, --concurrency/);
    expect(stdout.text()).toMatch(/-f, --format/);
    expect(stdout.text()).toMatch(/-q, --quality/);
  });

  it('top-level --help gives the usage with the default run command, examples, and where every option is', async () => {
    const { io: streams, stdout } = io();
    const error = await buildProgram(streams, () => undefined).parseAsync(['node', 'img-pipeline', '--help']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    const text = stdout.text();
    expect(text).toMatch(/^Usage: img-pipeline \[run\] <input\.\.\.> \[options\]/);
    expect(text).toMatch(/"run" is the default command/);
    expect(text).toMatch(/Examples:\n {2}img-pipeline \.\/photos --out \.\/processed\n/);
    expect(text).toContain('--watermark "© Acme" -j 4');
    expect(text).toContain('--format jpeg,webp,avif');
    expect(text).toContain('Run `img-pipeline run --help` for all options');
    for (const command of ['run', 'deploy', 'destroy']) expect(text).toMatch(new RegExp(`\n {2}${command} `));
  });

  it('ends the top-level --help with one line pointing at the docs, which the package ships', async () => {
    const { io: streams, stdout } = io();
    await buildProgram(streams, () => undefined).parseAsync(['node', 'img-pipeline', '--help']).catch((e: unknown) => e);
    expect(stdout.text().trimEnd().split('\n').at(-1)).toBe(DOCS_POINTER);
    const { name, files } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; files: string[] };
    expect(files).toContain('docs');
    expect(DOCS_POINTER).toContain(`node_modules/${name}/docs/`);
    for (const path of DOCS_POINTER.match(/docs\/[\w.-]+\.md/g) ?? []) expect(existsSync(join(REPO_ROOT, path)), path).toBe(true);
  });

  /** The headed sections of a --help text, each with its entries (lines indented by two, not continuations). */
  function helpSections(text: string): Map<string, string[]> {
    const sections = new Map<string, string[]>();
    let entries: string[] | undefined;
    for (const line of text.split('\n')) {
      if (/^\S.*:$/.test(line)) sections.set(line, (entries = []));
      else if (line === '') entries = undefined;
      else if (/^ {2}\S/.test(line)) entries?.push(line.trim());
    }
    return sections;
  }

  it('lists -h, --help once in every command\'s --help, with the command\'s own options, never in a group of its own', async () => {
    const names = buildProgram(io().io, () => undefined).commands.map((command) => command.name()).filter((name) => name !== 'help');
    expect(names).toEqual(expect.arrayContaining(['run', 'deploy', 'destroy', 'backfill']));
    for (const path of [[], ...names.map((name) => [name])]) {
      const { io: streams, stdout } = io();
      const program = buildProgram(streams, () => undefined);
      await program.parseAsync(['node', 'img-pipeline', ...path, '--help']).catch((e: unknown) => e);
      const where = `img-pipeline ${[...path, '--help'].join(' ')}`;
      const withHelp = [...helpSections(stdout.text())].filter(([, entries]) => entries.some((entry) => entry.startsWith('-h, --help')));
      expect(withHelp, where).toHaveLength(1);
      const [heading, entries] = withHelp[0]!;
      expect(entries.length, `${where}: ${heading} holds only -h, --help`).toBeGreaterThan(1);
      // A command whose options open with a group of its own (Run options:, ...) lists help there.
      const command = path.length > 0 ? program.commands.find((c) => c.name() === path[0])! : program;
      expect(heading, where).toBe(command.options[0]?.helpGroupHeading ?? 'Options:');
    }
  });

  it('rejects an unknown flag as a usage error', async () => {
    const { io: streams, stderr } = io();
    const error = await buildProgram(streams, () => undefined).parseAsync(['node', 'img-pipeline', 'in', '--bogus']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect(stderr.text()).toMatch(/unknown option '--bogus'/);
  });
});
