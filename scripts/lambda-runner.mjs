// Runs an unpacked Lambda zip the way the Node.js runtime does: imports index.mjs once (the cold init),
// then calls handler(event). Used by test/integration/lambda.test.ts and scripts/bench-lambda.mjs.
//
// usage: node scripts/lambda-runner.mjs <unpacked-dir> <event.json> [--repeat N] [--result result.json]
// Exits 1 when the last invocation threw (its message goes to stderr), like a failed invocation.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const repeat = Number(option('--repeat') ?? 1);
const resultFile = option('--result');
const [dir, eventFile] = args;
if (!dir || !eventFile) {
  process.stderr.write('usage: lambda-runner.mjs <unpacked-dir> <event.json> [--repeat N] [--result result.json]\n');
  process.exit(2);
}

const event = JSON.parse(await readFile(eventFile, 'utf8'));
const importStart = performance.now();
const { handler } = await import(pathToFileURL(join(dir, 'index.mjs')).href);
const initMs = performance.now() - importStart;

const invocations = [];
let lastError;
for (let i = 0; i < repeat; i += 1) {
  const start = performance.now();
  try {
    const summary = await handler(event);
    invocations.push({ ms: performance.now() - start, summary });
    lastError = undefined;
  } catch (error) {
    lastError = error;
    invocations.push({ ms: performance.now() - start, error: error.message });
  }
}
const result = { initMs, invocations, rssBytes: process.memoryUsage().rss };
if (resultFile) await writeFile(resultFile, JSON.stringify(result));
if (lastError) {
  process.stderr.write(`handler failed: ${lastError.message}\n`);
  process.exitCode = 1;
}
