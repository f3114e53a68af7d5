import type { EventEmitter } from 'node:events';
import cliProgress from 'cli-progress';
import type { FileReport, RunEvent } from '../runner/run-pipeline.js';
import { formatFileLine } from './report.js';
import { escapeControl } from './terminal-text.js';

export type ProgressMode = 'bar' | 'lines' | 'quiet';

/** A bar only when a person is watching: stdout and stderr are terminals and neither --json nor --quiet. */
export function chooseProgressMode(options: { json: boolean; quiet: boolean; isTTY: boolean }): ProgressMode {
  if (options.quiet || options.json) return 'quiet';
  return options.isTTY ? 'bar' : 'lines';
}

/** A failed file's line, followed with --verbose by its stack and cause, indented. */
function failureText(file: FileReport, verbose: boolean): string {
  const line = `${formatFileLine(file)}\n`;
  if (!verbose || !file.detail) return line;
  return `${line}${escapeControl(file.detail, { keepNewlines: true }).split('\n').map((l) => `    ${l}`).join('\n')}\n`;
}

/**
 * Subscribes a renderer to run events. `bar`: files done/total, rate, ETA and failures, redrawn on stderr.
 * `lines`: one plain line per file (skips only with verbose). `quiet`: failures only.
 * With verbose, a failure is followed by its stack and cause. Returns a function that stops the renderer.
 */
export function renderProgress(events: EventEmitter<{ event: [RunEvent] }>, mode: ProgressMode, stream: NodeJS.WriteStream, verbose: boolean): () => void {
  if (mode !== 'bar') {
    const onEvent = (event: RunEvent) => {
      if (event.type !== 'file') return;
      const { status } = event.file;
      if (status === 'failed') stream.write(failureText(event.file, verbose));
      else if (mode === 'lines' && (status !== 'skipped' || verbose)) stream.write(`${formatFileLine(event.file)}\n`);
    };
    events.on('event', onEvent);
    return () => events.off('event', onEvent);
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      // `{more}` is "+" while the inputs are still being listed: the total is a lower bound until then.
      format: '{bar} {value}/{total}{more} files | {rate}/s | ETA {eta_formatted} | {failed} failed',
      hideCursor: true,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let done = 0;
  let failed = 0;
  let total = 0;
  let listed = false;
  // Started on the first file found, not before: cli-progress draws a total of 0 as a full bar ("0/0 files").
  let drawing = false;
  const failures: string[] = [];
  const payload = () => ({ rate: (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1), failed, more: listed ? '' : '+' });
  const onEvent = (event: RunEvent) => {
    if (event.type === 'found' || event.type === 'listed') {
      total = event.total;
      listed ||= event.type === 'listed';
      if (!drawing && total > 0) {
        bar.start(total, done, payload());
        drawing = true;
      } else if (drawing) {
        bar.setTotal(total);
        bar.update(payload());
      }
      return;
    }
    done += 1;
    if (event.file.status === 'failed') {
      failed += 1;
      failures.push(failureText(event.file, verbose));
    }
    if (drawing) bar.update(done, payload());
  };
  events.on('event', onEvent);
  return () => {
    events.off('event', onEvent);
    if (drawing) bar.stop();
    for (const text of failures) stream.write(text);
  };
}
