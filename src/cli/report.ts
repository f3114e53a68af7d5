import type { FileReport, RunReport } from '../runner/run-pipeline.js';

/** Bytes as a person reads them: 1.2 MB, 340 KB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** One line per file, for logs and non-TTY output. */
export function formatFileLine(file: FileReport): string {
  switch (file.status) {
    case 'processed': {
      const bytes = file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0);
      return `processed ${file.input} -> ${file.outputs.length} outputs (${formatBytes(file.bytesIn)} -> ${formatBytes(bytes)})`;
    }
    case 'skipped':
      return `skipped   ${file.input} (${file.reason ?? 'skipped'})`;
    case 'failed':
      return `failed    ${file.input}: ${file.error ?? 'unknown error'}`;
    case 'planned':
      return `would process ${file.input} -> ${file.outputs.map((o) => o.path).join(', ')}`;
  }
}

/** The closing summary: counts, bytes in -> out with the saving, elapsed time. */
export function formatSummary(report: RunReport, dryRun: boolean): string {
  const time = formatDuration(report.elapsedMs);
  if (dryRun) return `Dry run: ${report.planned} to process, ${report.skipped} skipped, ${report.failed} would fail; nothing written (${time}).`;
  const saving = report.bytesIn > 0 ? ` (${Math.round((1 - report.bytesOut / report.bytesIn) * 100)}% smaller)` : '';
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
  }));
  const { processed, skipped, failed, planned, bytesIn, bytesOut, bytesTransferred, elapsedMs, interrupted } = report;
  return JSON.stringify({ processed, skipped, failed, planned, bytesIn, bytesOut, bytesTransferred, elapsedMs, interrupted, files });
}
