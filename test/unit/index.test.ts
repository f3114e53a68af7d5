import { execFile } from 'node:child_process';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import * as lib from '../../src/index.js';
import { fixture, REPO_ROOT } from '../helpers/paths.js';
import { listOutputFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

afterAll(removeTempDirs);

const run = promisify(execFile);

/** The public API a user of the package relies on, by name. */
const PUBLIC_API = [
  'loadConfig', 'validateConfig', 'mergeConfig', 'configSchema', 'FORMATS',
  'preparePipeline', 'processImage', 'runPipeline', 'createPlanner', 'planJobs',
  'processSource', 'buildSidecar', 'sidecarKey', 'destinationKeys',
  'outputKey', 'isImageKey', 'extensionOf', 'outputStem', 'outputMetadata', 'IMAGE_EXTENSIONS', 'FORMAT_EXTENSIONS',
  'LocalSource', 'LocalSink', 'S3Source', 'S3Sink', 'parseS3Uri', 'openSources', 'openSink',
  'ImgPipelineError', 'ConfigError', 'InputError', 'PipelineError', 'StorageError', 'DeployError',
];

describe('the package entry', () => {
  it('resolves `import("img-pipeline")` through package.json to the built dist/index.js, with the public API and its types', async () => {
    // A self-reference by package name goes through "exports", exactly as for a dependent package.
    const script = `const m = await import('img-pipeline'); console.log(JSON.stringify({ keys: Object.keys(m), key: m.outputKey('2024/cat.PNG', 'thumb', 'jpeg') }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT });
    const { keys, key } = JSON.parse(stdout) as { keys: string[]; key: string };
    expect(keys).toEqual(expect.arrayContaining(PUBLIC_API));
    expect(key).toBe('thumb/2024/cat.jpg');
    // package.json "types" names the declarations tsc emits for src/index.ts.
    expect((await stat(join(REPO_ROOT, 'dist', 'index.d.ts'))).isFile()).toBe(true);
  });

  it('exports the same names from src/index.ts, as values of the right kind', () => {
    expect(Object.keys(lib)).toEqual(expect.arrayContaining(PUBLIC_API));
    expect(new lib.InputError('X', 'y')).toBeInstanceOf(lib.ImgPipelineError);
    expect(lib.parseS3Uri('s3://bucket/in/a.jpg')).toEqual({ bucket: 'bucket', prefix: 'in/a.jpg' });
  });

  it('processes a folder end to end through the public API alone', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'in', '2024'), { recursive: true });
    await copyFile(fixture('images/2024/cat.PNG'), join(dir, 'in', '2024', 'cat.PNG'));
    const { config } = await lib.loadConfig({ cwd: dir, flags: { sizes: { tiny: { width: 32, height: 32 } }, formats: ['webp'], concurrency: 1 } });
    const report = await lib.runPipeline({
      sources: [await lib.LocalSource.open(join(dir, 'in'))],
      sink: new lib.LocalSink(join(dir, 'out')),
      pipeline: await lib.preparePipeline(config),
      concurrency: 1,
    });
    expect(report).toMatchObject({ processed: 1, failed: 0 });
    expect(await listOutputFiles(join(dir, 'out'))).toEqual([lib.STATE_KEY, lib.outputKey('2024/cat.PNG', 'tiny', 'webp')]);
    const meta = await sharp(join(dir, 'out', 'tiny', '2024', 'cat.webp')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 32, 24]);
  });
});
