/** Where a shell example can run: see "Runnable examples" in docs/development.md. */
export type ExampleKind = 'offline' | 's3' | 'aws' | 'manual';

export interface DocExample {
  /** `docs/s3.md:12`: the file and the line of the opening fence. */
  where: string;
  kind: ExampleKind;
  /** The exit code the block must end with (`exit 2` in the marker; 0 otherwise). */
  exitCode: number;
  script: string;
}

const KINDS: readonly ExampleKind[] = ['offline', 's3', 'aws', 'manual'];
const SHELL_FENCE = /^```(sh|bash|shell|console)\s*$/;
const MARKER = /^<!-- example: (.*?) -->$/;

/** Reads `offline`, `s3, exit 2`, `aws`: one kind, and optionally the exit code the block must end with. */
function parseMarker(text: string, where: string): { kind: ExampleKind; exitCode: number } {
  let kind: ExampleKind | undefined;
  let exitCode = 0;
  for (const part of text.split(',').map((p) => p.trim())) {
    const exit = /^exit (\d+)$/.exec(part);
    if (exit) exitCode = Number(exit[1]);
    else if ((KINDS as readonly string[]).includes(part) && kind === undefined) kind = part as ExampleKind;
    else throw new Error(`${where}: unknown example marker "${part}" (expected one of ${KINDS.join(', ')}, optionally ", exit N")`);
  }
  if (!kind) throw new Error(`${where}: the example marker names no kind (${KINDS.join(', ')})`);
  return { kind, exitCode };
}

/**
 * Every shell code block of a markdown file, with the `<!-- example: ... -->` marker on the line above
 * its fence. A shell block without a marker is an error: each one must say whether it runs offline,
 * against loopback S3, or needs AWS.
 */
export function extractExamples(markdown: string, file: string): DocExample[] {
  const lines = markdown.split('\n');
  const examples: DocExample[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!lines[i]!.startsWith('```')) continue;
    const open = i;
    const close = lines.findIndex((line, j) => j > open && line.startsWith('```'));
    if (close === -1) throw new Error(`${file}:${open + 1}: a code block that never closes`);
    i = close;
    if (!SHELL_FENCE.test(lines[open]!)) continue;
    const where = `${file}:${open + 1}`;
    const marker = MARKER.exec(lines[open - 1] ?? '');
    if (!marker) throw new Error(`${where}: a shell example without a marker: put <!-- example: offline --> (or s3, aws, manual) on the line above its fence`);
    examples.push({ where, ...parseMarker(marker[1]!, where), script: lines.slice(open + 1, close).join('\n') });
  }
  return examples;
}
