import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractExamples, type DocExample } from '../helpers/doc-examples.js';
import { BIN, fixture, REPO_ROOT } from '../helpers/paths.js';
import { createBucket, listKeys, putObject, s3Env, startS3Server, testClient, TEST_REGION, type S3Server } from '../helpers/s3-server.js';
import { listFiles, makeTempDir, removeTempDirs } from '../helpers/temp.js';

// Runs every shell example of README.md and docs/*.md marked offline or s3 (conventions: "Runnable
// examples" in docs/development.md) as a bash script in a fresh folder, and checks its exit code.

const BUCKETS = { uploads: 'my-uploads', processed: 'my-processed' } as const;
/** Nothing listens on the discard port: an "offline" example that reaches for AWS fails at once, locally. */
const NO_AWS = 'http://127.0.0.1:9';

async function allExamples(): Promise<DocExample[]> {
  const docs = (await readdir(join(REPO_ROOT, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => join('docs', name));
  const files = ['README.md', ...docs.sort()];
  return (await Promise.all(files.map(async (file) => extractExamples(await readFile(join(REPO_ROOT, file), 'utf8'), file)))).flat();
}

const examples = await allExamples();
const runnable = examples.filter((e) => e.kind === 'offline' || e.kind === 's3');

/**
 * The folder an example starts in: `photos/` (the sample images) and `photo.jpg`, and a package.json
 * with img-pipeline linked into node_modules, so both `img-pipeline` and `npx img-pipeline` run this
 * checkout's build without the network.
 */
async function workspace(): Promise<string> {
  const dir = await makeTempDir('img-pipeline-example-');
  await cp(fixture('images'), join(dir, 'photos'), { recursive: true });
  await copyFile(fixture('images/landscape.jpg'), join(dir, 'photo.jpg'));
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'docs-example', private: true })}\n`);
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
  await symlink(REPO_ROOT, join(dir, 'node_modules', 'img-pipeline'));
  await symlink(BIN, join(dir, 'node_modules', '.bin', 'img-pipeline'));
  return dir;
}

function runScript(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', `set -eo pipefail\n${script}`], { cwd, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** Empty buckets, with the sample images under `s3://my-uploads/uploads/`, as the S3 examples assume. */
async function resetBuckets(client: S3Client): Promise<void> {
  for (const bucket of Object.values(BUCKETS)) {
    for (const { key } of await listKeys(client, bucket)) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
  for (const file of await listFiles(fixture('images'))) {
    await putObject(client, BUCKETS.uploads, `uploads/${file}`, await readFile(join(fixture('images'), file)));
  }
}

describe('the shell examples of README.md and docs/', () => {
  let server: S3Server | undefined;
  let client: S3Client | undefined;

  beforeAll(async () => {
    if (!runnable.some((e) => e.kind === 's3')) return;
    server = await startS3Server();
    client = testClient(server.endpoint);
    for (const bucket of Object.values(BUCKETS)) await createBucket(client, bucket);
  });

  afterAll(async () => {
    client?.destroy();
    await server?.stop();
    await removeTempDirs();
  });

  it('are each marked, and the docs have some of every runnable kind', () => {
    // extractExamples has already thrown for an unmarked shell block; this keeps the runner honest.
    expect(runnable.filter((e) => e.kind === 'offline').length).toBeGreaterThan(0);
    expect(runnable.filter((e) => e.kind === 's3').length).toBeGreaterThan(0);
    expect(examples.some((e) => e.kind === 'aws')).toBe(true);
  });

  for (const example of runnable) {
    it(`${example.where} (${example.kind}) exits with ${example.exitCode}`, async () => {
      const cwd = await workspace();
      const base = { PATH: `${join(cwd, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}`, npm_config_offline: 'true', npm_config_yes: 'false', npm_config_update_notifier: 'false' };
      let env: NodeJS.ProcessEnv;
      if (example.kind === 's3') {
        await resetBuckets(client!);
        env = s3Env({ ...base, AWS_ENDPOINT_URL_S3: server!.endpoint, AWS_REGION: TEST_REGION });
      } else {
        env = s3Env({ ...base, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_ENDPOINT_URL: NO_AWS });
      }
      const { code, output } = await runScript(example.script, cwd, env);
      expect(code, `${example.where} in ${relative(REPO_ROOT, cwd) || cwd}:\n${example.script}\n--- output ---\n${output}`).toBe(example.exitCode);
    });
  }
});

describe('extractExamples', () => {
  it('reads the kind and the expected exit code from the marker above a shell fence', () => {
    const markdown = 'text\n\n<!-- example: offline -->\n```sh\nimg-pipeline a\n```\n\n<!-- example: s3, exit 2 -->\n```sh\nimg-pipeline b\nimg-pipeline c\n```\n\n```json\n{}\n```\n';
    expect(extractExamples(markdown, 'x.md')).toEqual([
      { where: 'x.md:4', kind: 'offline', exitCode: 0, script: 'img-pipeline a' },
      { where: 'x.md:9', kind: 's3', exitCode: 2, script: 'img-pipeline b\nimg-pipeline c' },
    ]);
  });

  it('refuses a shell block without a marker, or with a marker it does not know, naming the line', () => {
    expect(() => extractExamples('intro\n```sh\nls\n```\n', 'x.md')).toThrow(/x\.md:2: a shell example without a marker/);
    expect(() => extractExamples('<!-- example: ofline -->\n```sh\nls\n```\n', 'x.md')).toThrow(/x\.md:2: unknown example marker "ofline"/);
  });
});
