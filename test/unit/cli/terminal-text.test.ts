import { describe, expect, it } from 'vitest';
import { escapeControl, escapeJsonText } from '../../../src/cli/terminal-text.js';

describe('escapeControl', () => {
  it('writes every control character as its escape: C0, DEL, C1, bidi controls and line separators', () => {
    expect(escapeControl('a\u001b[31mred\u0007\u007f\r\n\t\u0085\u009b2J\u202egpj.exe\u2066\u2028é 日本')).toBe('a\\x1b[31mred\\x07\\x7f\\r\\n\\t\\x85\\x9b2J\\u202egpj.exe\\u2066\\u2028é 日本');
  });

  it('keeps line breaks when asked (our own messages of several lines), and nothing else', () => {
    expect(escapeControl('line one\n  \u001b]0;title\u0007', { keepNewlines: true })).toBe('line one\n  \\x1b]0;title\\x07');
  });
});

describe('escapeJsonText', () => {
  it('escapes what JSON.stringify leaves raw (DEL, C1, bidi), and parses back to the exact string', () => {
    const name = 'x\u007f\u0085\u202e\u001b\n.jpg';
    const json = escapeJsonText(JSON.stringify({ name }));
    expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(json)).toEqual({ name });
  });
});
