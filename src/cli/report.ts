import type { FileReport, RunReport } from '../runner/run-pipeline.js';
import { escapeControl, escapeJsonText } from './terminal-text.js';
import { formatBytes, formatDuration, formatSaving } from '../report/format.js';

export { formatBytes, formatDuration };

/** One line per file, for logs and non-TTY output; names are escaped (escapeControl), so it stays one line. */
export function formatFileLine(file: FileReport): string {
  const input = escapeControl(file.input);
  switch (file.status) {
    case 'processed': {
      const bytes = file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0);
      return `processed ${input} -> ${file.outputs.length} output${file.outputs.length === 1 ? '' : 's'}${file.sidecar ? ' and a sidecar' : ''} (${formatBytes(file.bytesIn)} -> ${formatBytes(bytes)})`;
    }
    case 'skipped':
      return `skipped   ${input} (${escapeControl(file.reason ?? 'skipped')})`;
    case 'failed':
      return `failed    ${input}: ${escapeControl(file.error ?? 'unknown error')}`;
    case 'planned':
      return `would process ${input} -> ${[...file.outputs.map((o) => o.path), ...(file.sidecar ? [file.sidecar] : [])].map((p) => escapeControl(p)).join(', ')}`;
  }
}

/** The closing summary: counts, bytes in -> out with the saving, elapsed time. */
export function formatSummary(report: RunReport, dryRun: boolean): string {
  const time = formatDuration(report.elapsedMs);
  if (dryRun) return `Dry run: ${report.planned} to process, ${report.skipped} skipped, ${report.failed} would fail; nothing written (${time}).`;
  const saving = report.bytesIn > 0 ? ` (${formatSaving(report.bytesIn, report.bytesOut)})` : '';
  const head = report.interrupted ? 'Interrupted: ' : '';
  const transferred = report.bytesTransferred !== undefined ? `; ${formatBytes(report.bytesTransferred)} transferred` : '';
  return `${head}${report.processed} processed, ${report.skipped} skipped, ${report.failed} failed in ${time}; ${formatBytes(report.bytesIn)} in -> ${formatBytes(report.bytesOut)} out${saving}${transferred}.`;
}

/** The `--json` document: exactly what the report holds, with the summary counts first. */
export function toJson(report: RunReport): string {
  const files = report.files.map((f) => ({
    input: f.input,
    status: f.status,
    ...(f.error !== undefined ? { error: f.error, code: f.code } : {}),
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
    outputs: f.outputs,
    ...(f.sidecar !== undefined ? { sidecar: f.sidecar } : {}),
    ...(f.placeholder !== undefined ? { placeholder: f.placeholder } : {}),
  }));
  const { processed, skipped, failed, planned, bytesIn, bytesOut, bytesTransferred, elapsedMs, interrupted, error } = report;
  return escapeJsonText(JSON.stringify({ processed, skipped, failed, planned, bytesIn, bytesOut, bytesTransferred, elapsedMs, interrupted, error, files }));
}
