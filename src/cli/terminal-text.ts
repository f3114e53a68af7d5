/**
 * Characters a terminal acts on rather than shows: C0 controls (ESC starts colour and cursor sequences, CR
 * rewrites the line, BEL rings), DEL, C1 controls (U+0080–U+009F; U+009B is a one-byte CSI on some
 * terminals), Unicode bidi embeddings, overrides and isolates (U+202E shows `gpj.exe` as `exe.jpg`), and
 * the line and paragraph separators.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(char: string): string {
  const code = char.charCodeAt(0);
  return NAMED[char] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * Text from outside (file names, S3 keys, messages that quote them) made safe to print: every control
 * character is written as its JavaScript escape (`\x1b`, `\n`, `\u202e`), so it can neither drive the
 * terminal nor split a one-line-per-file log. `keepNewlines` leaves line breaks for messages of several
 * lines of our own (config errors, stacks). Backslashes stay as they are.
 */
export function escapeControl(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL, escapeOne);
}

const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text with the characters JSON.stringify leaves raw but a terminal acts on (DEL, C1, bidi) written
 * as `\uXXXX`: the same strings once parsed, safe when the document is printed on a terminal.
 */
export function escapeJsonText(json: string): string {
  return json.replace(JSON_UNSAFE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
