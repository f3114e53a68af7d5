import { describe, expect, it } from 'vitest';
import { compareKeys } from '../../../src/storage/key-order.js';

const utf8 = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));

describe('compareKeys', () => {
  it('sorts like S3: by UTF-8 bytes, where UTF-16 code units would disagree', () => {
    // U+FF61 is 0xEF... in UTF-8, an emoji 0xF0...: S3 puts the emoji last; JavaScript's < puts it first.
    expect('a\u{1F600}' < 'a\uFF61').toBe(true);
    expect(Math.sign(compareKeys('a\u{1F600}', 'a\uFF61'))).toBe(1);
    expect(Math.sign(compareKeys('a\uFF61', 'a\u{1F600}'))).toBe(-1);
    expect(compareKeys('same', 'same')).toBe(0);
    expect(Math.sign(compareKeys('a', 'a/'))).toBe(-1);
    expect(Math.sign(compareKeys('a.jpg', 'a/x.jpg'))).toBe(-1);
  });

  it('agrees with Buffer.compare on keys made of every kind of character', () => {
    const alphabet = ['a', 'Z', '0', '/', '.', '-', ' ', '+', 'é', 'ß', '\u4E2D', '\uE000', '\uFF61', '\uFFFD', '\u{1F600}', '\u{10000}', '\u{1D11E}'];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const key = () => Array.from({ length: 1 + Math.floor(random() * 6) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    for (let i = 0; i < 5000; i += 1) {
      const a = key();
      const b = key();
      expect(Math.sign(compareKeys(a, b)), `${a} vs ${b}`).toBe(utf8(a, b));
    }
  });
});
