import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { describeError, ImgPipelineError } from '../errors.js';
import { CONTENT_TYPES, isImageKey, outputMetadata } from '../pipeline/layout.js';
import { createPlanner, plannedOutputs, type Job } from '../pipeline/plan.js';
import { configureSharp, processImage, type Pipeline } from '../pipeline/process.js';
import type { Sink, Source } from '../storage/types.js';
import { openDestination } from './destination.js';
import { mergeListings } from './merge-listings.js';
import { runJobs } from './run-jobs.js';
import { acquireRunLock } from './run-lock.js';
import { recordState } from './state-file.js';

export type FileStatus = 'processed' | 'skipped' | 'failed' | 'planned';

export interface OutputReport {
  variant: string;
  format: string;
  path: string;
  width?: number;
  height?: number;
  bytes?: number;
}

export interface FileReport {
  input: string;
  status: FileStatus;
  /** Why it was skipped or failed. */
  reason?: string;
  error?: string;
  code?: string;
  /** A failure's stack and cause, printed with --verbose; left out of --json. */
  detail?: string;
  bytesIn: number;
  /** The source's dimensions, oriented (processed files). */
  width?: number;
  height?: number;
  outputs: OutputReport[];
}

/** A failure of the run itself (a listing that broke off), as opposed to one file's. */
export interface RunError {
  message: string;
  code: string;
}

export interface RunReport {
  processed: number;
  skipped: number;
  failed: number;
  planned: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes downloaded plus uploaded, when an input or the output is remote (S3). */
  bytesTransferred?: number;
  elapsedMs: number;
  interrupted: boolean;
  /** Set when a listing failed midway: the files before it are reported, the rest were never seen. */
  error?: RunError;
  /** Every file's report, with `collectFiles` only: this list grows with the files reported. */
  files: FileReport[];
}

/** Progress events for a renderer: the total grows while sources are listed. */
export type RunEvent =
  | { type: 'found'; total: number }
  | { type: 'listed'; total: number }
  | { type: 'file'; file: FileReport };

export interface RunOptions {
  sources: Source[];
  sink: Sink;
  pipeline: Pipeline;
  concurrency: number;
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Keep every file's report (for `--json`); off, only counts are kept and memory stays flat. */
  collectFiles?: boolean;
  events?: EventEmitter<{ event: [RunEvent] }>;
  /** The command line, recorded in the destination's lock so a refused second run can name this one. */
  command?: string;
}

/**
 * Resolves once the clock has left the unit of time a sink records (S3: the second) that contains now.
 * The state file's time counts as the end of its second, so an output written in that same second would
 * look older than the state and be redone by the next run; the run's first writes wait this out instead.
 */
async function pastTimeResolution(resolutionMs: number | undefined): Promise<void> {
  if (!resolutionMs || resolutionMs <= 1) return;
  // A little past the boundary, for a server clock slightly behind ours.
  await sleep(resolutionMs - (Date.now() % resolutionMs) + 50);
}

type Work = { job: Exclude<Job, { action: 'ignore' }>; source: Source; input?: Promise<Buffer> };

/**
 * Lists, plans and processes every source into the sink, with bounded concurrency. Sources are merged
 * into one stream in key order and walked in step with the destination's listings (runner/destination.ts),
 * so memory does not grow with the number of keys; only `collectFiles` keeps a record per file.
 */
export async function runPipeline(options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const { sink } = options;
  const dryRun = options.dryRun ?? false;
  const report: RunReport = { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0, interrupted: false, files: [] };
  configureSharp(options.concurrency);
  // A destination that cannot take outputs (a file in its place, no write access) fails here, before
  // anything is read or written; a dry run only checks, and creates nothing.
  await sink.prepare?.({ create: !dryRun });
  // One run at a time per destination: a second one would mix its outputs with ours under our state file.
  const lock = dryRun ? undefined : await acquireRunLock(sink, { command: options.command ?? 'img-pipeline (library call)' });
  try {
    return await runLocked(options, report, started);
  } finally {
    await lock?.release();
  }
}

/** runPipeline once the destination is prepared and locked. */
async function runLocked(options: RunOptions, report: RunReport, started: number): Promise<RunReport> {
  const { sink, pipeline, signal } = options;
  const force = options.force ?? false;
  const dryRun = options.dryRun ?? false;
  const destination = await openDestination(sink, {
    fingerprint: pipeline.fingerprint,
    variants: Object.keys(pipeline.config.sizes),
    listOutputs: !force,
    ...(signal ? { signal } : {}),
  });
  try {
    let writable: Promise<void> = Promise.resolve();
    if (!dryRun && !destination.stateMatches && !signal?.aborted) {
      await recordState(sink, pipeline.fingerprint, Object.keys(pipeline.config.sizes), destination.stateText);
      writable = pastTimeResolution(sink.timeResolutionMs);
    }
    const plan = createPlanner(pipeline.config, destination, { force, maxFileSize: pipeline.config.limits.maxFileSize });

    let total = 0;
    const emit = (event: RunEvent) => options.events?.emit('event', event);
    const record = (file: FileReport) => {
      report[file.status] += 1;
      report.bytesIn += file.status === 'processed' ? file.bytesIn : 0;
      report.bytesOut += file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0);
      if (options.collectFiles) report.files.push(file);
      emit({ type: 'file', file });
    };

    async function* work(): AsyncGenerator<Work> {
      try {
        for await (const { entry, source } of mergeListings(options.sources, signal)) {
          if (!force && isImageKey(entry.key)) await destination.reach(plannedOutputs(entry.key, pipeline.config).map((o) => o.key));
          const planned = plan(entry, source);
          if (planned.action === 'ignore') continue;
          const job = refuseOverwritingInputs(planned, options.sources, sink);
          total += 1;
          emit({ type: 'found', total });
          // Read ahead where a read is a download (S3): runJobs pulls at most `concurrency` items beyond those
          // running, so their downloads overlap the images being processed instead of leaving a core idle,
          // and memory stays bounded. A local read is quick, and reading ahead would only add to peak memory.
          const input = job.action === 'process' && !dryRun && source.readAhead && !signal?.aborted ? source.read(job.entry, signal) : undefined;
          input?.catch(() => undefined); // awaited by executeJob; this only keeps an early failure from being "unhandled"
          yield { job, source, ...(input ? { input } : {}) };
        }
        emit({ type: 'listed', total });
      } catch (error) {
        // A listing cut short by Ctrl-C ends quietly; the run reports itself interrupted.
        if (signal?.aborted) return;
        // A listing that fails for good ends the run, but not the report: what was done is still reported.
        report.error = { message: describeError(error), code: error instanceof ImgPipelineError ? error.code : 'UNEXPECTED' };
      }
    }

    // With S3 on either side, more images are in flight than decode at once: the CPU-bound part is held to
    // `concurrency`, and the others wait on downloads and uploads meanwhile instead of idling a core.
    const remote = options.sources.some((s) => s.readAhead) || sink.remote === true;
    const cpu = pLimit(options.concurrency);
    const items = work();
    await runJobs(
      // Without `return`: runJobs stopping on Ctrl-C must not close the listing, whose rest is counted below.
      { [Symbol.asyncIterator]: () => ({ next: () => items.next() }) },
      async ({ job, source, input }) => {
        if (job.action === 'process' && !dryRun) await writable;
        record(await executeJob(job, source, sink, pipeline, dryRun, signal, input, cpu));
      },
      {
        concurrency: remote ? options.concurrency * REMOTE_JOBS_PER_SLOT : options.concurrency,
        ...(signal ? { signal } : {}),
        // Listed, but never started because of Ctrl-C: still counted, so the counts add up.
        onDropped: ({ job }) => record(plannedReport(job, sink, dryRun) ?? interruptedReport(job)),
      },
    );
    // Ctrl-C: what was already listed (the pages received) is still reported, as not done, so the counts
    // add up to what was found. The listing itself ends at the next page.
    for await (const { job } of items) record(plannedReport(job, sink, dryRun) ?? interruptedReport(job));
  } finally {
    await destination.close();
  }
  report.interrupted = signal?.aborted ?? false;
  const transferred = [...options.sources, sink].flatMap((s) => (s.bytesTransferred === undefined ? [] : [s.bytesTransferred]));
  if (transferred.length > 0) report.bytesTransferred = transferred.reduce((a, b) => a + b, 0);
  report.elapsedMs = Math.round(performance.now() - started);
  return report;
}

/**
 * Fails a job that would write an output onto an input of this run: its own file (`thumb/x.jpg --out .`
 * writes `./thumb/x.jpg`) or any place a source lists from. Nothing is read or written for it.
 */
function refuseOverwritingInputs(job: Exclude<Job, { action: 'ignore' }>, sources: readonly Source[], sink: Sink): Exclude<Job, { action: 'ignore' }> {
  if (job.action !== 'process' && job.action !== 'skip') return job;
  for (const output of job.outputs) {
    const uri = sink.uriOf(output.key);
    if (uri === job.entry.uri) {
      return { action: 'fail', entry: job.entry, outputs: job.outputs, code: 'OUTPUT_IS_INPUT', reason: `its output ${uri} is this input itself, which would be overwritten; choose an --out whose variant folders do not hold the input` };
    }
    const holder = sources.find((s) => s.contains?.(uri));
    if (holder) {
      return { action: 'fail', entry: job.entry, outputs: job.outputs, code: 'OUTPUT_IS_INPUT', reason: `its output ${uri} would be written onto an input of this run (from ${holder.uri}); choose an --out outside the inputs` };
    }
  }
  return job;
}

function interruptedReport(job: Exclude<Job, { action: 'ignore' }>): FileReport {
  return { input: job.entry.uri, status: 'skipped', reason: 'interrupted before it was processed', bytesIn: job.entry.size, outputs: [] };
}

/** The report of a job that needs no I/O (skipped, failed by the plan, or a dry run); undefined otherwise. */
function plannedReport(job: Exclude<Job, { action: 'ignore' }>, sink: Sink, dryRun: boolean): FileReport | undefined {
  const { entry } = job;
  if (job.action === 'skip') return { input: entry.uri, status: 'skipped', reason: job.reason, bytesIn: entry.size, outputs: [] };
  if (job.action === 'fail') return { input: entry.uri, status: 'failed', error: job.reason, code: job.code, bytesIn: entry.size, outputs: [] };
  if (dryRun) return { input: entry.uri, status: 'planned', bytesIn: entry.size, outputs: job.outputs.map((o) => ({ variant: o.variant, format: o.format, path: sink.uriOf(o.key) })) };
  return undefined;
}

/** Images in flight per decoding slot when storage is remote: enough to cover a download and an upload. */
const REMOTE_JOBS_PER_SLOT = 3;

/** Reads (unless `prefetched` already is), processes (within `cpu`, when given) and writes one job; never throws. */
export async function executeJob(
  job: Exclude<Job, { action: 'ignore' }>,
  source: Source,
  sink: Sink,
  pipeline: Pipeline,
  dryRun: boolean,
  signal?: AbortSignal,
  prefetched?: Promise<Buffer>,
  cpu?: LimitFunction,
): Promise<FileReport> {
  const { entry } = job;
  const planned = plannedReport(job, sink, dryRun);
  if (planned) return planned;
  try {
    const input = await (prefetched ?? source.read(entry, signal));
    const results = await (cpu ? cpu(() => processImage(input, pipeline)) : processImage(input, pipeline));
    // Outputs are written side by side: on S3 each write is a round trip that would otherwise hold the slot.
    const outputs: OutputReport[] = await Promise.all(
      results.map(async (result, i) => {
        const key = job.outputs[i]!.key;
        await sink.write(key, result.data, { contentType: CONTENT_TYPES[result.format], metadata: outputMetadata(entry) }, signal);
        return { variant: result.variant, format: result.format, path: sink.uriOf(key), width: result.width, height: result.height, bytes: result.data.length };
      }),
    );
    return { input: entry.uri, status: 'processed', bytesIn: input.length, ...results[0]?.source, outputs };
  } catch (error) {
    const code = error instanceof ImgPipelineError ? error.code : 'UNEXPECTED';
    if (code === 'INPUT_IS_OUTPUT') return { input: entry.uri, status: 'skipped', reason: describeError(error), bytesIn: entry.size, outputs: [] };
    // A download cut short by Ctrl-C: nothing was written, and the next run picks it up.
    if (code === 'INTERRUPTED') return { input: entry.uri, status: 'skipped', reason: 'interrupted before it was processed', bytesIn: entry.size, outputs: [] };
    // The stack and its cause, for --verbose only: never in --json, which carries the one-line error.
    const detail = error instanceof Error ? `${error.stack ?? error.message}${error.cause ? `\ncaused by: ${String((error.cause as Error).stack ?? error.cause)}` : ''}` : String(error);
    return { input: entry.uri, status: 'failed', error: describeError(error), code, detail, bytesIn: entry.size, outputs: [] };
  }
}
