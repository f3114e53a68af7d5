import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, DEFAULT_SIZES } from '../../../src/config/schema.js';
import { REPO_ROOT } from '../../helpers/paths.js';

describe('configSchema', () => {
  it('fills the defaults of the original Lambda: thumb 128 and medium 512 inside, jpeg q85, white background, no metadata, no watermark', () => {
    const config = configSchema.parse({});
    expect(config.sizes).toEqual(DEFAULT_SIZES);
    expect(config.sizes['thumb']).toEqual({ width: 128, height: 128, fit: 'inside', position: 'center' });
    expect(config.sizes['medium']).toEqual({ width: 512, height: 512, fit: 'inside', position: 'center' });
    expect(config.formats).toEqual(['jpeg']);
    expect(config.quality).toBe(85);
    expect(config.background).toBe('#ffffff');
    expect(config.keepMetadata).toBe('none');
    expect(config.animated).toBe(false);
    expect(config.watermark).toBeNull();
    expect(config.limits.allowSvg).toBe(false);
    expect(config.limits.maxPixels).toBeGreaterThan(0);
    expect(config.limits.maxFileSize).toBeGreaterThan(0);
    expect(config.concurrency).toBeGreaterThanOrEqual(1);
  });

  it('fills watermark defaults: bottom-right, opacity about 0.6', () => {
    const config = configSchema.parse({ watermark: { text: '© Acme' } });
    expect(config.watermark).toMatchObject({ text: '© Acme', position: 'bottom-right', opacity: 0.6 });
  });

  it.each([
    ['an unknown format', { formats: ['gif'] }],
    ['no format', { formats: [] }],
    ['a repeated format', { formats: ['jpeg', 'jpeg'] }],
    ['quality 0', { quality: 0 }],
    ['quality 101', { quality: 101 }],
    ['a fractional quality', { quality: 80.5 }],
    ['a non-hex background', { background: 'red' }],
    ['a zero width', { sizes: { thumb: { width: 0, height: 10 } } }],
    ['an unknown fit', { sizes: { thumb: { width: 10, height: 10, fit: 'stretch' } } }],
    ['an empty size list', { sizes: {} }],
    ['a variant name with a slash', { sizes: { 'a/b': { width: 10, height: 10 } } }],
    ['a watermark with both text and image', { watermark: { text: 'x', image: 'y.png' } }],
    ['a watermark with neither text nor image', { watermark: { opacity: 0.5 } }],
    ['an opacity above 1', { watermark: { text: 'x', opacity: 1.5 } }],
    ['an unknown gravity', { watermark: { text: 'x', position: 'middle' } }],
    ['an unknown keepMetadata mode', { keepMetadata: 'gps' }],
    ['an unknown top-level field', { qualty: 80 }],
    ['zero concurrency', { concurrency: 0 }],
  ])('rejects %s', (_what, input) => {
    expect(configSchema.safeParse(input).success).toBe(false);
  });

  it('takes "jpg" for "jpeg" in formats, and still rejects the same format twice', () => {
    expect(configSchema.parse({ formats: ['jpg', 'webp'] }).formats).toEqual(['jpeg', 'webp']);
    expect(configSchema.safeParse({ formats: ['jpg', 'jpeg'] }).success).toBe(false);
  });

  it('accepts every fit, crop strategy and gravity the issue names', () => {
    for (const position of ['center', 'attention', 'entropy']) {
      expect(configSchema.safeParse({ sizes: { a: { width: 10, height: 10, fit: 'cover', position } } }).success).toBe(true);
    }
    for (const fit of ['inside', 'contain']) expect(configSchema.safeParse({ sizes: { a: { width: 10, height: 10, fit, position: 'center' } } }).success).toBe(true);
    for (const position of ['top-left', 'top', 'top-right', 'left', 'center', 'right', 'bottom-left', 'bottom', 'bottom-right']) {
      expect(configSchema.safeParse({ watermark: { text: 'x', position } }).success).toBe(true);
    }
  });
});

describe('a crop position without fit cover', () => {
  it('is refused like --crop without --fit cover, naming sizes.<name>.position, the expected and received values', () => {
    for (const [fit, position] of [['inside', 'attention'], ['contain', 'entropy'], [undefined, 'attention']] as const) {
      const result = configSchema.safeParse({ sizes: { hero: { width: 10, height: 10, ...(fit ? { fit } : {}), position } } });
      expect(result.success).toBe(false);
      const issue = result.error!.issues[0]!;
      expect(issue.path).toEqual(['sizes', 'hero', 'position']);
      expect(issue.message).toBe(`expected "center" (or fit "cover") with fit "${fit ?? 'inside'}", received "${position}": only a cover crop has a part to keep, ${fit ?? 'inside'} keeps the whole image`);
    }
  });
});

describe('the config reference in docs/cli.md', () => {
  /** The JSON block that follows `marker` in docs/cli.md. */
  function jsonAfter(readme: string, marker: string): unknown {
    const at = readme.indexOf(marker);
    expect(at, marker).toBeGreaterThan(-1);
    const start = readme.indexOf('```json\n', at) + '```json\n'.length;
    return JSON.parse(readme.slice(start, readme.indexOf('```', start)));
  }

  it('shows exactly the defaults where it says so, and the watermark defaults in its example', async () => {
    const readme = await readFile(join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
    const { concurrency: _, ...defaults } = configSchema.parse({});
    const { concurrency: __, ...shown } = configSchema.parse(jsonAfter(readme, 'Every field, set to its default'));
    expect(shown).toEqual(defaults);
    const example = jsonAfter(readme, 'the other fields below are the defaults') as { watermark: { text: string } };
    expect(configSchema.parse(example).watermark).toEqual(configSchema.parse({ watermark: { text: example.watermark.text } }).watermark);
  });
});
