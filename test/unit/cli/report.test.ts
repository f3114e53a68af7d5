import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatFileLine, formatSummary, toJson } from '../../../src/cli/report.js';
import type { FileReport, RunReport } from '../../../src/runner/run-pipeline.js';

const report = (over: Partial<RunReport> = {}): RunReport => ({
  processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0, interrupted: false, files: [], ...over,
});

const processed: FileReport = {
  input: '/in/cat.PNG',
  status: 'processed',
  bytesIn: 2048,
  outputs: [
    { variant: 'thumb', format: 'jpeg', path: '/out/thumb/cat.jpg', width: 128, height: 96, bytes: 1000 },
    { variant: 'medium', format: 'jpeg', path: '/out/medium/cat.jpg', width: 320, height: 240, bytes: 3000 },
  ],
};
const failed: FileReport = { input: '/in/bad.jpg', status: 'failed', error: 'empty file (0 bytes)', code: 'INPUT_EMPTY', bytesIn: 0, outputs: [] };
const skipped: FileReport = { input: '/in/old.jpg', status: 'skipped', reason: 'up to date', bytesIn: 10, outputs: [] };

describe('formatBytes / formatDuration', () => {
  it('reads like a person would say it', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB');
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(2500)).toBe('2.5 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
  });

  it('picks the unit after rounding, so a value never reads as a full next unit', () => {
    expect(formatBytes(1_048_575)).toBe('1.0 MB');
    expect(formatBytes(1024 * 1024 - 1)).not.toMatch(/1024/);
    expect(formatBytes(1024 ** 3 - 1)).toBe('1.0 GB');
    expect(formatBytes(1024 * 99.96)).toBe('100 KB');
    expect(formatBytes(1024 * 99.94)).toBe('99.9 KB');
    expect(formatDuration(999.7)).toBe('1.0 s');
    expect(formatDuration(59_940)).toBe('59.9 s');
    expect(formatDuration(59_999)).toBe('1 min 0 s');
    expect(formatDuration(60_000)).toBe('1 min 0 s');
    expect(formatDuration(119_700)).toBe('2 min 0 s');
    expect(formatDuration(119_400)).toBe('1 min 59 s');
  });
});

describe('formatFileLine', () => {
  it('names the file on every line, one line each', () => {
    expect(formatFileLine(processed)).toBe('processed /in/cat.PNG -> 2 outputs (2.0 KB -> 3.9 KB)');
    expect(formatFileLine(failed)).toBe('failed    /in/bad.jpg: empty file (0 bytes)');
    expect(formatFileLine(skipped)).toBe('skipped   /in/old.jpg (up to date)');
    expect(formatFileLine({ ...processed, status: 'planned' })).toBe('would process /in/cat.PNG -> /out/thumb/cat.jpg, /out/medium/cat.jpg');
    for (const line of [processed, failed, skipped].map(formatFileLine)) expect(line).not.toContain('\n');
  });
});

describe('formatSummary', () => {
  it('gives processed / skipped / failed, bytes in -> out with the saving, and the time', () => {
    expect(formatSummary(report({ processed: 3, skipped: 2, failed: 1, bytesIn: 4 * 1024 * 1024, bytesOut: 1024 * 1024, elapsedMs: 1500 }), false)).toBe(
      '3 processed, 2 skipped, 1 failed in 1.5 s; 4.0 MB in -> 1.0 MB out (75% smaller).',
    );
  });

  it('says "larger" when the outputs outweigh the inputs, never a negative saving', () => {
    const summary = formatSummary(report({ processed: 1, bytesIn: 1000, bytesOut: 5970, elapsedMs: 10 }), false);
    expect(summary).toBe('1 processed, 0 skipped, 0 failed in 10 ms; 1000 B in -> 5.8 KB out (497% larger).');
    expect(formatSummary(report({ processed: 1, bytesIn: 1000, bytesOut: 1000 }), false)).toMatch(/\(0% smaller\)/);
  });

  it('leaves the saving out when nothing was read', () => {
    expect(formatSummary(report({ skipped: 2, elapsedMs: 8 }), false)).toBe('0 processed, 2 skipped, 0 failed in 8 ms; 0 B in -> 0 B out.');
  });

  it('says when the run was interrupted, and what a dry run would do', () => {
    expect(formatSummary(report({ processed: 1, interrupted: true }), false)).toMatch(/^Interrupted: 1 processed/);
    expect(formatSummary(report({ planned: 4, skipped: 1 }), true)).toMatch(/^Dry run: 4 to process, 1 skipped, 0 would fail; nothing written/);
  });

  it('contains no ANSI escape codes', () => {
    expect(formatSummary(report({ processed: 1, failed: 1, bytesIn: 10, bytesOut: 5 }), false)).not.toMatch(/\u001b/);
  });
});

describe('toJson', () => {
  it('is one JSON document with the counts and each file with its outputs', () => {
    const text = toJson(report({ processed: 1, skipped: 1, failed: 1, files: [processed, skipped, failed] }));
    expect(text).not.toContain('\n');
    const doc = JSON.parse(text);
    expect(doc).toMatchObject({ processed: 1, skipped: 1, failed: 1 });
    expect(doc.files).toEqual([
      { input: '/in/cat.PNG', status: 'processed', outputs: processed.outputs },
      { input: '/in/old.jpg', status: 'skipped', reason: 'up to date', outputs: [] },
      { input: '/in/bad.jpg', status: 'failed', error: 'empty file (0 bytes)', code: 'INPUT_EMPTY', outputs: [] },
    ]);
    for (const output of doc.files[0].outputs) expect(Object.keys(output).sort()).toEqual(['bytes', 'format', 'height', 'path', 'variant', 'width']);
  });

  it("leaves a failure's stack (detail, for --verbose) out of the document", () => {
    const withDetail: FileReport = { ...failed, detail: 'InputError: empty file (0 bytes)\n    at inspectInput (decode.js:40:11)' };
    const text = toJson(report({ failed: 1, files: [withDetail] }));
    expect(JSON.parse(text).files[0]).toEqual({ input: '/in/bad.jpg', status: 'failed', error: 'empty file (0 bytes)', code: 'INPUT_EMPTY', outputs: [] });
    expect(text).not.toContain('inspectInput');
  });
});
