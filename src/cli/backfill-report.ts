import cliProgress from 'cli-progress';
import type { Estimate } from '../backfill/estimate.js';
import type { ManifestSummary } from '../backfill/manifest.js';
import { PRICES } from '../backfill/prices.js';
import type { CompletionReport } from '../backfill/report.js';
import type { JobView } from '../backfill/status.js';
import { formatS3Uri } from '../storage/s3.js';
import { formatBytes } from './report.js';

/** Untrusted text (keys, messages) with control characters shown as escapes, never sent to the terminal raw. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** 3725 s -> "1 h 2 min"; under a minute in seconds. */
export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const usd = (n: number) => `$${n < 0.01 && n > 0 ? n.toFixed(4) : n.toFixed(2)}`;

/** What the manifest holds and what was left out. */
export function formatManifest(manifest: Omit<ManifestSummary, 'file'>, where: string): string {
  const lines = [`Manifest     ${manifest.count} objects (${formatBytes(manifest.bytes)}) to process${where ? `, ${where}` : ''}; ${manifest.upToDate} already up to date`];
  if (manifest.refusedCount > 0) {
    lines.push(`Left out     ${manifest.refusedCount} objects the pipeline refuses (they would fail the same way in the job):`);
    for (const r of manifest.refused) lines.push(`  ${printable(r.key)}: ${r.code}: ${printable(r.reason)}`);
    if (manifest.refusedCount > manifest.refused.length) lines.push(`  ... and ${manifest.refusedCount - manifest.refused.length} more`);
  }
  return lines.join('\n');
}

/** The estimate, line by line, with what is measured and what is computed. */
export function formatEstimate(estimate: Estimate, fn: { memoryMb: number; architecture: string }): string {
  const { cost } = estimate;
  const from = estimate.taskMsFrom === 'canary' ? 'billed duration of the canary' : 'default from npm run bench:lambda; the real run measures it with the canary';
  return [
    `Estimate     ${estimate.objects} objects, ${formatBytes(estimate.bytes)}; at least ${duration(estimate.wallSeconds)} at concurrency ${estimate.concurrency} (${estimate.taskMs} ms per task: ${from})`,
    `  Batch Operations  ${usd(cost.batchJob)} per job + ${usd(cost.batchTasks)} for ${estimate.objects} tasks`,
    `  Lambda            ${usd(cost.lambdaCompute)} for ${estimate.gbSeconds.toFixed(0)} GB-s (${fn.memoryMb} MB, ${fn.architecture}) + ${usd(cost.lambdaRequests)} requests`,
    `  S3 requests       ${usd(cost.s3Get)} GET/HEAD (${estimate.requests.get}) + ${usd(cost.s3Put)} PUT (${estimate.requests.put}) + ${usd(cost.s3List)} LIST (${estimate.requests.list})`,
    `  Total             ${usd(cost.total)}  (${PRICES.region} list prices checked ${PRICES.checked}; storage, transfer and taxes not included)`,
  ].join('\n');
}

/** One line for a job's state and progress. */
export function formatJobLine(view: JobView): string {
  const total = view.total === undefined ? '?' : String(view.total);
  return `Job ${view.id}: ${view.status}, ${view.succeeded} succeeded, ${view.failed} failed of ${total}${view.elapsedSeconds ? `, ${duration(view.elapsedSeconds)} active` : ''}`;
}

/** The end of a job: its failure reasons, the first failed keys and where the full report is. */
export function formatOutcome(view: JobView, report: CompletionReport | undefined): string {
  const lines = [formatJobLine(view)];
  if (view.statusUpdateReason && view.status !== 'Complete') lines.push(`  reason: ${printable(view.statusUpdateReason)}`);
  for (const r of view.failureReasons) lines.push(`  ${r.code}: ${printable(r.reason)}`);
  if (report) {
    if (report.failedCount > 0) {
      lines.push(`Failed tasks (${report.failedCount}${report.failedCount > report.failed.length ? `, the first ${report.failed.length}` : ''}):`);
      for (const t of report.failed) lines.push(`  ${printable(formatS3Uri(t.bucket, t.key))}: ${t.errorCode}: ${printable(t.message)}`);
    }
    lines.push(`Report       ${report.location}`);
  } else if (view.report) {
    lines.push(`Report       not written (yet): s3://${view.report.bucket}/${view.report.prefix}/job-${view.id}/`);
  }
  return lines.join('\n');
}

/** Redraws a bar from DescribeJob's counts; returns update and stop. */
export function jobProgressBar(stream: NodeJS.WriteStream): { update: (view: JobView) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar({
    stream,
    format: '{bar} {value}/{total} tasks | {failed} failed | {rate}/s | ETA {eta_formatted} | {status}',
    hideCursor: true,
    etaBuffer: 10,
  }, cliProgress.Presets.shades_classic);
  const started = Date.now();
  let drawing = false;
  return {
    update(view) {
      const done = view.succeeded + view.failed;
      const payload = { failed: view.failed, status: view.status, rate: (done / Math.max(1, (Date.now() - started) / 1000)).toFixed(1) };
      if (!view.total) return;
      if (!drawing) {
        bar.start(view.total, done, payload);
        drawing = true;
      } else bar.update(done, payload);
    },
    stop() {
      if (drawing) bar.stop();
    },
  };
}
