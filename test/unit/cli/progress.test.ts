import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chooseProgressMode, renderProgress } from '../../../src/cli/progress.js';
import type { FileReport, RunEvent } from '../../../src/runner/run-pipeline.js';

function capture() {
  let text = '';
  const stream = { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

const file = (status: FileReport['status'], input: string): FileReport => ({ input, status, bytesIn: 1, outputs: [], ...(status === 'failed' ? { error: 'boom', detail: 'InputError: boom\n    at inspectInput (decode.ts:1:1)\ncaused by: Error: root cause' } : {}), ...(status === 'skipped' ? { reason: 'up to date' } : {}) });

/** A stand-in for a terminal: what cli-progress and readline need of a TTY stream. */
function fakeTty(columns = 120) {
  let text = '';
  const stream = { write: (s: string) => ((text += s), true), isTTY: true, columns } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

/** The bar as last drawn: the text after the last cursor move to column 1, without escape codes. */
function lastDrawn(text: string): string {
  const frames = text.split('\u001b[1G');
  return frames[frames.length - 1]!.replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]/g, '').split('\n')[0]!.trim();
}

function emitAll(mode: 'lines' | 'quiet' | 'bar', verbose = false) {
  const events = new EventEmitter<{ event: [RunEvent] }>();
  const out = mode === 'bar' ? fakeTty() : capture();
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

describe('renderProgress on a TTY (bar)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shows files done/total, the rate, the ETA and the failure count', () => {
    vi.useFakeTimers({ now: 0 });
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const out = fakeTty();
    const stop = renderProgress(events, 'bar', out.stream, false);
    for (let total = 1; total <= 4; total++) events.emit('event', { type: 'found', total });
    events.emit('event', { type: 'listed', total: 4 });
    vi.advanceTimersByTime(1000);
    events.emit('event', { type: 'file', file: file('processed', '/in/a.jpg') });
    vi.advanceTimersByTime(1000);
    events.emit('event', { type: 'file', file: file('failed', '/in/c.jpg') });
    vi.advanceTimersByTime(150); // the next redraw (10 per second)
    // Two files in two seconds: 1.0/s, and two more to go take about two seconds.
    expect(lastDrawn(out.text())).toMatch(/^[█░]+ 2\/4 files \| 1\.0\/s \| ETA 2s \| 1 failed$/);
    stop();
    // Failures are listed once the bar is gone, one line each.
    expect(out.text()).toMatch(/\nfailed {4}\/in\/c\.jpg: boom\n$/);
  });

  it('draws nothing while no input is found (never a full bar reading 0/0), and marks a total still growing', () => {
    vi.useFakeTimers({ now: 0 });
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const out = fakeTty();
    const stop = renderProgress(events, 'bar', out.stream, false);
    vi.advanceTimersByTime(500);
    expect(out.text()).toBe('');
    events.emit('event', { type: 'found', total: 1 });
    expect(lastDrawn(out.text())).toMatch(/^░+ 0\/1\+ files \| 0\.0\/s \|/);
    events.emit('event', { type: 'found', total: 2 });
    events.emit('event', { type: 'listed', total: 2 });
    vi.advanceTimersByTime(150);
    expect(lastDrawn(out.text())).toMatch(/^░+ 0\/2 files /);
    stop();
    expect(out.text()).not.toMatch(/0\/0/);
  });

  it('draws nothing at all for a run that finds no input', () => {
    const events = new EventEmitter<{ event: [RunEvent] }>();
    const out = fakeTty();
    const stop = renderProgress(events, 'bar', out.stream, false);
    events.emit('event', { type: 'listed', total: 0 });
    stop();
    expect(out.text()).toBe('');
  });
});

describe('renderProgress with --verbose', () => {
  it('follows a failure with its stack and cause, indented, in every mode', () => {
    for (const mode of ['lines', 'quiet', 'bar'] as const) {
      const text = emitAll(mode, true);
      expect(text, mode).toMatch(/failed {4}\/in\/c\.jpg: boom\n {4}InputError: boom\n {8}at inspectInput \(decode\.ts:1:1\)\n {4}caused by: Error: root cause\n/);
    }
  });

  it('prints no stack without it', () => {
    for (const mode of ['lines', 'quiet', 'bar'] as const) expect(emitAll(mode, false), mode).not.toMatch(/root cause|at inspectInput/);
  });
});
