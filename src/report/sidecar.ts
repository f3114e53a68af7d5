import type { OutputFormat } from '../config/schema.js';
import type { InputInfo } from '../pipeline/decode.js';
import type { Placeholder } from '../pipeline/placeholder.js';

/** One output as a sidecar lists it; `key` is relative to the destination root, like every key in a sidecar. */
export interface SidecarOutput {
  variant: string;
  format: OutputFormat;
  key: string;
  width: number;
  height: number;
  bytes: number;
}

/** The JSON written to `meta/<key>.json` (pipeline/layout.ts sidecarKey): what a web page needs to show the image. */
export interface Sidecar {
  tool: 'img-pipeline';
  version: 1;
  source: { key: string; format: string; width: number; height: number; aspectRatio: number; bytes: number };
  /** The average colour, `#rrggbb`. */
  color: string;
  placeholder: { thumbhash: string; dataURL: string };
  outputs: SidecarOutput[];
  /** Per format, `<key> <width>w` for each distinct width, narrowest first: for `<img srcset>` under the root's URL. */
  srcset: Partial<Record<OutputFormat, string>>;
}

/** A key as a relative URL: each segment percent-encoded, so spaces, commas, `#` and `?` cannot break a srcset. */
function keyUrl(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** The srcset string of each format: outputs by width, one candidate per width (variants that came out the same size collapse). */
export function buildSrcset(outputs: readonly SidecarOutput[]): Partial<Record<OutputFormat, string>> {
  const srcset: Partial<Record<OutputFormat, string>> = {};
  for (const format of new Set(outputs.map((o) => o.format))) {
    const seen = new Set<number>();
    const candidates = outputs
      .filter((o) => o.format === format)
      .sort((a, b) => a.width - b.width)
      .filter((o) => !seen.has(o.width) && seen.add(o.width));
    srcset[format] = candidates.map((o) => `${keyUrl(o.key)} ${o.width}w`).join(', ');
  }
  return srcset;
}

/** The sidecar of one processed source (pure: everything comes from the decode and the writes). */
export function buildSidecar(source: { key: string; bytes: number; info: InputInfo }, placeholder: Placeholder, outputs: readonly SidecarOutput[]): Sidecar {
  const { format, width, height } = source.info;
  return {
    tool: 'img-pipeline',
    version: 1,
    source: { key: source.key, format, width, height, aspectRatio: Math.round((width / height) * 10000) / 10000, bytes: source.bytes },
    color: placeholder.color,
    placeholder: { thumbhash: placeholder.thumbhash, dataURL: placeholder.dataURL },
    outputs: [...outputs],
    srcset: buildSrcset(outputs),
  };
}
