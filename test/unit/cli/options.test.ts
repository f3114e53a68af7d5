import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { addPipelineOptions, addS3Options, pipelineFlags } from '../../../src/cli/options.js';

/** Parses argv with the real pipeline flags and returns the config layer they make. */
function flags(...args: string[]) {
  const command = addS3Options(addPipelineOptions(new Command('t').exitOverride().configureOutput({ writeErr: () => undefined }).option('-j, --concurrency <n>').argument('[input...]')));
  command.parse(args, { from: 'user' });
  return pipelineFlags(command.opts());
}

describe('pipelineFlags', () => {
  it('gives an empty layer when no flag is given (the file and defaults stand)', () => {
    const { layer, sizeOverrides } = flags('in');
    expect(Object.values(layer).filter((v) => v !== undefined)).toEqual([]);
    expect(sizeOverrides).toEqual({});
  });

  it('parses --sizes with custom names, and --fit/--crop apply to each of them', () => {
    expect(flags('--sizes', 'thumb=128x128,medium=512x512,large=1024x1024').layer.sizes).toEqual({
      thumb: { width: 128, height: 128 },
      medium: { width: 512, height: 512 },
      large: { width: 1024, height: 1024 },
    });
    expect(flags('--sizes', 'square=100x100', '--fit', 'cover', '--crop', 'attention').layer.sizes).toEqual({ square: { width: 100, height: 100, fit: 'cover', position: 'attention' } });
  });

  it('keeps --fit / --crop without --sizes as overrides for every configured size', () => {
    expect(flags('--fit', 'cover').sizeOverrides).toEqual({ fit: 'cover' });
  });

  it('rejects a malformed --sizes item, quoting it', () => {
    expect(() => flags('--sizes', 'thumb=128')).toThrow(ConfigError);
    expect(() => flags('--sizes', 'thumb=128x128,big')).toThrow(/--sizes: expected name=WIDTHxHEIGHT.*received "big"/);
  });

  it('splits -f into a list and reads -q and -j as numbers', () => {
    const { layer } = flags('-f', 'jpeg, webp,avif', '-q', '70', '-j', '4');
    expect(layer).toMatchObject({ formats: ['jpeg', 'webp', 'avif'], quality: 70, concurrency: 4 });
  });

  it('passes non-numeric text through so the schema reports what was received', () => {
    expect(flags('-q', 'high').layer.quality).toBe('high');
    expect(() => validateConfig(flags('-q', 'high').layer, 'command-line flags')).toThrow(/quality: expected number, received "high"/);
    expect(() => validateConfig(flags('-f', 'gif').layer, 'command-line flags')).toThrow(/formats\.0: .*received "gif"/);
  });

  it('builds the watermark from its flags', () => {
    expect(flags('--watermark', '© Acme', '--watermark-position', 'top-left', '--watermark-opacity', '0.4', '--watermark-size', '0.2', '--watermark-margin', '0.05').layer.watermark).toEqual({
      text: '© Acme', image: undefined, position: 'top-left', opacity: 0.4, size: 0.2, margin: 0.05,
    });
    expect(flags('--watermark-image', 'logo.png').layer.watermark).toMatchObject({ image: 'logo.png', text: undefined });
  });

  it('turns --no-watermark into null, which beats a config file', () => {
    expect(flags('--no-watermark').layer.watermark).toBeNull();
  });

  it('reads --keep-metadata with a required mode: never the next input, never a bare "all" (which keeps GPS)', () => {
    expect(flags('--keep-metadata', 'icc', 'photos').layer.keepMetadata).toBe('icc');
    expect(flags('photos', '--keep-metadata', 'all').layer.keepMetadata).toBe('all');
    expect(() => flags('photos', '--keep-metadata')).toThrow(CommanderError);
    expect(() => flags('photos', '--keep-metadata')).toThrow(/'--keep-metadata <mode>' argument missing/);
    expect(() => flags('--keep-metadata', 'photos')).toThrow(/argument 'photos' is invalid\. Allowed choices are none, icc, all/);
  });

  it('takes -f jpg for jpeg', () => {
    expect(validateConfig(flags('-f', 'jpg,webp').layer, 'command-line flags').formats).toEqual(['jpeg', 'webp']);
  });

  it('rejects an empty or blank --watermark (or --watermark-image) in one line naming the flag', () => {
    for (const text of ['', '   ']) {
      const error = (() => { try { flags('--watermark', text); } catch (e) { return e as Error; } })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.message).toBe(`--watermark: expected the text to draw (--no-watermark turns the watermark off), received ${JSON.stringify(text)}`);
    }
    expect(() => flags('--watermark-image', '')).toThrow(/^--watermark-image: expected an image file, received ""$/);
  });

  it('rejects --watermark with --watermark-image, naming both flags', () => {
    expect(() => flags('--watermark', 'x', '--watermark-image', 'logo.png')).toThrow(/^--watermark and --watermark-image: expected one of them, received both/);
  });

  it('rejects --crop with a fit that is not cover, with or without --sizes', () => {
    expect(() => flags('--crop', 'attention', '--fit', 'inside')).toThrow(/^--crop attention needs --fit cover: with --fit inside/);
    expect(() => flags('--sizes', 'a=10x10', '--crop', 'entropy')).toThrow(/^--crop entropy needs --fit cover/);
    expect(flags('--sizes', 'a=10x10', '--fit', 'cover', '--crop', 'entropy').layer.sizes).toEqual({ a: { width: 10, height: 10, fit: 'cover', position: 'entropy' } });
    // Alone, it depends on the config file's fit: loadConfig decides.
    expect(flags('--crop', 'attention').sizeOverrides).toEqual({ position: 'attention' });
  });

  it('rejects a name given twice in --sizes', () => {
    expect(() => flags('--sizes', 'a=10x10,a=64x64')).toThrow(ConfigError);
    expect(() => flags('--sizes', 'a=10x10,a=64x64')).toThrow(/^--sizes: expected each name once, received "a" twice \("a=10x10,a=64x64"\)$/);
    // Names that are also Object.prototype's are names like any other.
    expect(Object.keys(flags('--sizes', 'constructor=10x10,toString=5x5').layer.sizes!)).toEqual(['constructor', 'toString']);
  });

  it('reads --background, --animated and the limits', () => {
    expect(flags('--background', '#ff0000', '--animated', '--max-pixels', '1000', '--max-file-size', '2MB', '--allow-svg').layer).toMatchObject({
      background: '#ff0000',
      animated: true,
      limits: { maxPixels: 1000, maxFileSize: 2 * 1024 * 1024, allowSvg: true },
    });
    expect(flags('--max-file-size', '512k').layer.limits).toMatchObject({ maxFileSize: 512 * 1024 });
    expect(flags('--max-file-size', '1234').layer.limits).toMatchObject({ maxFileSize: 1234 });
    expect(() => flags('--max-file-size', 'lots')).toThrow('--max-file-size: expected a size such as 500KB, 50MB or 1GB (a number of bytes, optionally followed by B, KB, MB or GB), received "lots"');
  });

  it('reads the transfer limits: --connections, and --read-ahead and --write-behind as sizes', () => {
    expect(flags('--connections', '64', '--read-ahead', '256MB', '--write-behind', '1g').layer.s3).toMatchObject({ connections: 64, readAheadBytes: 256 * 1024 ** 2, writeBehindBytes: 1024 ** 3 });
    expect(() => flags('--read-ahead', 'lots')).toThrow('--read-ahead: expected a size such as 500KB, 50MB or 1GB');
    expect(flags('--quality', '80').layer.s3).toBeUndefined();
  });
});
