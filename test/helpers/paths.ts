import { fileURLToPath } from 'node:url';

/** The repository root, whatever the working directory of the test process. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI shim that `npx img-pipeline` runs. */
export const BIN = fileURLToPath(new URL('../../bin/img-pipeline.js', import.meta.url));

/** Absolute path of a committed fixture, e.g. `fixture('cases/grey.jpg')`. */
export function fixture(path: string): string {
  return fileURLToPath(new URL(`../../fixtures/${path}`, import.meta.url));
}
