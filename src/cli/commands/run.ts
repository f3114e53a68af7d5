import { EventEmitter } from 'node:events';
import { loadConfig } from '../../config/load.js';
import { configureSharp, preparePipeline } from '../../pipeline/process.js';
import { runPipeline, type RunEvent } from '../../runner/run-pipeline.js';
import { openSink, openSources } from '../../storage/resolve.js';
import { chooseProgressMode, renderProgress } from '../progress.js';
import { formatSummary, toJson } from '../report.js';
import { pipelineFlags } from '../options.js';

export interface RunCommandOptions extends Record<string, unknown> {
  out: string;
  config?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export interface Io {
  cwd: string;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

/** `img-pipeline run`: returns the exit code (0 all good, 1 some files failed, 130 interrupted). */
export async function runCommand(inputs: string[], opts: RunCommandOptions, io: Io): Promise<number> {
  const { layer, sizeOverrides } = pipelineFlags(opts);
  const { config } = await loadConfig({ cwd: io.cwd, file: opts.config, flags: layer, sizeOverrides });
  const sources = await openSources(inputs, opts.out);
  const sink = openSink(opts.out);
  const pipeline = await preparePipeline(config);
  configureSharp(config.concurrency);

  const events = new EventEmitter<{ event: [RunEvent] }>();
  const json = opts.json ?? false;
  const mode = chooseProgressMode({ json, quiet: opts.quiet ?? false, isTTY: Boolean(io.stdout.isTTY && io.stderr.isTTY) });
  const stop = renderProgress(events, opts.dryRun && !json ? 'lines' : mode, io.stderr, opts.verbose ?? false);
  let report;
  try {
    report = await runPipeline({
      sources,
      sink,
      pipeline,
      concurrency: config.concurrency,
      force: opts.force ?? false,
      dryRun: opts.dryRun ?? false,
      signal: io.signal,
      collectFiles: json,
      events,
    });
  } finally {
    stop();
  }
  if (json) io.stdout.write(`${toJson(report)}\n`);
  if (!opts.quiet || report.failed > 0) io.stderr.write(`${formatSummary(report, opts.dryRun ?? false)}\n`);
  if (report.interrupted) return 130;
  return report.failed > 0 ? 1 : 0;
}
