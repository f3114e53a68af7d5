import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { bundledConfig, checkPackageSize, collectFiles, LAMBDA_LIMITS, literalSchemaKeys, sharpInstallManifest, writeZip } from '../../../src/deploy/package.js';
import { unzipTo } from '../../helpers/lambda.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

describe('the zip writer', () => {
  const files = [
    { name: 'index.mjs', data: Buffer.from('export const handler = () => 1;\n') },
    { name: 'b/z.txt', data: Buffer.from('z') },
    { name: 'b/a.txt', data: Buffer.from('a'.repeat(1000)) },
  ];

  it('writes the same bytes for the same files, in any order, at any time', async () => {
    const first = await writeZip(files);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await writeZip([...files].reverse());
    expect(second.equals(first)).toBe(true);
  });

  it('sorts entries and fixes their times and modes', async () => {
    const entries = await unzipTo(await writeZip(files), await makeTempDir());
    expect(entries.map((e) => e.name)).toEqual(['b/a.txt', 'b/z.txt', 'index.mjs']);
    for (const entry of entries) {
      expect(entry.mode).toBe(0o100644);
      expect([entry.mtime.getFullYear(), entry.mtime.getMonth(), entry.mtime.getDate()]).toEqual([1980, 0, 1]);
    }
  });

  it('refuses two files with one name', async () => {
    await expect(writeZip([files[0]!, files[0]!])).rejects.toThrow(/two files would be zipped as index.mjs/);
  });
});

describe('collecting node_modules', () => {
  it('stores a link to a file as the file, and refuses a link to a folder (Lambda rejects symlinks)', async () => {
    const root = await makeTempDir();
    await mkdir(join(root, 'pkg', 'lib'), { recursive: true });
    await writeFile(join(root, 'pkg', 'lib', 'real.js'), 'real');
    await writeFile(join(root, 'pkg', 'README.md'), 'docs');
    await writeFile(join(root, 'pkg', 'index.d.ts'), 'types');
    await symlink(join(root, 'pkg', 'lib', 'real.js'), join(root, 'pkg', 'alias.js'));
    await mkdir(join(root, 'pkg', '.bin'));
    await symlink('../lib/real.js', join(root, 'pkg', '.bin', 'tool'));
    const files = await collectFiles(join(root, 'pkg'), 'node_modules/pkg/', { nested: false });
    expect(files.map((f) => f.name).sort()).toEqual(['node_modules/pkg/alias.js', 'node_modules/pkg/lib/real.js']);
    expect(files.find((f) => f.name.endsWith('alias.js'))!.data.toString()).toBe('real');

    await symlink(join(root, 'pkg', 'lib'), join(root, 'pkg', 'linked-dir'));
    await expect(collectFiles(join(root, 'pkg'), 'node_modules/pkg/', { nested: false })).rejects.toMatchObject({ code: 'PACKAGE_SYMLINK' });
  });
});

describe('limits and the bundled config', () => {
  it('refuses a package over 50 MiB zipped or 250 MiB unzipped, naming the limit', () => {
    expect(() => checkPackageSize(LAMBDA_LIMITS.zipped, LAMBDA_LIMITS.unzipped)).not.toThrow();
    expect(() => checkPackageSize(LAMBDA_LIMITS.zipped + 1, 1)).toThrow(/zipped, over Lambda's limit of 50\.0 MiB/);
    expect(() => checkPackageSize(1, LAMBDA_LIMITS.unzipped + 1)).toThrow(/unzipped, over Lambda's limit of 250\.0 MiB/);
  });

  it('bundles the pipeline settings, the watermark image by its zip path, and no machine-local S3 settings', () => {
    const config = validateConfig({ quality: 70, watermark: { image: '/home/me/logo.png' }, s3: { region: 'eu-west-1', profile: 'me', endpoint: 'http://127.0.0.1:9000' }, concurrency: 3 }, 'test');
    const bundled = bundledConfig(config, 'watermark/logo.png');
    // The handler processes one image at a time, whatever this machine's concurrency.
    expect(bundled.concurrency).toBe(1);
    expect(bundled.s3).not.toHaveProperty('region');
    expect(bundled.s3).not.toHaveProperty('profile');
    expect(bundled.s3).not.toHaveProperty('endpoint');
    expect(bundled.watermark).toMatchObject({ image: 'watermark/logo.png' });
    expect(bundled.quality).toBe(70);
  });

  it('is what the schema gives back for it, so the handler can use it without validating it again', () => {
    for (const input of [{}, { quality: 70, formats: ['jpg', 'webp'], watermark: { text: '© Acme' }, sidecar: true }, { watermark: { image: '/home/me/logo.png' }, s3: { region: 'eu-west-1' }, concurrency: 3 }]) {
      const bundled = JSON.parse(JSON.stringify(bundledConfig(validateConfig(input, 'test'), 'watermark/logo.png'))) as unknown;
      expect(validateConfig(bundled, 'bundled')).toEqual(bundled);
    }
  });
});

describe('installing sharp for the target with npm', () => {
  it('asks for this machine\'s sharp and pins its dependencies to this machine\'s versions', () => {
    expect(sharpInstallManifest('0.35.5', { 'detect-libc': '2.1.2', semver: '7.8.6' })).toEqual({
      name: 'img-pipeline-lambda-deps', private: true,
      dependencies: { sharp: '0.35.5' },
      overrides: { 'detect-libc': '2.1.2', semver: '7.8.6' },
    });
    expect(sharpInstallManifest('0.35.5', {})).not.toHaveProperty('overrides');
  });
});

describe('the SDK schemas\' computed keys', () => {
  it('become the literal keys of the module\'s string constants, giving the same objects', () => {
    const source = 'const _h = "http";\nconst _hC = "httpChecksum";\nconst _p = "__proto__";\nexport var Get$ = [9, n0, _G, { [_hC]: "-", [_h]: ["GET", "/{Key+}", 200] }, { [_p]: 1 }, { [other]: 2 }];\n';
    const literal = literalSchemaKeys(source);
    expect(literal).toContain('{ "httpChecksum": "-", "http": ["GET", "/{Key+}", 200] }');
    // '__proto__' as a literal key would set the prototype, and an unknown name is not a constant of this module.
    expect(literal).toContain('{ [_p]: 1 }, { [other]: 2 }');
    const evaluate = (text: string) => new Function(`const n0 = "s3", _G = "GetObject", other = "o";\n${text.replaceAll('export var', 'var')}\nreturn Get$;`)() as unknown;
    expect(evaluate(literal)).toEqual(evaluate(source));
  });
});
