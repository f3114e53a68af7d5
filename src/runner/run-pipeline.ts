import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Config } from '../config/schema.js';
import { describeError, ImgPipelineError, StorageError } from '../errors.js';
import { CONTENT_TYPES, destinationFolders, isImageKey, outputMetadata } from '../pipeline/layout.js';
import type { Placeholder } from '../pipeline/placeholder.js';
import { createPlanner, destinationKeys, type Job } from '../pipeline/plan.js';
import { configureSharp, processSource, type Pipeline, type ProcessedImage } from '../pipeline/process.js';
import { buildSidecar, type SidecarOutput } from '../report/sidecar.js';
import { sourcesReady } from '../storage/resolve.js';
import type { Sink, Source } from '../storage/types.js';
import { openDestination, type Destination } from './destination.js';
import { ByteBudget, type Release } from './byte-budget.js';
import { mergeListings } from './merge-listings.js';
import { acquireRunLock, type RunLock } from './run-lock.js';
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
  /** Where its sidecar is (or, in a dry run, would be) written, with sidecars on. */
  sidecar?: string;
  /** Its placeholder, computed with sidecars on. */
  placeholder?: Placeholder;
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

/**
 * How far transfers may run ahead of and behind the decoders, when a source or the sink is remote (S3).
 * Each stage is bounded on its own: downloads by `downloads` requests and `inputBytes`, uploads by
 * `uploads` requests and `outputBytes`; the decoders by `concurrency`.
 */
export interface TransferLimits {
  /** Bytes of inputs downloading or downloaded and not yet through the decoder (S3 sources). */
  inputBytes: number;
  /** Bytes of outputs encoded and not yet uploaded (S3 sinks). */
  outputBytes: number;
  /** GETs in flight at once. */
  downloads: number;
  /** PUTs in flight at once. */
  uploads: number;
}

/** The limits the `s3` settings give: the connections split evenly between downloads and uploads. */
export function transferLimits(s3: Pick<Config['s3'], 'connections' | 'readAheadBytes' | 'writeBehindBytes'>): TransferLimits {
  const downloads = Math.max(1, Math.floor(s3.connections / 2));
  return { inputBytes: s3.readAheadBytes, outputBytes: s3.writeBehindBytes, downloads, uploads: Math.max(1, s3.connections - downloads) };
}

export interface RunOptions {
  sources: Source[];
  sink: Sink;
  pipeline: Pipeline;
  concurrency: number;
  /** Default: transferLimits(pipeline.config.s3). */
  transfer?: TransferLimits;
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

type RunnableJob = Exclude<Job, { action: 'ignore' }>;
type Work = { job: RunnableJob; source: Source };

/**
 * Lists, plans and processes every source into the sink. Sources are merged into one stream in key order
 * and walked in step with the destination's listings (runner/destination.ts), so memory does not grow
 * with the number of keys; only `collectFiles` keeps a record per file.
 *
 * Each image goes through three stages, each bounded on its own: its download (S3 sources: started as
 * soon as the input budget has room, so downloads run ahead of the decoders), its decode and encode
 * (`concurrency` at once), and its uploads (S3 sinks: the decoding slot is freed as soon as the outputs
 * fit the output budget, so uploads trail behind while the next image decodes). Enough images are then
 * in flight to cover the network's round trips (throughput x latency) while memory stays within the
 * local run's plus the two byte budgets.
 */
export async function runPipeline(options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const { sink } = options;
  const dryRun = options.dryRun ?? false;
  const report: RunReport = { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0, interrupted: false, files: [] };
  configureSharp(options.concurrency);
  // Nothing is written before every source has answered (S3: its first listing page, which the run lists
  // from anyway, so the check costs no round trip of its own). A local destination is not even created
  // before then; an S3 destination's lock is taken meanwhile, and released when a source fails.
  const listable = sourcesReady(options.sources);
  listable.catch(() => undefined); // awaited below and in runLocked; this only keeps a failure from being "unhandled" meanwhile
  if (!sink.remote) await listable;
  // A destination that cannot take outputs (a file in its place, no write access) fails here, before
  // anything is read or written; a dry run only checks, and creates nothing.
  try {
    await sink.prepare?.({ create: !dryRun });
  } catch (error) {
    throw await explainedBy(listable, error);
  }
  // One run at a time per destination: a second one would mix its outputs with ours under our state file.
  // Taken while the destination's state and the sources' first page are read and the first images
  // download (runLocked); only writing waits for it. On S3 these round trips then overlap instead of
  // adding up before the first download.
  const lock = dryRun ? Promise.resolve(undefined) : acquireRunLock(sink, { command: options.command ?? 'img-pipeline (library call)' });
  lock.catch(() => undefined); // awaited in runLocked; this only keeps a refusal from being "unhandled" meanwhile
  try {
    return await runLocked(options, report, started, listable, lock);
  } finally {
    await (await lock.catch(() => undefined))?.release();
  }
}

/**
 * Consecutive files failing with S3_UNREACHABLE that stop the run: one is a blip the SDK's retries
 * could not hide, several in a row mean the store is gone, and every remaining file would only print
 * the same "cannot reach" line.
 */
export const UNREACHABLE_LIMIT = 3;

/**
 * What a run that could not start reports: a source that cannot be listed explains whatever else failed
 * meanwhile (the destination's lock or state, on the same bad credentials), as when sources were checked
 * before anything else.
 */
function explainedBy(listable: Promise<void>, error: unknown): Promise<unknown> {
  return listable.then(() => error, (failure: unknown) => failure);
}

/** runPipeline once the destination is prepared, its lock being taken and the sources' first pages asked for. */
async function runLocked(options: RunOptions, report: RunReport, started: number, listable: Promise<void>, locking: Promise<RunLock | undefined>): Promise<RunReport> {
  const { sink, pipeline } = options;
  // Stops the run like Ctrl-C does (nothing new starts, what was listed is still counted) when the
  // store becomes unreachable; the caller's signal stays the one that means Ctrl-C.
  const unreachable = new AbortController();
  // Stops it when what had to come before the first write failed after the work began: a source's first
  // listing page failed, another run holds the lock, its read-back showed another run's token, or the
  // state file could not be written. The run then fails as one that could not start.
  const notStarted = new AbortController();
  let setupError: unknown;
  const signal = AbortSignal.any([...(options.signal ? [options.signal] : []), unreachable.signal, notStarted.signal]);
  let failingInARow = 0;
  let leftUnprocessed = 0;
  let lastUnreachable = '';
  const force = options.force ?? false;
  const dryRun = options.dryRun ?? false;
  const transfer = options.transfer ?? transferLimits(pipeline.config.s3);
  // A local lock is one exclusive create, quick and final: nothing is gained by starting before it.
  if (!sink.remote) await locking;
  // The sources' first listing page is asked for while the destination's state is read (and written):
  // on S3 that is one round trip before the first download, not two or three.
  const listing = mergeListings(options.sources, signal)[Symbol.asyncIterator]();
  const firstEntry = listing.next();
  firstEntry.catch(() => undefined); // awaited in work(); this only keeps an early failure from being "unhandled"
  let destination: Destination;
  try {
    destination = await openDestination(sink, { fingerprint: pipeline.fingerprint, variants: destinationFolders(pipeline.config), listOutputs: !force, signal });
  } catch (error) {
    await listing.return?.(undefined);
    // A source that cannot be listed, then another run holding the destination, explain everything else that failed.
    throw await explainedBy(listable, await locking.then(() => error, (refusal: unknown) => refusal));
  }
  try {
    // Writes wait for every source's first page, then for the lock (taken, then read back), then for a new
    // state file and its time unit to pass; downloads and decoding go on meanwhile: on S3 that is several
    // round trips not waited for. A source's failure comes first, as the one to report.
    const confirmed = listable.then(() => locking).then((lock) => lock?.confirmed);
    const writable = !dryRun && !destination.stateMatches
      ? confirmed.then(async () => {
          // Written even after Ctrl-C: the images already decoding still finish and upload, and outputs
          // without this run's state would be judged by the previous config's.
          await recordState(sink, pipeline.fingerprint, Object.keys(pipeline.config.sizes), destination.stateText);
          await pastTimeResolution(sink.timeResolutionMs);
        })
      : confirmed;
    writable.catch((error: unknown) => {
      setupError = error;
      notStarted.abort();
    });
    const beforeWrite = writable.catch(() => {
      throw new StorageError('INTERRUPTED', 'the run could not start');
    });
    beforeWrite.catch(() => undefined); // each job awaits it; a run with no job to write must not leave it "unhandled"

    const plan = createPlanner(pipeline.config, destination, { force, maxFileSize: pipeline.config.limits.maxFileSize });

    let total = 0;
    // Until the run knows the destination is its own, its events are held: a run refused then (another
    // run holds the lock) fails as one that could not start, with no file lines or counts before it.
    let held: RunEvent[] | undefined = [];
    writable.then(
      () => {
        for (const event of held ?? []) options.events?.emit('event', event);
        held = undefined;
      },
      () => (held = undefined),
    );
    const emit = (event: RunEvent) => {
      if (notStarted.signal.aborted) return;
      if (held) held.push(event);
      else options.events?.emit('event', event);
    };
    const record = (reported: FileReport) => {
      let file = reported;
      if (unreachable.signal.aborted && !options.signal?.aborted && (file.code === 'S3_UNREACHABLE' || file.reason === INTERRUPTED_REASON)) {
        file = { input: file.input, status: 'skipped', reason: UNREACHABLE_REASON, bytesIn: file.bytesIn, outputs: [] };
        leftUnprocessed += 1;
      } else if (file.code === 'S3_UNREACHABLE') {
        failingInARow += 1;
        lastUnreachable = file.error ?? '';
        if (failingInARow >= UNREACHABLE_LIMIT) unreachable.abort();
      } else if (file.status === 'processed') {
        failingInARow = 0;
      }
      report[file.status] += 1;
      report.bytesIn += file.status === 'processed' ? file.bytesIn : 0;
      report.bytesOut += file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0);
      if (options.collectFiles) report.files.push(file);
      emit({ type: 'file', file });
    };

    async function* work(): AsyncGenerator<Work> {
      try {
        for (let next = await firstEntry; !next.done; next = await listing.next()) {
          const { entry, source } = next.value;
          if (!force && isImageKey(entry.key)) await destination.reach(destinationKeys(entry.key, pipeline.config));
          const planned = plan(entry, source);
          if (planned.action === 'ignore') continue;
          total += 1;
          emit({ type: 'found', total });
          yield { job: refuseOverwritingInputs(planned, options.sources, sink), source };
        }
        emit({ type: 'listed', total });
      } catch (error) {
        // A listing cut short by Ctrl-C ends quietly; the run reports itself interrupted.
        if (signal?.aborted) return;
        // A listing that fails for good ends the run, but not the report: what was done is still reported.
        report.error = { message: describeError(error), code: error instanceof ImgPipelineError ? error.code : 'UNEXPECTED' };
      } finally {
        await listing.return?.(undefined);
      }
    }

    const cpu = pLimit(options.concurrency);
    const downloads = pLimit(transfer.downloads);
    const uploads = pLimit(transfer.uploads);
    // Inputs that are downloads are held from the start of their download until their outputs are
    // encoded: at most `inputBytes`, and few enough requests that the downloads stay within their
    // connections (half of them downloading, half downloaded and waiting for a decoder).
    const ahead = new ByteBudget({ bytes: transfer.inputBytes, items: 2 * transfer.downloads + options.concurrency });
    // A local read is quick: one image queued per decoding slot, so a core never waits on the disk, and
    // no more (reading further ahead would only add to peak memory).
    const local = new ByteBudget({ bytes: Number.MAX_SAFE_INTEGER, items: options.concurrency });
    // Encoded outputs waiting for their uploads, per image; a local sink writes inside the job.
    const behind = sink.remote ? new ByteBudget({ bytes: transfer.outputBytes, items: transfer.uploads }) : undefined;
    const running = new Set<Promise<void>>();
    // Jobs not yet through their decoder. Once none is and nothing more is listed, only uploads are left:
    // an S3 destination's lock is then read for its release while they go on, and only the DELETE waits
    // for them, one round trip at the end of the run instead of two.
    let toEncode = 0;
    let allStarted = false;
    const releaseWhenOnlyUploadsLeft = () => {
      if (!sink.remote || !allStarted || toEncode > 0) return;
      // The state file is a write too: a run with nothing to upload may still be writing it.
      void locking.then((lock) => lock?.release(Promise.allSettled([...running, writable])), () => undefined);
    };

    const items = work();
    // Without `return`: stopping on Ctrl-C must not close the listing, whose rest is counted below.
    for await (const { job, source } of { [Symbol.asyncIterator]: () => ({ next: () => items.next() }) }) {
      const planned = plannedReport(job, sink, dryRun);
      if (planned) {
        record(planned);
        continue;
      }
      let release: Release;
      try {
        release = await (source.readAhead ? ahead.acquire(job.entry.size, signal) : local.acquire(0, signal));
      } catch {
        // Listed, but never started because of Ctrl-C: still counted, so the counts add up.
        record(interruptedReport(job));
        break;
      }
      if (signal?.aborted) {
        release();
        record(interruptedReport(job));
        break;
      }
      toEncode += 1;
      let encoded = false;
      const leaveCpu = () => {
        if (encoded) return;
        encoded = true;
        toEncode -= 1;
        release();
        releaseWhenOnlyUploadsLeft();
      };
      const stages: JobStages = {
        cpu,
        beforeWrite,
        ...(source.readAhead ? { download: downloads } : {}),
        ...(behind ? { admitOutputs: (bytes: number) => behind.acquire(bytes), upload: uploads, onLeaveCpu: leaveCpu } : {}),
      };
      const task = executeJob(job, source, sink, pipeline, false, signal, stages).then(record).finally(leaveCpu);
      running.add(task);
      void task.finally(() => running.delete(task));
    }
    // Ctrl-C stops the loop early; the lock is then released at the end, as always.
    if (!signal.aborted) {
      allStarted = true;
      releaseWhenOnlyUploadsLeft();
    }
    await Promise.allSettled(running);
    // Ctrl-C: what was already listed (the pages received) is still reported, as not done, so the counts
    // add up to what was found. The listing itself ends at the next page.
    for await (const { job } of items) record(plannedReport(job, sink, dryRun) ?? interruptedReport(job));
    // Settled by now unless no job waited for it: a run that lists nothing still confirms its lock.
    await writable.catch(() => undefined);
    if (setupError !== undefined) throw setupError;
  } finally {
    await destination.close();
  }
  report.interrupted = options.signal?.aborted ?? false;
  if (unreachable.signal.aborted && !report.interrupted) {
    report.error = { code: 'S3_UNREACHABLE', message: `the S3 store is unreachable (${UNREACHABLE_LIMIT} files in a row failed: ${lastUnreachable}); ${leftUnprocessed} ${leftUnprocessed === 1 ? 'file was' : 'files were'} left unprocessed` };
  }
  const transferred = [...options.sources, sink].flatMap((s) => (s.bytesTransferred === undefined ? [] : [s.bytesTransferred]));
  if (transferred.length > 0) report.bytesTransferred = transferred.reduce((a, b) => a + b, 0);
  report.elapsedMs = Math.round(performance.now() - started);
  return report;
}

/**
 * Fails a job that would write an output onto an input of this run: its own file (`thumb/x.jpg --out .`
 * writes `./thumb/x.jpg`) or any place a source lists from. Nothing is read or written for it.
 */
function refuseOverwritingInputs(job: RunnableJob, sources: readonly Source[], sink: Sink): RunnableJob {
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

const INTERRUPTED_REASON = 'interrupted before it was processed';
const UNREACHABLE_REASON = 'not processed: the run stopped because the S3 store was unreachable';

function interruptedReport(job: RunnableJob): FileReport {
  return { input: job.entry.uri, status: 'skipped', reason: INTERRUPTED_REASON, bytesIn: job.entry.size, outputs: [] };
}

/** The report of a job that needs no I/O (skipped, failed by the plan, or a dry run); undefined otherwise. */
function plannedReport(job: RunnableJob, sink: Sink, dryRun: boolean): FileReport | undefined {
  const { entry } = job;
  if (job.action === 'skip') return { input: entry.uri, status: 'skipped', reason: job.reason, bytesIn: entry.size, outputs: [] };
  if (job.action === 'fail') return { input: entry.uri, status: 'failed', error: job.reason, code: job.code, bytesIn: entry.size, outputs: [] };
  if (dryRun) {
    const outputs = job.outputs.map((o) => ({ variant: o.variant, format: o.format, path: sink.uriOf(o.key) }));
    return { input: entry.uri, status: 'planned', bytesIn: entry.size, outputs, ...(job.sidecar ? { sidecar: sink.uriOf(job.sidecar) } : {}) };
  }
  return undefined;
}

/** Where executeJob hands over to the run's stages; without any, it reads, processes and writes in turn. */
export interface JobStages {
  /** The download slots: the read runs within one. */
  download?: LimitFunction;
  /** The decoding slots: the decode and encode run within one. */
  cpu?: LimitFunction;
  /**
   * Waits, still holding the decoding slot, until this many encoded bytes may wait for their uploads;
   * what it returns is called once they are written (or failed).
   */
  admitOutputs?: (bytes: number) => Promise<Release>;
  /** Called once the job no longer holds its decoding slot, its outputs admitted for upload. */
  onLeaveCpu?: () => void;
  /** Held before the first write (the state file's second must be over). */
  beforeWrite?: Promise<void>;
  /** The upload slots: each write runs within one. */
  upload?: LimitFunction;
  /**
   * Called with the encoded outputs (and the sidecar and placeholder the report will carry) before they
   * are written (the Lambda publishes meanwhile).
   */
  onEncoded?: (outputs: OutputReport[], extra: SidecarReport) => void;
}

/** Writes a processed job's sidecar (report/sidecar.ts) and returns what its file report adds. */
async function writeSidecar(
  key: string,
  job: Exclude<Job, { action: 'ignore' }>,
  processed: ProcessedImage,
  bytesIn: number,
  sink: Sink,
  signal?: AbortSignal,
): Promise<void> {
  const { placeholder } = processed;
  if (!placeholder) return;
  const listed: SidecarOutput[] = processed.outputs.map((o, i) => ({ variant: o.variant, format: o.format, key: job.outputs[i]!.key, width: o.width, height: o.height, bytes: o.data.length }));
  const sidecar = buildSidecar({ key: job.entry.key, bytes: bytesIn, info: processed.input }, placeholder, listed);
  await sink.write(key, Buffer.from(`${JSON.stringify(sidecar, null, 2)}\n`), { contentType: 'application/json', metadata: outputMetadata(job.entry) }, signal);
}

/** What a processed job's file report adds when it has a sidecar: where it goes, and its placeholder. */
type SidecarReport = Pick<FileReport, 'sidecar' | 'placeholder'>;

function sidecarReport(job: RunnableJob, processed: ProcessedImage, sink: Sink): SidecarReport {
  return job.sidecar && processed.placeholder ? { sidecar: sink.uriOf(job.sidecar), placeholder: processed.placeholder } : {};
}

/** Runs `task` within `limit` when there is one. */
const within = <T>(limit: LimitFunction | undefined, task: () => Promise<T>): Promise<T> => (limit ? limit(task) : task());

/** Reads, processes and writes one job, each step within its stage's slots when given; never throws. */
export async function executeJob(
  job: RunnableJob,
  source: Source,
  sink: Sink,
  pipeline: Pipeline,
  dryRun: boolean,
  signal?: AbortSignal,
  stages: JobStages = {},
): Promise<FileReport> {
  const { entry } = job;
  const planned = plannedReport(job, sink, dryRun);
  if (planned) return planned;
  let releaseOutputs: Release | undefined;
  // The input is held only in here: once encoded, it is garbage while the uploads go on.
  const decodeAndEncode = async () => {
    const input = await within(stages.download, () => source.read(entry, signal));
    const processed = await within(stages.cpu, async () => {
      // Read but not yet decoding when Ctrl-C came: nothing is written, and the next run picks it up.
      if (signal?.aborted) throw new StorageError('INTERRUPTED', `${entry.uri} was not started before the interruption`);
      const image = await processSource(input, pipeline);
      releaseOutputs = await stages.admitOutputs?.(image.outputs.reduce((sum, r) => sum + r.data.length, 0));
      return image;
    });
    return { processed, bytesIn: input.length };
  };
  try {
    const { processed, bytesIn } = await decodeAndEncode();
    stages.onLeaveCpu?.();
    const outputs: OutputReport[] = processed.outputs.map((result, i) => ({ variant: result.variant, format: result.format, path: sink.uriOf(job.outputs[i]!.key), width: result.width, height: result.height, bytes: result.data.length }));
    const extra = sidecarReport(job, processed, sink);
    stages.onEncoded?.(outputs, extra);
    await stages.beforeWrite;
    // Outputs are written side by side: on S3 each write is a round trip that would otherwise hold the slot.
    await Promise.all(processed.outputs.map((result, i) => within(stages.upload, () => sink.write(job.outputs[i]!.key, result.data, { contentType: CONTENT_TYPES[result.format], metadata: outputMetadata(entry) }, signal))));
    // Only once every output is written (a failed write rejected above), so a sidecar never lists a missing file.
    if (job.sidecar) await within(stages.upload, () => writeSidecar(job.sidecar!, job, processed, bytesIn, sink, signal));
    return { input: entry.uri, status: 'processed', bytesIn, ...processed.outputs[0]?.source, outputs, ...extra };
  } catch (error) {
    const code = error instanceof ImgPipelineError ? error.code : 'UNEXPECTED';
    if (code === 'INPUT_IS_OUTPUT') return { input: entry.uri, status: 'skipped', reason: describeError(error), bytesIn: entry.size, outputs: [] };
    // A download cut short by Ctrl-C: nothing was written, and the next run picks it up.
    if (code === 'INTERRUPTED') return { input: entry.uri, status: 'skipped', reason: INTERRUPTED_REASON, bytesIn: entry.size, outputs: [] };
    // The stack and its cause, for --verbose only: never in --json, which carries the one-line error.
    const detail = error instanceof Error ? `${error.stack ?? error.message}${error.cause ? `\ncaused by: ${String((error.cause as Error).stack ?? error.cause)}` : ''}` : String(error);
    return { input: entry.uri, status: 'failed', error: describeError(error), code, detail, bytesIn: entry.size, outputs: [] };
  } finally {
    releaseOutputs?.();
  }
}
