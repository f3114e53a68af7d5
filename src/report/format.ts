/** A value with one decimal below 100 and none from 100 on, judged after rounding (99.96 reads 100). */
function roundForDisplay(value: number): string {
  const tenths = Math.round(value * 10) / 10;
  return tenths >= 100 ? String(Math.round(value)) : tenths.toFixed(1);
}

/** Bytes as a person reads them: 1.2 MB, 340 KB. The unit is chosen after rounding, so never "1024 KB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (Number(roundForDisplay(value)) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${roundForDisplay(value)} ${units[unit]}`;
}

/**
 * Elapsed time as a person reads it: `250 ms`, `2.5 s`, `2 min 5 s`. Each form is chosen after rounding,
 * so 59999 ms reads `1 min 0 s` (not `60.0 s`) and 119700 ms `2 min 0 s` (not `1 min 60 s`).
 */
export function formatDuration(ms: number): string {
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const tenths = Math.round(ms / 100) / 10;
  if (tenths < 60) return `${tenths.toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** How the output size compares with the input's: "75% smaller", or "12% larger" when outputs grew. */
export function formatSaving(bytesIn: number, bytesOut: number): string {
  const percent = Math.round((bytesOut / bytesIn - 1) * 100);
  return percent > 0 ? `${percent}% larger` : `${-percent}% smaller`;
}
