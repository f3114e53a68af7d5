// The decode floor: one shrink-on-load decode per file to fit 512x512, with the same sharp and the same
// number of images in flight as the tool. Nothing is encoded or written. Usage: decode-floor.mjs DIR [J]
import { availableParallelism } from 'node:os';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';

const dir = process.argv[2];
const jobs = Number(process.argv[3] ?? 2);
sharp.cache(false);
sharp.concurrency(Math.max(1, Math.floor(availableParallelism() / jobs)));
const files = (await readdir(dir, { recursive: true })).filter((f) => /\.(jpe?g|png|webp|tiff?|gif|avif)$/i.test(f));
const limit = pLimit(jobs);
await Promise.all(files.map((f) => limit(async () => sharp(await readFile(join(dir, f))).resize(512, 512, { fit: 'inside' }).raw().toBuffer())));
