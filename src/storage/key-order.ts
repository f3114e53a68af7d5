/**
 * The order every listing comes in: S3's, the byte order of keys in UTF-8. Resume matches source keys
 * against destination listings in one pass (see runner/destination.ts), which works only if both sides
 * sort alike.
 *
 * JavaScript compares strings by UTF-16 code unit, which agrees with UTF-8 byte order except in one place:
 * a character above U+FFFF (an emoji, say) is a surrogate pair, 0xD800-0xDFFF, which UTF-16 sorts before
 * U+E000-U+FFFF (private use, CJK compatibility, fullwidth forms), while UTF-8 sorts it after them.
 * compareKeys corrects for that, so it matches S3 for every valid key.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate && !ySurrogate && y >= 0xe000) return 1;
    if (ySurrogate && !xSurrogate && x >= 0xe000) return -1;
    return x - y;
  }
  return a.length - b.length;
}
