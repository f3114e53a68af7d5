import { readFile, writeFile } from 'node:fs/promises';
import { renderRegions, updateGeneratedRegions } from './docs/cli-reference.js';

// `npm run docs`: rewrites the generated regions of docs/cli.md (options, config fields, exit codes) from
// the code. test/docs/cli-reference.test.ts fails when the committed file differs from this output.
const file = new URL('../docs/cli.md', import.meta.url);
const before = await readFile(file, 'utf8');
const after = updateGeneratedRegions(before, renderRegions());
if (after !== before) await writeFile(file, after);
process.stdout.write(after === before ? 'docs/cli.md is up to date\n' : 'docs/cli.md regenerated\n');
