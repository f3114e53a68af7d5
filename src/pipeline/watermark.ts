import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import sharp, { type OverlayOptions, type Sharp } from 'sharp';
import type { Gravity, WatermarkSpec } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/** The font shipped with the package: Lambda and fresh CI machines have no system fonts. */
export const DEFAULT_FONT_FILE = resolveFontFile();

/** From the npm package; in the Lambda bundle no node_modules holds it, and it travels in fonts/ next to index.mjs. */
function resolveFontFile(): string {
  try {
    return createRequire(import.meta.url).resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');
  } catch {
    return decodeURIComponent(new URL('./fonts/DejaVuSans-Bold.ttf', import.meta.url).pathname);
  }
}
const FONT_FAMILY = 'DejaVu Sans Bold';

/**
 * The smallest line of text drawn, in pixels of line height (the font's line box, outline not included).
 * At this height the capitals and ascenders of the shipped DejaVu Sans Bold are at least 9 px of ink:
 * below that, text on a 128 px thumbnail stops being legible.
 */
export const MIN_TEXT_HEIGHT = 14;
/** The outline's padding on each side of the text, as a fraction of the line height (rounded up to whole pixels). */
const HALO_PAD = 0.12;
/** A long text is wrapped onto at most this many lines to stay legible on a small output. */
const MAX_LINES = 5;

/** Straight RGBA pixels of a whole mark, before it is scaled to an output. */
export interface Raster {
  data: Buffer;
  width: number;
  height: number;
  /** For text: the height of one line of glyphs, inside the outline's padding. */
  glyphHeight?: number;
}

/** The mark for one output size: straight (not premultiplied) RGBA, opacity applied, and where it goes. */
export interface Mark {
  data: Buffer;
  width: number;
  height: number;
  left: number;
  top: number;
}

/**
 * A text mark rendered ahead of time (deploy stores it in the Lambda zip, so a cold start need not run
 * pango): the raster for each number of lines the text can wrap onto, and what they were rendered from.
 */
export interface TextMarks {
  /** The text, the render width, the font's hash and sharp's library versions: used only where all match. */
  key: string;
  /** `rasters[i]`: the text on i + 1 lines. */
  rasters: Raster[];
}

/** Renders the mark once at high resolution and hands out a mark per output size, cached. */
export interface Watermarker {
  markFor(width: number, height: number): Promise<Mark | undefined>;
  /** 'stored' when the text rasters came from `textMarks` whose key matched; 'rendered' otherwise. */
  readonly source: 'rendered' | 'stored';
  /** Every raster this text mark can use, rendered now, with their key; undefined for an image mark. */
  renderTextMarks(): Promise<TextMarks | undefined>;
}

/**
 * What a text raster depends on beyond the render code itself (which travels in the same zip as the
 * rasters): the text, the render width, the font file's bytes and the libraries sharp draws text with.
 * No platform: a mark rendered by deploy on x86_64 is the mark the arm64 function draws, which is then
 * pixel for pixel the mark the CLI draws on the machine that deployed.
 */
async function textMarksKey(text: string, fontfile: string, markWidth: number): Promise<string> {
  const font = createHash('sha256').update(await readFile(fontfile)).digest('hex');
  return JSON.stringify({ text, markWidth, font, versions: sharp.versions });
}

/**
 * Blends `mark` over raw 3- or 4-channel pixels ("over", 8-bit) into a copy. It touches only the mark's
 * own pixels, where sharp's composite would convert and blend the whole image.
 */
export function blendMark(pixels: Buffer, layout: { width: number; height: number; channels: number }, mark: Mark): Buffer {
  const out = Buffer.from(pixels);
  const { width, height, channels } = layout;
  for (let y = 0; y < mark.height; y++) {
    const row = mark.top + y;
    if (row < 0 || row >= height) continue;
    for (let x = 0; x < mark.width; x++) {
      const column = mark.left + x;
      if (column < 0 || column >= width) continue;
      const s = (y * mark.width + x) * 4;
      const a = mark.data[s + 3]! / 255;
      if (a === 0) continue;
      const d = (row * width + column) * channels;
      if (channels === 4) {
        const below = (out[d + 3]! / 255) * (1 - a);
        const alpha = a + below;
        for (let c = 0; c < 3; c++) out[d + c] = Math.round((mark.data[s + c]! * a + out[d + c]! * below) / alpha);
        out[d + 3] = Math.round(alpha * 255);
      } else {
        for (let c = 0; c < 3; c++) out[d + c] = Math.round(mark.data[s + c]! * a + out[d + c]! * (1 - a));
      }
    }
  }
  return out;
}

/** The same mark as sharp composite layers, one per frame of a vertically stacked animation. */
export function markLayers(mark: Mark, pages: number, frameHeight: number): OverlayOptions[] {
  return Array.from({ length: pages }, (_, p) => ({
    input: mark.data,
    raw: { width: mark.width, height: mark.height, channels: 4 as const },
    left: mark.left,
    top: mark.top + p * frameHeight,
  }));
}

function escapeMarkup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function toRaster(image: Sharp): Promise<Raster> {
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Text rendering resolution bounds: 72 dpi is the cheap probe, 1200 dpi the sharpest ever needed. */
const PROBE_DPI = 72;
const MAX_DPI = 1200;

function textImage(text: string, fontfile: string, dpi: number): Sharp {
  return sharp({ text: { text: `<span foreground="white">${escapeMarkup(text)}</span>`, font: FONT_FAMILY, fontfile, rgba: true, dpi } });
}

/**
 * The words of `text` on `lines` lines of about equal length (fewer when there are fewer words), so a long
 * text can be drawn taller within the same width.
 */
export function wrapText(text: string, lines: number): string[] {
  const words = text.trim().split(/\s+/);
  if (lines <= 1 || words.length <= 1) return [text.trim()];
  const target = text.trim().length / Math.min(lines, words.length);
  const out: string[] = [];
  let line = '';
  for (const [i, word] of words.entries()) {
    const left = words.length - i;
    const slots = lines - out.length - 1;
    // Break when the line is long enough, or when each remaining word must take a line of its own.
    if (line !== '' && slots > 0 && (line.length + 1 + word.length / 2 > target || left <= slots)) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  out.push(line);
  return out;
}

/**
 * White glyphs inside a dark outline that fades into a soft halo centred on them, the way photo services mark images:
 * the white reads on dark photos, the outline on white and busy ones. Rendered at the resolution the widest
 * mark needs (`width` pixels), not more: the outline's blur costs grow with its area.
 */
async function renderText(lines: readonly string[], fontfile: string, width: number): Promise<Raster> {
  const text = lines.join('\n');
  const probe = await textImage(text, fontfile, PROBE_DPI).toBuffer({ resolveWithObject: true });
  const dpi = Math.min(MAX_DPI, Math.max(PROBE_DPI, Math.ceil((PROBE_DPI * width) / probe.info.width)));
  const rendered = await toRaster(textImage(text, fontfile, dpi));
  const pad = Math.ceil((rendered.height / lines.length) * HALO_PAD);
  const glyphs = await toRaster(
    sharp(rendered.data, { raw: { width: rendered.width, height: rendered.height, channels: 4 } })
      .extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 0, g: 0, b: 0, alpha: 0 } }),
  );
  const raw = { raw: { width: glyphs.width, height: glyphs.height, channels: 4 as const } };
  // sharp runs a pipeline's operations in its own fixed order (blur before extractChannel), so each step is
  // a pipeline of its own. The glyph alpha, blurred and thresholded, is the glyphs grown by about pad/2: a
  // solid outline; a second, wider blur of the same alpha adds a soft halo beyond it, centred on the glyphs.
  const alpha = await sharp(glyphs.data, raw).extractChannel(3).raw().toBuffer();
  const grey = (buffer: Buffer) => sharp(buffer, { raw: { width: glyphs.width, height: glyphs.height, channels: 1 } });
  const outline = await singleChannel(grey(await singleChannel(grey(alpha).blur(Math.max(0.3, pad / 3)))).threshold(24));
  const soft = await singleChannel(grey(alpha).blur(Math.max(0.5, pad / 1.5)));
  const smooth = await singleChannel(grey(outline).blur(Math.max(0.3, pad / 8)));
  const halo = Buffer.alloc(smooth.length);
  for (let i = 0; i < halo.length; i++) halo[i] = Math.max(smooth[i]!, Math.min(255, soft[i]! * 2));
  const underlay = await sharp({ create: { width: glyphs.width, height: glyphs.height, channels: 3, background: '#000000' } })
    .joinChannel(halo, { raw: { width: glyphs.width, height: glyphs.height, channels: 1 } })
    .raw()
    .toBuffer();
  const marked = await toRaster(sharp(underlay, raw).composite([{ input: glyphs.data, ...raw }]));
  return { ...marked, glyphHeight: rendered.height / lines.length };
}

/**
 * The pixels of a one-channel pipeline, one byte each. sharp writes a blurred or thresholded one-channel
 * image as sRGB (three equal channels); read as one channel, that buffer is the mask squashed to a third of
 * its height and smeared sideways, which drew the outline as a dark band under the text.
 */
function singleChannel(image: Sharp): Promise<Buffer> {
  return image.extractChannel(0).raw().toBuffer();
}

type Anchor = 'start' | 'center' | 'end';
const ANCHORS: Record<Gravity, [horizontal: Anchor, vertical: Anchor]> = {
  'top-left': ['start', 'start'], top: ['center', 'start'], 'top-right': ['end', 'start'],
  left: ['start', 'center'], center: ['center', 'center'], right: ['end', 'center'],
  'bottom-left': ['start', 'end'], bottom: ['center', 'end'], 'bottom-right': ['end', 'end'],
};

function offset(anchor: Anchor, size: number, mark: number, margin: number): number {
  const at = anchor === 'start' ? margin : anchor === 'end' ? size - mark - margin : Math.round((size - mark) / 2);
  return Math.max(0, at);
}

/** Where the top-left corner of a `w`×`h` mark goes on a `width`×`height` canvas. */
export function placeMark(gravity: Gravity, width: number, height: number, w: number, h: number, margin: number): { left: number; top: number } {
  const [horizontal, vertical] = ANCHORS[gravity];
  return { left: offset(horizontal, width, w, margin), top: offset(vertical, height, h, margin) };
}

/**
 * The mark's size on one output: `size` × width, at least `minHeight` pixels tall (text stays legible),
 * and always inside the margins.
 */
export function fitMark(spec: WatermarkSpec, minHeight: number, width: number, height: number, markW: number, markH: number): { w: number; h: number; margin: number } {
  const margin = Math.round(spec.margin * Math.min(width, height));
  let w = spec.size * width;
  if ((w * markH) / markW < minHeight) w = (minHeight * markW) / markH;
  const scale = Math.min(w / markW, (width - 2 * margin) / markW, (height - 2 * margin) / markH);
  // Rounding cannot overflow: the canvas limits are whole pixels, so a scaled side never rounds past them.
  return { w: Math.max(1, Math.round(markW * scale)), h: Math.max(1, Math.round(markH * scale)), margin };
}

/** Validates and loads the configured mark; fails as a config error (before any output is written). */
export async function prepareWatermark(
  spec: WatermarkSpec,
  options: { fontfile?: string; image?: Buffer | undefined; maxOutputWidth?: number; textMarks?: TextMarks | undefined; onWarning?: (message: string) => void } = {},
): Promise<Watermarker> {
  // Render at twice the widest output's mark, so every mark is a downscale (crisp edges); the minimum text
  // height can make a thumbnail's mark wider than `size` asks, hence the floor.
  const markWidth = 2 * Math.max(64, Math.ceil(spec.size * (options.maxOutputWidth ?? 2048)));
  const what = spec.text !== undefined ? `watermark text ${JSON.stringify(spec.text)}` : `watermark image ${spec.image}`;
  const load = async <T>(make: () => Promise<T>): Promise<T> => {
    try {
      return await make();
    } catch (error) {
      throw new ConfigError('WATERMARK_INVALID', `cannot render ${what}: ${(error as Error).message}`, { cause: error });
    }
  };
  const fontfile = options.fontfile ?? DEFAULT_FONT_FILE;
  const maxLines = spec.text !== undefined ? Math.min(MAX_LINES, wrapText(spec.text, MAX_LINES).length) : 1;
  // Text: one raster per number of lines, each rendered once and only when some output size needs it,
  // unless stored ones were rendered from exactly this text, width, font and sharp.
  const layouts: Promise<Raster>[] = [];
  // An unreadable font only means the stored rasters cannot be checked: the text is rendered, as without them.
  const key = spec.text !== undefined && options.textMarks ? await textMarksKey(spec.text, fontfile, markWidth).catch(() => undefined) : undefined;
  const stored = key !== undefined && options.textMarks?.key === key && options.textMarks.rasters.length === maxLines;
  if (stored) options.textMarks!.rasters.forEach((raster, i) => (layouts[i + 1] = Promise.resolve(raster)));
  const layout = (lines: number): Promise<Raster> => {
    layouts[lines] ??= load(() => renderText(wrapText(spec.text!, lines), fontfile, markWidth));
    return layouts[lines]!;
  };
  const first = spec.text !== undefined ? await layout(1) : await load(async () => toRaster(sharp(options.image ?? (await readFile(spec.image!)), { limitInputPixels: 25_000_000 })));
  let warned = false;
  const cache = new Map<string, Promise<Mark | undefined>>();
  const render = async (width: number, height: number): Promise<Mark | undefined> => {
    let chosen: { mark: Raster; w: number; h: number; margin: number } | undefined;
    for (let lines = 1; lines <= maxLines && !chosen; lines += 1) {
      const mark = lines === 1 ? first : await layout(lines);
      // The minimum is for the glyphs; the mark also carries the outline's padding around them.
      const minHeight = mark.glyphHeight ? (MIN_TEXT_HEIGHT * mark.height) / mark.glyphHeight : 0;
      const fit = fitMark(spec, minHeight, width, height, mark.width, mark.height);
      const lineHeight = mark.glyphHeight ? (fit.h * mark.glyphHeight) / mark.height : Infinity;
      if (lineHeight >= MIN_TEXT_HEIGHT - 0.5) chosen = { mark, ...fit };
    }
    if (!chosen) {
      // Never an unreadable smudge: the output goes unmarked, and the run says so once.
      if (!warned) options.onWarning?.(`the ${what} cannot be drawn legibly (lines at least ${MIN_TEXT_HEIGHT} px tall) on ${width}x${height} outputs, even on ${maxLines} line${maxLines === 1 ? '' : 's'}: outputs that small are left unmarked`);
      warned = true;
      return undefined;
    }
    const { mark, w, h, margin } = chosen;
    if (w < 2 || h < 2) return undefined;
    const { data, info } = await sharp(mark.data, { raw: { width: mark.width, height: mark.height, channels: 4 } })
      .resize(w, h, { fit: 'fill' })
      .linear([1, 1, 1, spec.opacity], [0, 0, 0, 0])
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, ...placeMark(spec.position, width, height, info.width, info.height, margin) };
  };
  return {
    source: stored ? 'stored' : 'rendered',
    async renderTextMarks() {
      if (spec.text === undefined) return undefined;
      const rasters = await Promise.all(Array.from({ length: maxLines }, (_, i) => layout(i + 1)));
      return { key: key ?? (await load(() => textMarksKey(spec.text!, fontfile, markWidth))), rasters };
    },
    markFor(width, height) {
      const key = `${width}x${height}`;
      let mark = cache.get(key);
      if (!mark) {
        mark = render(width, height);
        cache.set(key, mark);
      }
      return mark;
    },
  };
}
