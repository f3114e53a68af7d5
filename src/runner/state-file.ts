import { STATE_KEY, VARIANT_NAME } from '../pipeline/layout.js';
import type { Sink } from '../storage/types.js';

/** The destination's state file (STATE_KEY): which config its outputs were made with, and where they went. */
interface State {
  tool: 'img-pipeline';
  fingerprint: string;
  /** Every variant folder any run ever wrote under this destination, so scans leave them all out. */
  variants: string[];
}

/**
 * Records which config the destination's outputs are made with, before the first output is written.
 * `previous` is the state file's text before this run: its variant folders are kept in the record.
 */
export async function recordState(sink: Sink, fingerprint: string, variants: readonly string[] = [], previous?: string): Promise<void> {
  const all = [...new Set([...recordedVariants(previous), ...variants])];
  const body = `${JSON.stringify({ tool: 'img-pipeline', fingerprint, variants: all } satisfies State, null, 2)}\n`;
  await sink.write(STATE_KEY, Buffer.from(body), { contentType: 'application/json', metadata: {} });
}

function parseState(text: string | undefined): Partial<State> {
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Partial<State>) : {};
  } catch {
    return {};
  }
}

/** The fingerprint a state file's text records; undefined when there is none or it cannot be parsed. */
export function recordedFingerprint(text: string | undefined): string | undefined {
  const { fingerprint } = parseState(text);
  return typeof fingerprint === 'string' ? fingerprint : undefined;
}

/** The variant folders a state file's text records (plain names only: nothing that could point elsewhere). */
export function recordedVariants(text: string | undefined): string[] {
  const { variants } = parseState(text);
  return Array.isArray(variants) ? variants.filter((v): v is string => typeof v === 'string' && VARIANT_NAME.test(v)) : [];
}
