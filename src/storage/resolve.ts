import { resolve } from 'node:path';
import { LocalSink, LocalSource } from './local.js';
import type { Sink, Source } from './types.js';

/** Opens each input; `out` is excluded from folder scans so a run never processes its own outputs. */
export async function openSources(inputs: readonly string[], out: string): Promise<Source[]> {
  return Promise.all(inputs.map((input) => LocalSource.open(input, [resolve(out)])));
}

/** The destination named by `--out`. */
export function openSink(out: string): Sink {
  return new LocalSink(out);
}
