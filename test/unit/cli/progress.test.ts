import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { chooseProgressMode, renderProgress } from '../../../src/cli/progress.js';
import type { FileReport, RunEvent } from '../../../src/runner/run-pipeline.js';

function capture() {
  let text = '';
  const stream = { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

const file = (status: FileReport['status'], input: string): FileReport => ({ input, status, bytesIn: 1, outputs: [], ...(status === 'failed' ? { error: 'boom' } : {}), ...(status === 'skipped' ? { reason: 'up to date' } : {}) });

function emitAll(mode: 'lines' | 'quiet', verbose = false) {
  const events = new EventEmitter<{ event: [RunEvent] }>();
  const out = capture();
  const stop = renderProgress(events, mode, out.stream, verbose);
  events.emit('event', { type: 'found', total: 3 });
  events.emit('event', { type: 'file', file: file('processed', '/in/a.jpg') });
  events.emit('event', { type: 'file', file: file('skipped', '/in/b.jpg') });
  events.emit('event', { type: 'file', file: file('failed', '/in/c.jpg') });
  events.emit('event', { type: 'listed', total: 3 });
  stop();
  events.emit('event', { type: 'file', file: file('failed', '/in/after-stop.jpg') });
  return out.text();
}

describe('chooseProgressMode', () => {
  it('draws a bar only on a TTY without --json or --quiet', () => {
    expect(chooseProgressMode({ json: false, quiet: false, isTTY: true })).toBe('bar');
    expect(chooseProgressMode({ json: false, quiet: false, isTTY: false })).toBe('lines');
    expect(chooseProgressMode({ json: true, quiet: false, isTTY: true })).toBe('quiet');
    expect(chooseProgressMode({ json: false, quiet: true, isTTY: true })).toBe('quiet');
  });
});

describe('renderProgress', () => {
  it('prints plain lines without ANSI codes when not on a TTY, skips only with verbose', () => {
    const text = emitAll('lines');
    expect(text).toBe('processed /in/a.jpg -> 0 outputs (1 B -> 0 B)\nfailed    /in/c.jpg: boom\n');
    expect(text).not.toMatch(/\u001b/);
    expect(emitAll('lines', true)).toContain('skipped   /in/b.jpg (up to date)');
  });

  it('prints only failures when quiet', () => {
    expect(emitAll('quiet')).toBe('failed    /in/c.jpg: boom\n');
  });
});
