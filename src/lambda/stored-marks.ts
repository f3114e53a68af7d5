import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Raster, TextMarks } from '../pipeline/watermark.js';

/** Where deploy puts the pre-rendered text mark in the zip: a manifest and one raw RGBA file per layout. */
export const STORED_MARKS_DIR = 'watermark/text';
const MANIFEST = 'marks.json';
const rasterFile = (index: number) => `${index + 1}-lines.rgba`;

interface Manifest {
  key: string;
  /** In order: the text on 1, 2, ... lines, each in `<lines>-lines.rgba`. */
  rasters: { width: number; height: number; glyphHeight?: number }[];
}

/** The zip entries for `marks`: raw pixels rather than PNG, so the cold start reads them without decoding. */
export function storedMarkFiles(marks: TextMarks): { name: string; data: Buffer }[] {
  const files = marks.rasters.map((raster, i) => ({ name: `${STORED_MARKS_DIR}/${rasterFile(i)}`, data: raster.data }));
  const manifest: Manifest = {
    key: marks.key,
    rasters: marks.rasters.map((raster) => ({
      width: raster.width,
      height: raster.height,
      ...(raster.glyphHeight !== undefined ? { glyphHeight: raster.glyphHeight } : {}),
    })),
  };
  return [...files, { name: `${STORED_MARKS_DIR}/${MANIFEST}`, data: Buffer.from(`${JSON.stringify(manifest)}\n`) }];
}

/**
 * The stored text mark under `root` (the unpacked zip), or undefined when there is none or it does not
 * hold together (a raster of the wrong length): then the handler renders the text, as the CLI does.
 */
export function readStoredMarks(root: string): TextMarks | undefined {
  const dir = join(root, STORED_MARKS_DIR);
  if (!existsSync(join(dir, MANIFEST))) return undefined;
  try {
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
    const rasters: Raster[] = manifest.rasters.map(({ width, height, glyphHeight }, i) => {
      const data = readFileSync(join(dir, rasterFile(i)));
      if (data.length !== width * height * 4) throw new Error(`${rasterFile(i)} is not ${width}x${height} RGBA`);
      return { data, width, height, ...(glyphHeight !== undefined ? { glyphHeight } : {}) };
    });
    return { key: manifest.key, rasters };
  } catch {
    return undefined;
  }
}
