import type { RunReport } from '../runner/run-pipeline.js';
import { formatBytes, formatDuration, formatSaving } from './format.js';

/** One processed source as the page shows it. */
export interface ReportImage {
  /** The source's path or URI, as the run reported it. */
  input: string;
  /** The name to show: the path relative to the input it was found under. */
  name: string;
  width?: number;
  height?: number;
  bytesIn: number;
  bytesOut: number;
  outputs: number;
  /** A URL the page can load: relative to the report's folder (local outputs) or a data URI. */
  thumb?: { src: string; width: number; height: number };
  /** Where a click on the thumbnail goes: the largest output, when it can be linked (local outputs). */
  href?: string;
}

/** A source that was not processed: failed (with its code), skipped or, in a dry run, planned. */
export interface ReportEntry {
  input: string;
  name: string;
  reason: string;
  code?: string;
}

/** The run's counts, bytes and time: its report without the file list or the error. */
export type ReportTotals = Omit<RunReport, 'files' | 'error'>;

/** Everything the page shows; built by report/collect.ts from the run's events, rendered by `renderReport`. */
export interface ReportData {
  /** When the run started, ISO 8601. */
  startedAt: string;
  inputs: readonly string[];
  out: string;
  dryRun: boolean;
  totals: ReportTotals;
  /** Why the run stopped early, or never started. */
  error?: string;
  processed: readonly ReportImage[];
  failed: readonly ReportEntry[];
  skipped: readonly ReportEntry[];
  planned: readonly ReportEntry[];
  /** Entries counted but not listed, because each list is capped to keep the page's size bounded. */
  omitted: { processed: number; failed: number; skipped: number; planned: number };
  /** Processed images shown without a thumbnail because the page's budget for embedded images was spent. */
  thumbnailsDropped: number;
  /** That budget, in bytes, for the note that explains the dropped thumbnails. */
  embedBudgetBytes: number;
}

/**
 * Control characters, bidirectional overrides and lone surrogates in a name would hide or reorder what a
 * reader sees (a file named with U+202E can pass for another); they are shown as escapes instead.
 */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text from anywhere (names, reasons) made safe for HTML text and quoted attributes alike. */
export function escapeHtml(text: string): string {
  return text
    .replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * No script runs and nothing is fetched from the network: images come only from data URIs and files beside
 * the report ('self' covers the page when it is served over HTTP), and the one stylesheet is inline.
 */
export const REPORT_CSP = "default-src 'none'; img-src data: file: 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

const STYLE = `
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --bad: #b91c1c; --good: #047857; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 24px; max-width: 1400px; font: 14px/1.45 system-ui, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.status { font-weight: 600; }
.status.bad { color: var(--bad); }
.status.good { color: var(--good); }
.muted, .note { color: var(--muted); }
dl.totals { display: flex; flex-wrap: wrap; gap: 8px; margin: 16px 0; }
dl.totals div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 96px; }
dl.totals dt { color: var(--muted); font-size: 12px; }
dl.totals dd { margin: 0; font-size: 18px; font-weight: 600; white-space: nowrap; }
.paths { word-break: break-all; }
summary h2 { display: inline; }
ul.entries { padding-left: 20px; }
ul.entries li { margin: 4px 0; word-break: break-all; }
ul.entries code { color: var(--muted); }
#failed li .reason { color: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; padding: 0; margin: 0; list-style: none; }
/* Off-screen cards skip layout and paint: 5,000 of them scroll like 50. */
.card { border: 1px solid var(--line); border-radius: 6px; overflow: hidden; content-visibility: auto; contain-intrinsic-size: auto 290px; }
.frame { display: flex; align-items: center; justify-content: center; height: 200px;
  background: repeating-conic-gradient(#8882 0 25%, transparent 0 50%) 0 0 / 16px 16px; }
.frame img { width: 100%; height: 200px; object-fit: contain; display: block; }
.frame .none { color: var(--muted); font-size: 12px; padding: 8px; text-align: center; }
.caption { padding: 8px 10px; font-size: 12px; }
.caption .name { font-weight: 600; font-size: 13px; overflow-wrap: anywhere; }
.saving.smaller { color: var(--good); }
.saving.larger { color: var(--bad); }
`;

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function totalsItem(label: string, value: string): string {
  return `<div><dt>${escapeHtml(label)}</dt><dd>${escapeHtml(value)}</dd></div>`;
}

function statusLine(data: ReportData): string {
  const { totals } = data;
  if (data.error) return `<p class="status bad" id="status">Stopped: ${escapeHtml(data.error)}</p>`;
  if (totals.interrupted) return '<p class="status bad" id="status">Interrupted (Ctrl-C): the files listed below are all that were reached.</p>';
  if (data.dryRun) return '<p class="status" id="status">Dry run: nothing was written.</p>';
  if (totals.failed > 0) return `<p class="status bad" id="status">Finished with ${count(totals.failed)} failed ${totals.failed === 1 ? 'file' : 'files'}.</p>`;
  return '<p class="status good" id="status">Finished: every file processed or up to date.</p>';
}

function totalsSection(data: ReportData): string {
  const t = data.totals;
  const items = [
    totalsItem('Processed', count(t.processed)),
    totalsItem('Skipped', count(t.skipped)),
    totalsItem('Failed', count(t.failed)),
    ...(data.dryRun ? [totalsItem('Would process', count(t.planned))] : []),
    totalsItem('Bytes in', formatBytes(t.bytesIn)),
    totalsItem('Bytes out', formatBytes(t.bytesOut)),
    ...(t.bytesIn > 0 ? [totalsItem('Saving', formatSaving(t.bytesIn, t.bytesOut))] : []),
    ...(t.bytesTransferred !== undefined ? [totalsItem('Transferred', formatBytes(t.bytesTransferred))] : []),
    totalsItem('Elapsed', formatDuration(t.elapsedMs)),
    ...(t.processed > 0 && t.elapsedMs > 0 ? [totalsItem('Throughput', `${(t.processed / (t.elapsedMs / 1000)).toFixed(1)} images/s`)] : []),
  ];
  return `<dl class="totals" id="totals">${items.join('')}</dl>`;
}

function omittedNote(omitted: number, what: string): string {
  return omitted > 0 ? `<p class="note">… and ${count(omitted)} more ${what}, not listed to keep this page small (the --json report lists every file).</p>` : '';
}

function entriesSection(id: string, title: string, entries: readonly ReportEntry[], omitted: number, open: boolean): string {
  const total = entries.length + omitted;
  if (total === 0) return '';
  const items = entries
    .map((e) => `<li title="${escapeHtml(e.input)}"><span class="name">${escapeHtml(e.name)}</span>: <span class="reason">${escapeHtml(e.reason)}</span>${e.code ? ` <code>${escapeHtml(e.code)}</code>` : ''}</li>`)
    .join('\n');
  const list = `<ul class="entries">\n${items}\n</ul>${omittedNote(omitted, 'files')}`;
  const heading = `${escapeHtml(title)} (${count(total)})`;
  // Failures are what a reader came for, so they are open; skipped files fold away.
  return open
    ? `<section id="${id}"><h2>${heading}</h2>${list}</section>`
    : `<section id="${id}"><details><summary><h2>${heading}</h2></summary>${list}</details></section>`;
}

function card(image: ReportImage): string {
  const dims = image.width && image.height ? `${image.width}×${image.height}` : 'size unknown';
  const saving = image.bytesIn > 0 ? formatSaving(image.bytesIn, image.bytesOut) : '';
  const savingClass = saving.endsWith('larger') ? 'larger' : 'smaller';
  const alt = escapeHtml(image.name);
  let picture = '<span class="none">no thumbnail</span>';
  if (image.thumb) {
    const { src, width, height } = image.thumb;
    // width/height reserve the box before the image loads, so lazy loading does not make the page jump.
    const img = `<img src="${escapeHtml(src)}" width="${width}" height="${height}" loading="lazy" decoding="async" alt="${alt}">`;
    picture = image.href ? `<a href="${escapeHtml(image.href)}">${img}</a>` : img;
  }
  return `<li class="card" title="${escapeHtml(image.input)}"><div class="frame">${picture}</div><div class="caption">`
    + `<div class="name">${escapeHtml(image.name)}</div>`
    + `<div class="dims">${dims}</div>`
    + `<div class="bytes">${formatBytes(image.bytesIn)} → ${formatBytes(image.bytesOut)} in ${image.outputs} ${image.outputs === 1 ? 'output' : 'outputs'}`
    + `${saving ? ` <span class="saving ${savingClass}">(${saving})</span>` : ''}</div></div></li>`;
}

function imagesSection(data: ReportData): string {
  const total = data.processed.length + data.omitted.processed;
  if (total === 0) return '';
  const dropped = data.thumbnailsDropped > 0
    ? `<p class="note" id="thumbnails-note">${count(data.thumbnailsDropped)} ${data.thumbnailsDropped === 1 ? 'image is' : 'images are'} shown without a thumbnail: this page embeds at most ${formatBytes(data.embedBudgetBytes)} of thumbnails, so that it stays quick to open.</p>`
    : '';
  return `<section id="images"><h2>Processed (${count(total)})</h2>${dropped}<ul class="grid">\n${data.processed.map(card).join('\n')}\n</ul>${omittedNote(data.omitted.processed, 'processed images')}</section>`;
}

/** The whole report page: self-contained HTML that runs no script and loads nothing from the network. */
export function renderReport(data: ReportData): string {
  const where = `<p class="paths muted">${escapeHtml(data.inputs.join(', '))} → ${escapeHtml(data.out)} · started ${escapeHtml(data.startedAt.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC'))}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>img-pipeline report</title>
<style>${STYLE}</style>
</head>
<body>
<h1>img-pipeline report</h1>
${where}
${statusLine(data)}
${totalsSection(data)}
${entriesSection('failed', 'Failed', data.failed, data.omitted.failed, true)}
${imagesSection(data)}
${entriesSection('planned', 'Would process', data.planned, data.omitted.planned, true)}
${entriesSection('skipped', 'Skipped', data.skipped, data.omitted.skipped, false)}
</body>
</html>
`;
}
