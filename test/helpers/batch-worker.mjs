// One Lambda execution environment for the local Batch driver (batch-driver.ts): imports the unpacked
// zip's index.mjs once (the cold init), then answers one event at a time over IPC, as Lambda invokes a
// warm function synchronously. A throw is reported as a function error, like Lambda's "Unhandled".
//
// usage (fork): batch-worker.mjs <unpacked-dir>
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(join(dir, 'index.mjs')).href);
process.on('message', async ({ id, event }) => {
  try {
    process.send({ id, response: await handler(event) });
  } catch (error) {
    process.send({ id, error: { errorType: error?.name ?? 'Error', errorMessage: error?.message ?? String(error) } });
  }
});
process.send({ ready: true });
