import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_FILE, loadConfig, mergeConfig, validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';
import { rejection } from '../../helpers/errors.js';

afterAll(removeTempDirs);

async function dirWithConfig(config: unknown, name = DEFAULT_CONFIG_FILE): Promise<string> {
  const dir = await makeTempDir();
  await writeFile(join(dir, name), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

const configError = (promise: Promise<unknown>) => rejection(promise, ConfigError);

describe('mergeConfig (defaults < file < flags)', () => {
  it('lets a flag replace a scalar and keeps the rest of the file', () => {
    expect(mergeConfig({ quality: 70, background: '#000000' }, { quality: 90 })).toEqual({ quality: 90, background: '#000000' });
  });

  it('never lets an undefined flag override the file', () => {
    expect(mergeConfig({ quality: 70 }, { quality: undefined })).toEqual({ quality: 70 });
  });

  it('replaces arrays and sizes as a whole', () => {
    const merged = mergeConfig({ formats: ['jpeg', 'png'], sizes: { a: { width: 1, height: 1 }, b: { width: 2, height: 2 } } }, { formats: ['webp'], sizes: { c: { width: 3, height: 3 } } });
    expect(merged).toEqual({ formats: ['webp'], sizes: { c: { width: 3, height: 3 } } });
  });

  it('merges watermark fields, and a flag text drops the file image', () => {
    expect(mergeConfig({ watermark: { text: 'file', opacity: 0.2 } }, { watermark: { opacity: 0.9 } })).toEqual({ watermark: { text: 'file', opacity: 0.9 } });
    expect(validateConfig(mergeConfig({ watermark: { image: 'logo.png', opacity: 0.2 } }, { watermark: { text: 'flag' } }), 't').watermark).toMatchObject({ text: 'flag', opacity: 0.2, image: undefined });
  });

  it('turns the watermark off with null (--no-watermark) whatever the file says', () => {
    expect(mergeConfig({ watermark: { text: 'file' } }, { watermark: null })).toEqual({ watermark: null });
  });
});

describe('loadConfig', () => {
  it('uses the defaults when there is no file and no flag', async () => {
    const dir = await makeTempDir();
    const { config, file } = await loadConfig({ cwd: dir, flags: {} });
    expect(file).toBeUndefined();
    expect(config.quality).toBe(85);
    expect(Object.keys(config.sizes)).toEqual(['thumb', 'medium']);
  });

  it('reads img-pipeline.config.json from cwd automatically, and flags win over it', async () => {
    const dir = await dirWithConfig({ quality: 60, formats: ['png'], watermark: { text: 'From file' } });
    const fromFile = await loadConfig({ cwd: dir, flags: {} });
    expect(fromFile.file).toBe(join(dir, DEFAULT_CONFIG_FILE));
    expect(fromFile.config).toMatchObject({ quality: 60, formats: ['png'], watermark: { text: 'From file' }, background: '#ffffff' });
    const withFlags = await loadConfig({ cwd: dir, flags: { quality: 95, watermark: null } });
    expect(withFlags.config).toMatchObject({ quality: 95, formats: ['png'], watermark: null });
  });

  it('reads an explicit --config file instead of the default one', async () => {
    const dir = await dirWithConfig({ quality: 60 });
    await writeFile(join(dir, 'other.json'), JSON.stringify({ quality: 40 }));
    expect((await loadConfig({ cwd: dir, file: 'other.json', flags: {} })).config.quality).toBe(40);
  });

  it('fails when an explicit config file is missing, but not when the default one is', async () => {
    const dir = await makeTempDir();
    const error = await configError(loadConfig({ cwd: dir, file: 'missing.json', flags: {} }));
    expect(error.message).toContain('missing.json');
    await expect(loadConfig({ cwd: dir, flags: {} })).resolves.toBeDefined();
  });

  it('names the file when it is not JSON', async () => {
    const dir = await dirWithConfig('{ "quality": ');
    const error = await configError(loadConfig({ cwd: dir, flags: {} }));
    expect(error.code).toBe('CONFIG_NOT_JSON');
    expect(error.message).toContain(join(dir, DEFAULT_CONFIG_FILE));
  });

  it('names each bad field, what was expected and what was received, and the file', async () => {
    const dir = await dirWithConfig({ quality: 'high', sizes: { thumb: { width: -3, height: 10 } }, background: 'red', formats: ['gif'] });
    const error = await configError(loadConfig({ cwd: dir, flags: {} }));
    expect(error.code).toBe('CONFIG_INVALID');
    const { message } = error;
    expect(message).toContain(join(dir, DEFAULT_CONFIG_FILE));
    expect(message).toMatch(/quality: expected number, received "high" \(string\)/);
    expect(message).toMatch(/sizes\.thumb\.width: expected .*>=\s*1.*received -3 \(number\)/);
    expect(message).toMatch(/background: expected a hex colour.*received "red" \(string\)/);
    expect(message).toMatch(/formats\.0: expected one of .*"jpeg".*received "gif" \(string\)/);
    // One line per field, each with one "received".
    for (const line of message.split('\n').slice(1)) expect(line.match(/received/g)).toHaveLength(1);
  });

  it('names an unknown field', async () => {
    const dir = await dirWithConfig({ qualty: 80 });
    expect((await configError(loadConfig({ cwd: dir, flags: {} }))).message).toMatch(/unknown field "qualty"/);
  });

  it('says a bad flag value came from the command line', async () => {
    const dir = await makeTempDir();
    const error = await configError(loadConfig({ cwd: dir, flags: { quality: 500 } }));
    expect(error.message).toMatch(/command-line flags/);
    expect(error.message).toMatch(/quality: .*100.*received 500 \(number\)/);
  });

  it('applies --fit / --crop to every size of the file when --sizes is not given', async () => {
    const dir = await dirWithConfig({ sizes: { small: { width: 50, height: 40 }, big: { width: 300, height: 200 } } });
    const { config } = await loadConfig({ cwd: dir, flags: {}, sizeOverrides: { fit: 'cover', position: 'attention' } });
    expect(config.sizes).toEqual({
      small: { width: 50, height: 40, fit: 'cover', position: 'attention' },
      big: { width: 300, height: 200, fit: 'cover', position: 'attention' },
    });
  });

  it('names the flag when a watermark flag has no watermark to adjust, in one line', async () => {
    const dir = await makeTempDir();
    const alone = await configError(loadConfig({ cwd: dir, flags: { watermark: { opacity: 0.3 } } }));
    expect(alone.message).toBe('--watermark-opacity needs a watermark to adjust: add --watermark TEXT or --watermark-image FILE (or set watermark.text or watermark.image in the config file)');
    const two = await configError(loadConfig({ cwd: dir, flags: { watermark: { position: 'top', margin: 0.1 } } }));
    expect(two.message).toMatch(/^--watermark-position, --watermark-margin need a watermark to adjust/);
    // The file's watermark off (null) is no watermark either.
    const off = await dirWithConfig({ watermark: null });
    expect((await configError(loadConfig({ cwd: off, flags: { watermark: { opacity: 0.3 } } }))).message).toMatch(/^--watermark-opacity needs/);
  });

  it('refuses a file\'s position: attention with fit: inside, naming sizes.<name>.position; --fit inside drops it, --crop alone leaves it', async () => {
    const dir = await dirWithConfig({ sizes: { hero: { width: 64, height: 64, fit: 'inside', position: 'attention' } } });
    expect((await configError(loadConfig({ cwd: dir, flags: {} }))).message).toMatch(/sizes\.hero\.position: expected "center" \(or fit "cover"\) with fit "inside", received "attention"/);
    const mixed = await dirWithConfig({ sizes: { square: { width: 64, height: 64, fit: 'cover', position: 'entropy' }, wide: { width: 300, height: 200 } } });
    expect((await loadConfig({ cwd: mixed, flags: {}, sizeOverrides: { position: 'attention' } })).config.sizes).toMatchObject({ square: { fit: 'cover', position: 'attention' }, wide: { fit: 'inside', position: 'center' } });
    expect((await loadConfig({ cwd: mixed, flags: {}, sizeOverrides: { fit: 'inside' } })).config.sizes['square']).toMatchObject({ fit: 'inside', position: 'center' });
  });

  it('lets a watermark flag adjust the watermark of the config file', async () => {
    const dir = await dirWithConfig({ watermark: { text: '© File' } });
    expect((await loadConfig({ cwd: dir, flags: { watermark: { opacity: 0.3 } } })).config.watermark).toMatchObject({ text: '© File', opacity: 0.3 });
  });

  it('refuses --crop when no size fits cover, since it would crop nothing', async () => {
    const dir = await makeTempDir();
    const error = await configError(loadConfig({ cwd: dir, flags: {}, sizeOverrides: { position: 'attention' } }));
    expect(error.message).toBe('--crop attention needs --fit cover: no size fits cover, so the whole image is kept and there is nothing to crop');
    // A file whose sizes fit cover gives the crop something to do.
    const cover = await dirWithConfig({ sizes: { square: { width: 64, height: 64, fit: 'cover' } } });
    expect((await loadConfig({ cwd: cover, flags: {}, sizeOverrides: { position: 'attention' } })).config.sizes['square']).toMatchObject({ fit: 'cover', position: 'attention' });
  });

  it('resolves a watermark image relative to the config file that names it, or to cwd for a flag', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'conf'));
    await writeFile(join(dir, 'conf', 'c.json'), JSON.stringify({ watermark: { image: 'logo.png' } }));
    expect((await loadConfig({ cwd: dir, file: 'conf/c.json', flags: {} })).config.watermark?.image).toBe(join(dir, 'conf', 'logo.png'));
    expect((await loadConfig({ cwd: dir, file: 'conf/c.json', flags: { watermark: { image: 'mark.png' } } })).config.watermark?.image).toBe(join(dir, 'mark.png'));
  });
});
