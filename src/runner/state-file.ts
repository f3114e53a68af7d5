import { STATE_KEY } from '../pipeline/layout.js';
import type { Sink } from '../storage/types.js';

/** The destination's state file (STATE_KEY): which config its outputs were made with. */
interface State {
  tool: 'img-pipeline';
  fingerprint: string;
}

/** Records which config the destination's outputs are made with, before the first output is written. */
export async function recordState(sink: Sink, fingerprint: string): Promise<void> {
  const body = `${JSON.stringify({ tool: 'img-pipeline', fingerprint } satisfies State, null, 2)}\n`;
  await sink.write(STATE_KEY, Buffer.from(body), { contentType: 'application/json', metadata: {} });
}

/** The fingerprint a state file's text records; undefined when there is none or it cannot be parsed. */
export function recordedFingerprint(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return (JSON.parse(text) as Partial<State>).fingerprint;
  } catch {
    return undefined;
  }
}
