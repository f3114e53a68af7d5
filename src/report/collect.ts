import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import type { Config, OutputFormat } from '../config/schema.js';
import { CONTENT_TYPES } from '../pipeline/layout.js';
import { makePreview, type Preview } from '../pipeline/preview.js';
import type { FileReport, OutputReport, RunEvent, RunReport } from '../runner/run-pipeline.js';
import type { Sink, WriteOptions } from '../storage/types.js';
import type { ReportData, ReportEntry, ReportImage } from './html.js';

/** What keeps the page's size bounded, whatever the number of files. */
export interface ReportLimits {
  /** Bytes of data URIs the page may embed (S3 outputs); past it, images are listed without a thumbnail. */
  embedBudgetBytes: number;
  /** Entries listed per section (processed, failed, skipped, planned); the rest are counted. */
  maxListed: number;
  /** A failure's reason is cut to this many characters (an S3 error can carry a whole XML body). */
  maxReasonChars: number;
}

/**
 * 8 MB of previews is about 2,000 photos (a textured 160 px preview is about 3.3 KB, 4.4 KB as base64;
 * smooth ones far less), and a page of that size still opens in a second or two.
 */
export const REPORT_LIMITS: ReportLimits = { embedBudgetBytes: 8 * 1024 * 1024, maxListed: 10_000, maxReasonChars: 500 };

/** The thumbnail box on the page, in CSS pixels; the variant shown is the smallest that fills it. */
export const THUMBNAIL_PX = 200;

/** The longer side of an embedded preview: a little under the box, for 40% fewer bytes than a full one. */
export const PREVIEW_PX = 160;

/** Outputs captured but not yet claimed by a file event are few: at most one per image in flight. */
const MAX_CAPTURED = 256;

export interface CollectOptions {
  /** Where the page will be written (absolute): links to local outputs are relative to its folder. */
  reportPath: string;
  /** The input roots, absolute paths or s3:// URIs, to name each file relative to the one it was found under. */
  inputs: readonly string[];
  out: string;
  dryRun: boolean;
  /** Absent when the run failed before its config was loaded: then nothing was processed either. */
  config?: Pick<Config, 'sizes' | 'formats'>;
  /**
   * Outputs are files the page can link to (a local --out). Otherwise (S3) the page embeds small previews
   * made by `makePreview` (default: pipeline/preview.ts) from the bytes the run wrote, since a browser
   * cannot open s3:// links.
   */
  linkOutputs: boolean;
  makePreview?: (output: Buffer) => Promise<Preview>;
  startedAt: Date;
  limits?: Partial<ReportLimits>;
}

/** Gathers what the HTML report shows from the run's events, in memory bounded by `ReportLimits`. */
export interface ReportCollector {
  /** Wraps the run's sink so that the bytes of the outputs the page embeds are kept until their file's event. */
  wrapSink(sink: Sink): Sink;
  /** Subscribe this to the runner's events. */
  add(event: RunEvent): void;
  /** The page's data once the run is over; `report` is absent when the run never started. */
  finish(report: RunReport | undefined, error?: string): Promise<ReportData>;
}

/** The variant the grid shows: the smallest whose box fills a thumbnail, or else the largest there is. */
function shownVariant(sizes: Config['sizes']): string {
  const bySide = Object.entries(sizes).sort(([, a], [, b]) => Math.max(a.width, a.height) - Math.max(b.width, b.height));
  return (bySide.find(([, s]) => Math.max(s.width, s.height) >= THUMBNAIL_PX) ?? bySide[bySide.length - 1]!)[0];
}

function largestVariant(sizes: Config['sizes']): string {
  return Object.entries(sizes).reduce((a, b) => (b[1].width * b[1].height > a[1].width * a[1].height ? b : a))[0];
}

/** A URL for `target` that works from a page in `fromDir`, opened from disk or served along with it. */
export function relativeUrl(fromDir: string, target: string): string {
  const path = relative(fromDir, target);
  // Another drive (Windows) has no relative path.
  if (isAbsolute(path)) return pathToFileURL(target).href;
  return path.split(sep).map(encodeURIComponent).join('/');
}

/** A file's name relative to the input root it was found under; the full path when none holds it. */
export function nameUnder(uri: string, roots: readonly string[]): string {
  for (const root of roots) {
    if (uri === root) return /^s3:\/\//i.test(uri) ? uri.slice(uri.lastIndexOf('/') + 1) : basename(uri);
    const folder = /^s3:\/\//i.test(root) ? (root.endsWith('/') ? root : `${root}/`) : root.endsWith(sep) ? root : `${root}${sep}`;
    if (uri.startsWith(folder)) return uri.slice(folder.length);
  }
  return uri;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A collector for one run (see ReportCollector). */
export function createReportCollector(options: CollectOptions): ReportCollector {
  const limits = { ...REPORT_LIMITS, ...options.limits };
  const shown = options.config ? shownVariant(options.config.sizes) : undefined;
  const largest = options.config ? largestVariant(options.config.sizes) : undefined;
  const format: OutputFormat | undefined = options.config?.formats[0];
  const preview = options.makePreview ?? ((output: Buffer) => makePreview(output, PREVIEW_PX));
  const reportDir = dirname(options.reportPath);
  const processed: ReportImage[] = [];
  const lists = { failed: [] as ReportEntry[], skipped: [] as ReportEntry[], planned: [] as ReportEntry[] };
  const omitted = { processed: 0, failed: 0, skipped: 0, planned: 0 };
  const captured = new Map<string, Buffer>();
  const previews: Promise<void>[] = [];
  const previewSlots = pLimit(2);
  let embedded = 0;
  let budgetSpent = false;
  let thumbnailsDropped = 0;

  function embed(image: ReportImage, bytes: Buffer): void {
    previews.push(
      previewSlots(async () => {
        if (budgetSpent) {
          thumbnailsDropped += 1;
          return;
        }
        const made = await preview(bytes).catch(() => undefined);
        if (!made) return;
        const src = `data:${made.mime};base64,${made.data.toString('base64')}`;
        if (embedded + src.length > limits.embedBudgetBytes) {
          budgetSpent = true;
          thumbnailsDropped += 1;
          return;
        }
        embedded += src.length;
        image.thumb = { src, width: made.width, height: made.height };
      }),
    );
  }

  function output(file: FileReport, variant: string | undefined): OutputReport | undefined {
    return file.outputs.find((o) => o.variant === variant && o.format === format);
  }

  function addProcessed(file: FileReport): void {
    const thumb = output(file, shown);
    const bytes = thumb ? captured.get(thumb.path) : undefined;
    if (thumb) captured.delete(thumb.path);
    if (processed.length >= limits.maxListed) {
      omitted.processed += 1;
      return;
    }
    const image: ReportImage = {
      input: file.input,
      name: nameUnder(file.input, options.inputs),
      ...(file.width !== undefined && file.height !== undefined ? { width: file.width, height: file.height } : {}),
      bytesIn: file.bytesIn,
      bytesOut: file.outputs.reduce((sum, o) => sum + (o.bytes ?? 0), 0),
      outputs: file.outputs.length,
    };
    processed.push(image);
    if (!thumb) return;
    if (options.linkOutputs) {
      image.thumb = { src: relativeUrl(reportDir, thumb.path), width: thumb.width ?? THUMBNAIL_PX, height: thumb.height ?? THUMBNAIL_PX };
      const full = output(file, largest);
      if (full) image.href = relativeUrl(reportDir, full.path);
    } else if (bytes) {
      embed(image, bytes);
    } else if (budgetSpent) {
      thumbnailsDropped += 1;
    }
  }

  function addEntry(file: FileReport): void {
    const status = file.status as 'failed' | 'skipped' | 'planned';
    const list = lists[status];
    if (list.length >= limits.maxListed) {
      omitted[status] += 1;
      return;
    }
    const reason = file.status === 'failed' ? (file.error ?? 'unknown error') : file.status === 'planned' ? `would write ${file.outputs.length} ${file.outputs.length === 1 ? 'output' : 'outputs'}` : (file.reason ?? 'skipped');
    list.push({ input: file.input, name: nameUnder(file.input, options.inputs), reason: cut(reason, limits.maxReasonChars), ...(file.code ? { code: file.code } : {}) });
  }

  return {
    wrapSink(sink) {
      if (options.linkOutputs || !shown || !format) return sink;
      const folder = `${shown}/`;
      // A Proxy, not a copy: the runner reads getters such as bytesTransferred after the run, and checks
      // which optional methods the sink has.
      return new Proxy(sink, {
        get(target, property) {
          if (property !== 'write') {
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (key: string, data: Buffer, writeOptions: WriteOptions, signal?: AbortSignal) => {
            await target.write(key, data, writeOptions, signal);
            if (budgetSpent || !key.startsWith(folder) || writeOptions.contentType !== CONTENT_TYPES[format]) return;
            // Outputs of a file that failed after this write are never claimed: drop the oldest.
            if (captured.size >= MAX_CAPTURED) captured.delete(captured.keys().next().value!);
            captured.set(target.uriOf(key), data);
          };
        },
      });
    },

    add(event) {
      if (event.type !== 'file') return;
      if (event.file.status === 'processed') addProcessed(event.file);
      else addEntry(event.file);
    },

    async finish(report, error) {
      await Promise.all(previews);
      captured.clear();
      const { files: _files, error: _error, ...totals } = report ?? { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: Date.now() - options.startedAt.getTime(), interrupted: false, files: [] };
      const stopped = error ?? report?.error?.message;
      return {
        startedAt: options.startedAt.toISOString(),
        inputs: options.inputs,
        out: options.out,
        dryRun: options.dryRun,
        totals,
        ...(stopped ? { error: stopped } : {}),
        processed,
        ...lists,
        omitted,
        thumbnailsDropped,
        embedBudgetBytes: limits.embedBudgetBytes,
      };
    },
  };
}
