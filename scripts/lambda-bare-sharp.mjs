// The floor for the Lambda's cold init: `import('sharp')` from an unpacked zip plus one tiny encode, as
// the handler's init needs at the least. scripts/bench-lambda.mjs runs it beside the handler's cold init.
//
// usage: node scripts/lambda-bare-sharp.mjs <unpacked-dir>   (prints {"ms": N})
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: lambda-bare-sharp.mjs <unpacked-dir>\n');
  process.exit(2);
}
// The file `import 'sharp'` resolves to from index.mjs in that folder (its package's ESM export).
const sharpDir = join(dir, 'node_modules', 'sharp');
const exported = JSON.parse(readFileSync(join(sharpDir, 'package.json'), 'utf8')).exports?.['.']?.import?.default ?? './lib/index.js';
const started = performance.now();
const { default: sharp } = await import(pathToFileURL(join(sharpDir, exported)).href);
await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ffffff' } }).jpeg().toBuffer();
process.stdout.write(`${JSON.stringify({ ms: performance.now() - started })}\n`);
