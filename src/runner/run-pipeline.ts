import { EventEmitter } from 'node:events';
import { describeError, ImgPipelineError } from '../errors.js';
import { CONTENT_TYPES, outputMetadata, STATE_KEY } from '../pipeline/layout.js';
import { createPlanner, type DestinationIndex, type Job } from '../pipeline/plan.js';
import { processImage, type Pipeline } from '../pipeline/process.js';
import type { Sink, Source } from '../storage/types.js';
import { runJobs } from './run-jobs.js';

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
  bytesIn: number;
  outputs: OutputReport[];
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
  /** Skip zero-byte objects rather than failing them (S3 folder placeholders). */
  skipEmpty?: boolean;
  signal?: AbortSignal;
  /** Keep every file's report (for `--json`); off, only counts are kept and memory stays flat. */
  collectFiles?: boolean;
  events?: EventEmitter<{ event: [RunEvent] }>;
}

interface State {
  fingerprint: string;
}

/** One listing of the destination, plus the recorded fingerprint: decides what is already up to date. */
export async function indexDestination(sink: Sink, fingerprint: string, signal?: AbortSignal): Promise<DestinationIndex & { stateMatches: boolean }> {
  const outputs = new Map<string, number>();
  let stateTime: number | undefined;
  for await (const entry of sink.list(signal)) {
    if (entry.key === STATE_KEY) stateTime = entry.mtimeMs;
    else outputs.set(entry.key, entry.mtimeMs);
  }
  let stateMatches = false;
  if (stateTime !== undefined) {
    const text = await sink.readText(STATE_KEY);
    try {
      stateMatches = text !== undefined && (JSON.parse(text) as State).fingerprint === fingerprint;
    } catch {
      stateMatches = false;
    }
  }
  return { outputs, freshSince: stateMatches ? stateTime : undefined, stateMatches };
}

/** Records which config the destination's outputs are made with, before the first output is written. */
export async function recordState(sink: Sink, fingerprint: string): Promise<void> {
  const body = `${JSON.stringify({ tool: 'img-pipeline', fingerprint } satisfies State & { tool: string }, null, 2)}\n`;
  await sink.write(STATE_KEY, Buffer.from(body), { contentType: 'application/json', metadata: {} });
}

/** Lists, plans and processes every source into the sink, with bounded concurrency. */
export async function runPipeline(options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const { sink, pipeline, signal } = options;
  const report: RunReport = { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0, interrupted: false, files: [] };
  const destination = await indexDestination(sink, pipeline.fingerprint, signal);
  if (!options.dryRun && !destination.stateMatches) await recordState(sink, pipeline.fingerprint);
  const plan = createPlanner(pipeline.config, destination, {
    force: options.force ?? false,
    skipEmpty: options.skipEmpty ?? false,
    maxFileSize: pipeline.config.limits.maxFileSize,
  });

  let total = 0;
  const emit = (event: RunEvent) => options.events?.emit('event', event);
  const record = (file: FileReport) => {
    report[file.status] += 1;
    report.bytesIn += file.status === 'processed' ? file.bytesIn : 0;
    report.bytesOut += file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0);
    if (options.collectFiles) report.files.push(file);
    emit({ type: 'file', file });
  };

  type Work = { job: Exclude<Job, { action: 'ignore' }>; source: Source; input?: Promise<Buffer> };
  async function* work(): AsyncGenerator<Work> {
    for (const source of options.sources) {
      for await (const entry of source.list(signal)) {
        const job = plan(entry);
        if (job.action === 'ignore') continue;
        total += 1;
        emit({ type: 'found', total });
        // Read ahead: runJobs pulls at most `concurrency` items beyond those running, so their downloads
        // overlap the images being processed instead of leaving a core idle, and memory stays bounded.
        const input = job.action === 'process' && !options.dryRun ? source.read(job.entry, signal) : undefined;
        input?.catch(() => undefined); // awaited by executeJob; this only keeps an early failure from being "unhandled"
        yield { job, source, ...(input ? { input } : {}) };
      }
    }
    emit({ type: 'listed', total });
  }

  await runJobs(work(), async ({ job, source, input }) => record(await executeJob(job, source, sink, pipeline, options.dryRun ?? false, signal, input)), { concurrency: options.concurrency, ...(signal ? { signal } : {}) });
  report.interrupted = signal?.aborted ?? false;
  const transferred = [...options.sources, sink].flatMap((s) => (s.bytesTransferred === undefined ? [] : [s.bytesTransferred]));
  if (transferred.length > 0) report.bytesTransferred = transferred.reduce((a, b) => a + b, 0);
  report.elapsedMs = Math.round(performance.now() - started);
  return report;
}

/** Reads (unless `prefetched` already is), processes and writes one job; never throws. */
export async function executeJob(job: Exclude<Job, { action: 'ignore' }>, source: Source, sink: Sink, pipeline: Pipeline, dryRun: boolean, signal?: AbortSignal, prefetched?: Promise<Buffer>): Promise<FileReport> {
  const { entry } = job;
  const planned = job.outputs.map((o) => ({ variant: o.variant, format: o.format, path: sink.uriOf(o.key) }));
  if (job.action === 'skip') return { input: entry.uri, status: 'skipped', reason: job.reason, bytesIn: entry.size, outputs: [] };
  if (job.action === 'fail') return { input: entry.uri, status: 'failed', error: job.reason, code: job.code, bytesIn: entry.size, outputs: [] };
  if (dryRun) return { input: entry.uri, status: 'planned', bytesIn: entry.size, outputs: planned };
  try {
    const input = await (prefetched ?? source.read(entry, signal));
    const results = await processImage(input, pipeline);
    // Outputs are written side by side: on S3 each write is a round trip that would otherwise hold the slot.
    const outputs: OutputReport[] = await Promise.all(
      results.map(async (result, i) => {
        const key = job.outputs[i]!.key;
        await sink.write(key, result.data, { contentType: CONTENT_TYPES[result.format], metadata: outputMetadata(entry) }, signal);
        return { variant: result.variant, format: result.format, path: sink.uriOf(key), width: result.width, height: result.height, bytes: result.data.length };
      }),
    );
    return { input: entry.uri, status: 'processed', bytesIn: input.length, outputs };
  } catch (error) {
    const code = error instanceof ImgPipelineError ? error.code : 'UNEXPECTED';
    if (code === 'INPUT_IS_OUTPUT') return { input: entry.uri, status: 'skipped', reason: describeError(error), bytesIn: entry.size, outputs: [] };
    // A download cut short by Ctrl-C: nothing was written, and the next run picks it up.
    if (code === 'INTERRUPTED') return { input: entry.uri, status: 'skipped', reason: 'interrupted before it was processed', bytesIn: entry.size, outputs: [] };
    return { input: entry.uri, status: 'failed', error: describeError(error), code, bytesIn: entry.size, outputs: [] };
  }
}
