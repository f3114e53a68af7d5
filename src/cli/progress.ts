import type { EventEmitter } from 'node:events';
import cliProgress from 'cli-progress';
import type { RunEvent } from '../runner/run-pipeline.js';
import { formatFileLine } from './report.js';

export type ProgressMode = 'bar' | 'lines' | 'quiet';

/** A bar only when a person is watching: stdout and stderr are terminals and neither --json nor --quiet. */
export function chooseProgressMode(options: { json: boolean; quiet: boolean; isTTY: boolean }): ProgressMode {
  if (options.quiet || options.json) return 'quiet';
  return options.isTTY ? 'bar' : 'lines';
}

/**
 * Subscribes a renderer to run events. `bar`: files done/total, rate, ETA and failures, redrawn on stderr.
 * `lines`: one plain line per file (skips only with verbose). `quiet`: failures only.
 * Returns a function that stops the renderer.
 */
export function renderProgress(events: EventEmitter<{ event: [RunEvent] }>, mode: ProgressMode, stream: NodeJS.WriteStream, verbose: boolean): () => void {
  if (mode !== 'bar') {
    const onEvent = (event: RunEvent) => {
      if (event.type !== 'file') return;
      const { status } = event.file;
      if (status === 'failed' || (mode === 'lines' && (status !== 'skipped' || verbose))) stream.write(`${formatFileLine(event.file)}\n`);
    };
    events.on('event', onEvent);
    return () => events.off('event', onEvent);
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{bar} {value}/{total} files | {rate}/s | ETA {eta_formatted} | {failed} failed',
      hideCursor: true,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let done = 0;
  let failed = 0;
  const failures: string[] = [];
  bar.start(0, 0, { rate: '0.0', failed: 0 });
  const onEvent = (event: RunEvent) => {
    if (event.type === 'found' || event.type === 'listed') bar.setTotal(event.total);
    if (event.type !== 'file') return;
    done += 1;
    if (event.file.status === 'failed') {
      failed += 1;
      failures.push(formatFileLine(event.file));
    }
    bar.update(done, { rate: (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1), failed });
  };
  events.on('event', onEvent);
  return () => {
    events.off('event', onEvent);
    bar.stop();
    for (const line of failures) stream.write(`${line}\n`);
  };
}
