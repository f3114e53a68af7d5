import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { addPipelineOptions, pipelineFlags } from '../../../src/cli/options.js';

/** Parses argv with the real pipeline flags and returns the config layer they make. */
function flags(...args: string[]) {
  const command = addPipelineOptions(new Command('t').exitOverride().option('-j, --concurrency <n>').argument('[input...]'));
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

  it('reads --keep-metadata with a mode, or bare as all', () => {
    expect(flags('--keep-metadata', 'icc').layer.keepMetadata).toBe('icc');
    expect(flags('--keep-metadata').layer.keepMetadata).toBe('all');
  });

  it('reads --background, --animated and the limits', () => {
    expect(flags('--background', '#ff0000', '--animated', '--max-pixels', '1000', '--max-file-size', '2MB', '--allow-svg').layer).toMatchObject({
      background: '#ff0000',
      animated: true,
      limits: { maxPixels: 1000, maxFileSize: 2 * 1024 * 1024, allowSvg: true },
    });
    expect(flags('--max-file-size', '512k').layer.limits).toMatchObject({ maxFileSize: 512 * 1024 });
    expect(flags('--max-file-size', '1234').layer.limits).toMatchObject({ maxFileSize: 1234 });
    expect(flags('--max-file-size', 'lots').layer.limits).toMatchObject({ maxFileSize: 'lots' });
  });
});
