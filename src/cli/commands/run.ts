import { EventEmitter } from 'node:events';
import { loadConfig } from '../../config/load.js';
import { preparePipeline } from '../../pipeline/process.js';
import { destinationFolders, IMAGE_EXTENSIONS } from '../../pipeline/layout.js';
import { runPipeline, type RunEvent, type RunReport } from '../../runner/run-pipeline.js';
import type { Config } from '../../config/schema.js';
import { ConfigError, describeError, ImgPipelineError, SetupError } from '../../errors.js';
import { openSink, openSources, sourcesReady, type S3Access } from '../../storage/resolve.js';
import { assertProfileExists } from '../../storage/aws-profile.js';
import { isS3Uri } from '../../storage/s3.js';
import { chooseProgressMode, renderProgress } from '../progress.js';
import { formatSummary, toJson } from '../report.js';
import { pipelineFlags } from '../options.js';
import { escapeControl } from '../terminal-text.js';
import { createReportCollector, type ReportCollector } from '../../report/collect.js';
import { renderReport } from '../../report/html.js';
import { checkReportPath, writeReport } from '../../report/write.js';

export interface RunCommandOptions extends Record<string, unknown> {
  out: string;
  config?: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  report?: string;
}

export interface Io {
  cwd: string;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /** The environment, read here at the edge only (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The run's one S3 client, built only when an input or the output is an `s3://` URI. */
async function s3AccessFor(locations: readonly string[], config: Config, opts: RunCommandOptions, env: NodeJS.ProcessEnv): Promise<S3Access | undefined> {
  if (!locations.some(isS3Uri)) return undefined;
  const pageSizeFlag = opts['s3PageSize'];
  const pageSize = pageSizeFlag === undefined ? undefined : Number(pageSizeFlag);
  if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000)) {
    throw new ConfigError('FLAG_INVALID', `--s3-page-size: expected an integer from 1 to 1000, received "${String(pageSizeFlag)}"`);
  }
  if (config.s3.profile) await assertProfileExists(config.s3.profile, env);
  // Imported here so local-only runs never load the AWS SDK.
  const { createS3Client, customEndpoint } = await import('../../storage/s3-client.js');
  // The SDK reads AWS_ENDPOINT_URL_S3 itself; the client gets the same settings for it as for --endpoint.
  const client = createS3Client(config.s3, { env });
  const endpoint = customEndpoint(config.s3, env);
  return { client, cacheControl: config.s3.cacheControl, ...(pageSize ? { pageSize } : {}), ...(endpoint ? { endpoint } : {}) };
}

/** Whether a run that went its whole course met no image at all (a typo'd folder, outputs only). */
function foundNothing(report: RunReport): boolean {
  return !report.error && !report.interrupted && report.processed + report.skipped + report.failed + report.planned === 0;
}

/** Says that nothing was found, and what the scan left out, so an empty run is never silent. */
function noImagesMessage(inputs: readonly string[], outputFolders: readonly string[]): string {
  const left = outputFolders.length === 0 ? '' : `; left out as earlier img-pipeline outputs: ${outputFolders.slice(0, 3).join(', ')}${outputFolders.length > 3 ? ` and ${outputFolders.length - 3} more` : ''}`;
  return escapeControl(`img-pipeline: no images found under ${[...new Set(inputs)].join(', ')} (images are picked by extension: ${[...IMAGE_EXTENSIONS].join(' ')})${left}`);
}

/**
 * `img-pipeline run`: returns the exit code (0 all good, 1 some files failed or a listing failed, 130
 * interrupted). A run that cannot start throws (SetupError unless it is a config error); with --json,
 * stdout still gets one document, carrying the `error`.
 */
export async function runCommand(inputs: string[], opts: RunCommandOptions, io: Io): Promise<number> {
  try {
    return await runWithReport(inputs, opts, io);
  } catch (error) {
    if (opts.json) {
      const code = error instanceof ImgPipelineError ? error.code : 'UNEXPECTED';
      const empty: RunReport = { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0, interrupted: false, error: { message: describeError(error), code }, files: [] };
      io.stdout.write(`${toJson(empty)}\n`);
    }
    throw error instanceof ConfigError ? error : new SetupError(error);
  }
}


/** The run, and the `--report` page it leaves even when it cannot start. */
async function runWithReport(inputs: string[], opts: RunCommandOptions, io: Io): Promise<number> {
  if (opts.report === undefined) return runImages(inputs, opts, io);
  const startedAt = new Date();
  const reportPath = await checkReportPath(opts.report, io.cwd);
  const page: ReportPage = { path: reportPath, startedAt, collector: undefined, writing: false };
  try {
    return await runImages(inputs, opts, io, page);
  } catch (error) {
    if (page.writing) throw error;
    // A run that could not start, or broke off, still leaves a page that says why: the user asked for one.
    const collector = page.collector ?? createReportCollector({ reportPath, inputs, out: opts.out, dryRun: opts.dryRun ?? false, linkOutputs: true, startedAt });
    await writeReport(reportPath, renderReport(await collector.finish(undefined, describeError(error))));
    throw error;
  }
}

/** Where `--report` goes, and the collector that gathers the page once the run's config is known. */
interface ReportPage {
  path: string;
  startedAt: Date;
  collector: ReportCollector | undefined;
  /** Set once the page of a finished run is being written: a failure there is not retried. */
  writing: boolean;
}

async function runImages(inputs: string[], opts: RunCommandOptions, io: Io, page?: ReportPage): Promise<number> {
  const { layer, sizeOverrides } = pipelineFlags(opts);
  const { config } = await loadConfig({ cwd: io.cwd, file: opts.config, flags: layer, sizeOverrides });
  const s3 = await s3AccessFor([...inputs, opts.out], config, opts, io.env ?? process.env);
  // The pipeline (fonts, watermark) is prepared while each S3 input's first listing page is on its way.
  const [opening, preparing] = await Promise.allSettled([
    openSources(inputs, opts.out, { s3, variants: destinationFolders(config), signal: io.signal }),
    preparePipeline(config, { onWarning: (message) => io.stderr.write(`img-pipeline: warning: ${escapeControl(message)}\n`) }),
  ]);
  // An input that cannot be read is the first thing to fix, as it was when these ran one after the other
  // (the runner reports an S3 input's failing first page itself, before anything else).
  if (opening.status === 'rejected') throw opening.reason;
  if (preparing.status === 'rejected') {
    await sourcesReady(opening.value);
    throw preparing.reason;
  }
  const sources = opening.value;
  const pipeline = preparing.value;
  let sink = openSink(opts.out, { s3 });

  const events = new EventEmitter<{ event: [RunEvent] }>();
  if (page) {
    const collector = createReportCollector({ reportPath: page.path, inputs: sources.map((s) => s.uri), out: sink.uri, dryRun: opts.dryRun ?? false, config, linkOutputs: !isS3Uri(opts.out), startedAt: page.startedAt });
    page.collector = collector;
    sink = collector.wrapSink(sink);
    events.on('event', (event) => collector.add(event));
  }

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
      command: `img-pipeline ${inputs.map((a) => JSON.stringify(a)).join(' ')} --out ${JSON.stringify(opts.out)}`,
    });
  } finally {
    stop();
    s3?.client.destroy();
  }
  if (page?.collector) {
    page.writing = true;
    await writeReport(page.path, renderReport(await page.collector.finish(report)));
    if (!json) io.stderr.write(`Report: ${page.path}\n`);
  }
  if (json) io.stdout.write(`${toJson(report)}\n`);
  const outputFolders = sources.flatMap((s) => s.skippedFolders ?? []);
  if (opts.verbose && !json) for (const folder of outputFolders) io.stderr.write(`skipped   ${escapeControl(folder)}/ (it holds img-pipeline outputs, which are never inputs)\n`);
  if (opts.verbose && !json) {
    for (const link of sources.flatMap((s) => s.brokenLinks ?? [])) io.stderr.write(`skipped   ${escapeControl(link.path)} (a symlink ${link.loops ? 'that loops back on itself' : 'whose target does not exist'})\n`);
  }
  if (foundNothing(report)) io.stderr.write(`${noImagesMessage(inputs, outputFolders)}\n`);
  if (report.error) io.stderr.write(`img-pipeline: the run stopped early: ${escapeControl(report.error.message)}. The files listed before it are in the report; run again to finish the rest.\n`);
  // Always, --quiet included: it drops the per-file lines, not the summary (see --help).
  io.stderr.write(`${formatSummary(report, opts.dryRun ?? false)}\n`);
  if (report.interrupted) return 130;
  return report.failed > 0 || report.error ? 1 : 0;
}
