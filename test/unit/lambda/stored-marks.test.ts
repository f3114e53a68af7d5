import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readStoredMarks, STORED_MARKS_DIR, storedMarkFiles } from '../../../src/lambda/stored-marks.js';
import type { TextMarks } from '../../../src/pipeline/watermark.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

const MARKS: TextMarks = {
  key: '{"text":"© Acme"}',
  rasters: [
    { data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), width: 2, height: 1, glyphHeight: 0.75 },
    { data: Buffer.alloc(2 * 3 * 4, 9), width: 2, height: 3, glyphHeight: 1.25 },
  ],
};

async function unpack(marks: TextMarks): Promise<string> {
  const root = await makeTempDir('img-pipeline-marks-');
  for (const file of storedMarkFiles(marks)) {
    await mkdir(dirname(join(root, file.name)), { recursive: true });
    await writeFile(join(root, file.name), file.data);
  }
  return root;
}

describe('stored text marks in the Lambda zip', () => {
  it('come back as they were stored: key, sizes, glyph heights and pixels', async () => {
    const names = storedMarkFiles(MARKS).map((f) => f.name);
    expect(names.every((n) => n.startsWith(`${STORED_MARKS_DIR}/`))).toBe(true);
    expect(readStoredMarks(await unpack(MARKS))).toEqual(MARKS);
  });

  it('are absent from a zip without them (an image mark, or none)', async () => {
    expect(readStoredMarks(await makeTempDir('img-pipeline-marks-'))).toBeUndefined();
  });

  it('are ignored when they do not hold together, so the text is rendered instead', async () => {
    const truncated = await unpack(MARKS);
    const second = join(truncated, STORED_MARKS_DIR, '2-lines.rgba');
    await writeFile(second, (await readFile(second)).subarray(1));
    expect(readStoredMarks(truncated)).toBeUndefined();
    const missing = await unpack(MARKS);
    await rm(join(missing, STORED_MARKS_DIR, '1-lines.rgba'));
    expect(readStoredMarks(missing)).toBeUndefined();
    const garbled = await unpack(MARKS);
    await writeFile(join(garbled, STORED_MARKS_DIR, 'marks.json'), '{"key":');
    expect(readStoredMarks(garbled)).toBeUndefined();
  });
});
