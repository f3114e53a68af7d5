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

/** Glyphs (ink, not the halo around them) under this height in pixels stop being legible on a thumbnail. */
export const MIN_TEXT_HEIGHT = 11;
/** The halo's padding on each side of the text, as a fraction of the glyph height (rounded up to whole pixels). */
const HALO_PAD = 0.12;

interface Raster {
  data: Buffer;
  width: number;
  height: number;
  /** For text: the height of the glyph line inside the halo padding. */
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

/** Renders the mark once at high resolution and hands out a mark per output size, cached. */
export interface Watermarker {
  markFor(width: number, height: number): Promise<Mark | undefined>;
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
 * White glyphs over a soft dark halo, so the text reads on light and dark photos alike. Rendered at the
 * resolution the widest mark needs (`width` pixels), not more: the halo's blur costs grow with its area.
 */
async function renderText(text: string, fontfile: string, width: number): Promise<Raster> {
  const probe = await textImage(text, fontfile, PROBE_DPI).toBuffer({ resolveWithObject: true });
  const dpi = Math.min(MAX_DPI, Math.max(PROBE_DPI, Math.ceil((PROBE_DPI * width) / probe.info.width)));
  const rendered = await toRaster(textImage(text, fontfile, dpi));
  const pad = Math.ceil(rendered.height * HALO_PAD);
  const glyphs = await toRaster(
    sharp(rendered.data, { raw: { width: rendered.width, height: rendered.height, channels: 4 } })
      .extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 0, g: 0, b: 0, alpha: 0 } }),
  );
  const raw = { raw: { width: glyphs.width, height: glyphs.height, channels: 4 as const } };
  const halo = await sharp(glyphs.data, raw).extractChannel(3).blur(Math.max(0.3, pad / 3)).linear(2.6, 0).raw().toBuffer();
  const shadow = await sharp({ create: { width: glyphs.width, height: glyphs.height, channels: 3, background: '#000000' } })
    .joinChannel(halo, { raw: { width: glyphs.width, height: glyphs.height, channels: 1 } })
    .raw()
    .toBuffer();
  const marked = await toRaster(sharp(shadow, raw).composite([{ input: glyphs.data, ...raw }]));
  return { ...marked, glyphHeight: rendered.height };
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
  options: { fontfile?: string; image?: Buffer | undefined; maxOutputWidth?: number } = {},
): Promise<Watermarker> {
  // Render at twice the widest output's mark, so every mark is a downscale (crisp edges); the minimum text
  // height can make a thumbnail's mark wider than `size` asks, hence the floor.
  const markWidth = 2 * Math.max(64, Math.ceil(spec.size * (options.maxOutputWidth ?? 2048)));
  let mark: Raster;
  try {
    mark = spec.text !== undefined
      ? await renderText(spec.text, options.fontfile ?? DEFAULT_FONT_FILE, markWidth)
      : await toRaster(sharp(options.image ?? (await readFile(spec.image!)), { limitInputPixels: 25_000_000 }));
  } catch (error) {
    const what = spec.text !== undefined ? `watermark text ${JSON.stringify(spec.text)}` : `watermark image ${spec.image}`;
    throw new ConfigError('WATERMARK_INVALID', `cannot render ${what}: ${(error as Error).message}`, { cause: error });
  }
  // The minimum is for the glyphs; the mark also carries the halo's padding above and below them.
  const minHeight = mark.glyphHeight ? (MIN_TEXT_HEIGHT * mark.height) / mark.glyphHeight : 0;
  const cache = new Map<string, Promise<Mark | undefined>>();
  const render = async (width: number, height: number): Promise<Mark | undefined> => {
    const { w, h, margin } = fitMark(spec, minHeight, width, height, mark.width, mark.height);
    if (w < 2 || h < 2) return undefined;
    const { data, info } = await sharp(mark.data, { raw: { width: mark.width, height: mark.height, channels: 4 } })
      .resize(w, h, { fit: 'fill' })
      .linear([1, 1, 1, spec.opacity], [0, 0, 0, 0])
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, ...placeMark(spec.position, width, height, info.width, info.height, margin) };
  };
  return {
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
