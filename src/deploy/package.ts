import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import yazl from 'yazl';
import { validateConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { DeployError } from '../errors.js';
import { storedMarkFiles } from '../lambda/stored-marks.js';
import { pipelineFingerprint } from '../pipeline/plan.js';
import { preparePipeline } from '../pipeline/process.js';
import { DEFAULT_FONT_FILE } from '../pipeline/watermark.js';
import type { FunctionCode } from './function.js';
import type { Architecture } from './plan.js';

const MiB = 1024 * 1024;
/** Lambda's limits for a zip uploaded directly: 50 MiB zipped, 250 MiB unzipped. */
export const LAMBDA_LIMITS = { zipped: 50 * MiB, unzipped: 250 * MiB };

/** Where sharp's native packages come from: npm for the target, or a copy of this machine's when they fit. */
export type SharpSource = 'auto' | 'npm' | 'host';

export interface PackageOptions {
  /** The resolved pipeline config (a watermark image path is absolute). */
  config: Config;
  arch: Architecture;
  /** 'auto' (default): copy this machine's sharp when it is the same Linux/glibc build, else npm install. */
  sharp?: SharpSource;
  limits?: { zipped: number; unzipped: number };
  /** Progress lines (npm install can take a while). */
  log?: (line: string) => void;
  /** The environment npm runs with, from the CLI edge. */
  env: Record<string, string | undefined>;
}

export interface LambdaPackage extends FunctionCode {
  zippedBytes: number;
  unzippedBytes: number;
  /** Entry names, sorted as they are in the zip. */
  entries: string[];
  sharpVersion: string;
  sharpFrom: 'npm' | 'host';
  /** The bundled config's fingerprint, as the handler computes it. */
  fingerprint: string;
}

export interface ZipInput {
  name: string;
  data: Buffer;
}

const here = dirname(fileURLToPath(import.meta.url));
const resolveHere = createRequire(import.meta.url);
/** DOS timestamps hold local time; a date built from local fields gives the same bytes in every time zone. */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const FILE_MODE = 0o100644;

/**
 * The one fontconfig file (only the bundled font, its cache in /tmp, the only writable place in Lambda),
 * shared with the CLI so the watermark renders the same in both.
 */
const FONTS_CONF = join(here, '..', '..', 'assets', 'fonts.conf');

/** Writes a zip whose bytes depend only on the entries: sorted, fixed times and modes, no extra fields. */
export async function writeZip(files: readonly ZipInput[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i]!.name === sorted[i - 1]!.name) throw new DeployError('PACKAGE_DUPLICATE', `two files would be zipped as ${sorted[i]!.name}`);
  }
  for (const file of sorted) zip.addBuffer(file.data, file.name, { mtime: FIXED_MTIME, mode: FILE_MODE, compress: true, forceDosTimestamp: true });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
  zip.end();
  return done;
}

/** Refuses a package Lambda would reject, naming the limit. */
export function checkPackageSize(zipped: number, unzipped: number, limits = LAMBDA_LIMITS): void {
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  if (zipped > limits.zipped) {
    throw new DeployError('PACKAGE_TOO_LARGE', `the Lambda package is ${mib(zipped)} zipped, over Lambda's limit of ${mib(limits.zipped)} for a direct upload`);
  }
  if (unzipped > limits.unzipped) {
    throw new DeployError('PACKAGE_TOO_LARGE', `the Lambda package is ${mib(unzipped)} unzipped, over Lambda's limit of ${mib(limits.unzipped)}`);
  }
}

/**
 * The config as it travels in the zip: the pipeline settings, the watermark image by its path in the zip,
 * only the S3 settings that make sense inside Lambda (no local region, profile or endpoint), and one
 * image at a time (the handler's; this machine's concurrency means nothing there). Validated with the
 * CLI's schema, it comes out unchanged, so the handler can use it without validating it again.
 */
export function bundledConfig(config: Config, watermarkPath?: string): Config {
  const { s3, watermark } = config;
  const { region: _region, profile: _profile, endpoint: _endpoint, ...s3InLambda } = s3;
  return {
    ...config,
    concurrency: 1,
    watermark: watermark && watermark.image ? { ...watermark, image: watermarkPath } : watermark,
    s3: s3InLambda,
  };
}

/** The handler's source: TypeScript in a checkout, compiled JavaScript in an installed package. */
function handlerEntry(): string {
  for (const name of ['handler.ts', 'handler.js']) {
    const path = join(here, '..', 'lambda', name);
    if (existsSync(path)) return path;
  }
  throw new DeployError('PACKAGE_NO_HANDLER', `cannot find the Lambda handler next to ${here}`);
}

/** Where the handler's lazily imported chunks go in the zip, next to index.mjs. */
export const CHUNK_DIR = 'chunks';

/** The AWS SDK's generated schema modules: one per client (and per nested client), every operation's shapes. */
const SDK_SCHEMAS = /[\\/]@aws-sdk[\\/][^\\/]+[\\/]dist-es[\\/](?:submodules[\\/][^\\/]+[\\/])?schemas[\\/]schemas_\d+\.js$/;

/**
 * Writes the SDK schemas' computed keys (`{ [_hC]: "-" }`, `_hC` a string constant of the same module) as the
 * literal keys they are. esbuild treats a computed key as a possible side effect (it could call toString), so it
 * kept every operation's schema (~66 KB of client-s3's ~100 operations) in the bundle that a cold start compiles;
 * with literal keys it keeps only what the handler's commands reach. Same objects: '__proto__' is left computed.
 */
export function literalSchemaKeys(source: string): string {
  const strings = new Map<string, string>();
  for (const match of source.matchAll(/^const (_\w+) = ("[^"\\]*");$/gm)) strings.set(match[1]!, match[2]!);
  return source.replace(/\[(_\w+)\]:/g, (computed, name: string) => {
    const literal = strings.get(name);
    return literal && literal !== '"__proto__"' ? `${literal}:` : computed;
  });
}

const literalSchemaKeysPlugin: Plugin = {
  name: 'literal-schema-keys',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: SDK_SCHEMAS }, async (args) => ({ contents: literalSchemaKeys(await readFile(args.path, 'utf8')), loader: 'js' }));
  },
};

/**
 * The SDK's default credential chain, replaced by src/lambda/env-credentials (credentials from the
 * environment, where the Lambda runtime puts them): the chain's other links are never used inside Lambda,
 * and their dynamic imports alone split what a cold start loads into 19 modules instead of 9.
 */
function lambdaCredentialsPlugin(entry: string): Plugin {
  const replacement = join(dirname(entry), `env-credentials${extname(entry)}`);
  return {
    name: 'lambda-credentials',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, () => ({ path: replacement }));
    },
  };
}

/**
 * index.mjs plus its chunks. ESM with `splitting`: what the handler imports with import() (the SNS client
 * without a topic, the HEIC decoder, the config validator) lands in chunks/ and is neither compiled nor
 * evaluated at cold init.
 */
async function bundleHandler(): Promise<ZipInput[]> {
  try {
    const entry = handlerEntry();
    const result = await build({
      entryPoints: { index: entry },
      bundle: true,
      platform: 'node',
      format: 'esm',
      splitting: true,
      target: 'node24',
      // Native code, installed for the target below.
      external: ['sharp'],
      mainFields: ['module', 'main'],
      write: false,
      outdir: 'lambda',
      outExtension: { '.js': '.mjs' },
      chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
      minify: true,
      // Error classes report their names.
      keepNames: true,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      plugins: [literalSchemaKeysPlugin, lambdaCredentialsPlugin(entry)],
      // Some CommonJS dependencies call require() for Node built-ins, which ESM lacks.
      banner: { js: "import{createRequire as __imgPipelineRequire}from'node:module';const require=__imgPipelineRequire(import.meta.url);" },
    });
    const outdir = join(process.cwd(), 'lambda');
    const files = result.outputFiles.map((file) => ({ name: relative(outdir, file.path).split(sep).join('/'), data: Buffer.from(file.contents) }));
    if (!files.some((file) => file.name === 'index.mjs')) throw new Error('esbuild produced no index.mjs');
    return files;
  } catch (error) {
    throw new DeployError('PACKAGE_BUNDLE_FAILED', `bundling the Lambda handler failed: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** The folder of package `name` as Node would find it from `from`. */
function findPackageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The sharp this tool runs with (its package.json is not exported, so walk up from its entry). */
async function hostSharp(): Promise<{ dir: string; pkg: PackageJson }> {
  for (let dir = dirname(resolveHere.resolve('sharp')); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      const pkg = await readPackageJson(dir);
      if (pkg.name === 'sharp') return { dir: await realpath(dir), pkg };
    }
  }
  throw new DeployError('PACKAGE_NO_SHARP', 'cannot find the installed sharp package');
}

const npmCpu = (arch: Architecture) => (arch === 'arm64' ? 'arm64' : 'x64');

function fitsTarget(pkg: PackageJson, cpu: string): boolean {
  const allows = (list: string[] | undefined, value: string) => !list || list.includes(value);
  return allows(pkg.os, 'linux') && allows(pkg.cpu, cpu) && allows(pkg.libc, 'glibc');
}

/**
 * sharp and its dependencies from this machine's node_modules, when the native packages for the target
 * (linux, glibc, the CPU) at the right versions are installed here; otherwise undefined.
 */
async function hostPackages(sharp: { dir: string; pkg: PackageJson }, arch: Architecture): Promise<Map<string, string> | undefined> {
  const cpu = npmCpu(arch);
  const packages = new Map<string, string>([['sharp', sharp.dir]]);
  const queue: [string, PackageJson][] = [[sharp.dir, sharp.pkg]];
  let natives = 0;
  while (queue.length > 0) {
    const [dir, pkg] = queue.shift()!;
    const wanted = [
      ...Object.keys(pkg.dependencies ?? {}).map((name) => ({ name, optional: false })),
      ...Object.entries(pkg.optionalDependencies ?? {}).map(([name]) => ({ name, optional: true })),
    ];
    for (const { name, optional } of wanted) {
      if (packages.has(name)) continue;
      const found = findPackageDir(name, dir);
      if (!found) {
        if (optional) continue;
        return undefined;
      }
      const depPkg = await readPackageJson(found);
      if (optional && !fitsTarget(depPkg, cpu)) continue;
      if (optional && depPkg.version !== pkg.optionalDependencies?.[name]) return undefined;
      if (optional) natives += 1;
      packages.set(name, await realpath(found));
      queue.push([found, depPkg]);
    }
  }
  // sharp needs both its binding and libvips for the target.
  const needed = [`@img/sharp-linux-${cpu}`, `@img/sharp-libvips-linux-${cpu}`];
  return natives >= 2 && needed.every((n) => packages.has(n)) ? packages : undefined;
}

/** sharp's own dependencies at the versions installed here (sharp pins its native packages itself). */
async function hostDependencyVersions(sharp: { dir: string; pkg: PackageJson }): Promise<Record<string, string>> {
  const pinned: Record<string, string> = {};
  for (const name of Object.keys(sharp.pkg.dependencies ?? {})) {
    const dir = findPackageDir(name, sharp.dir);
    const version = dir ? (await readPackageJson(dir)).version : undefined;
    if (version) pinned[name] = version;
  }
  return pinned;
}

/**
 * The staging folder's package.json: sharp at this machine's version, and its dependencies pinned by
 * `overrides` to this machine's versions, so the zip runs what the CLI runs rather than whatever their
 * ranges resolve to on the day of the deploy.
 */
export function sharpInstallManifest(version: string, pinned: Record<string, string>): Record<string, unknown> {
  return { name: 'img-pipeline-lambda-deps', private: true, dependencies: { sharp: version }, ...(Object.keys(pinned).length > 0 ? { overrides: pinned } : {}) };
}

/** Runs `npm install --os=linux --cpu=<target> --libc=glibc` of sharp at the host's versions into a staging folder. */
async function npmInstallSharp(staging: string, sharp: { dir: string; pkg: PackageJson }, arch: Architecture, options: Pick<PackageOptions, 'env'>, log: (line: string) => void): Promise<string> {
  const version = sharp.pkg.version ?? '';
  const dir = join(staging, 'deps');
  await mkdir(dir, { recursive: true });
  const pinned = await hostDependencyVersions(sharp);
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(sharpInstallManifest(version, pinned), null, 2)}\n`);
  const args = ['install', '--os=linux', `--cpu=${npmCpu(arch)}`, '--libc=glibc',
    '--omit=dev', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--loglevel=error'];
  log(`npm ${args.join(' ')}  (sharp@${version}; ${Object.entries(pinned).map(([n, v]) => `${n}@${v}`).join(' ') || 'no dependencies'} pinned)`);
  // An `npm run` parent exports its own prefix; the install must stay in the staging folder.
  const env = Object.fromEntries(Object.entries(options.env).filter(([k]) => !/^npm_config_(local_)?prefix$|^npm_config_global$/i.test(k)));
  try {
    await promisify(execFile)(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: dir, env, maxBuffer: 16 * MiB, shell: process.platform === 'win32' });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim().split('\n').slice(-3).join(' ');
    throw new DeployError('PACKAGE_NPM_FAILED', `npm install of sharp@${version} for linux-${npmCpu(arch)} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
  const modules = join(dir, 'node_modules');
  if (!existsSync(join(modules, '@img', `sharp-linux-${npmCpu(arch)}`))) {
    throw new DeployError('PACKAGE_NPM_FAILED', `npm install did not install @img/sharp-linux-${npmCpu(arch)}`);
  }
  return modules;
}

/** Documentation, type declarations, sources and build leftovers: not needed at run time. */
function isNeeded(path: string): boolean {
  const parts = path.split('/');
  const name = parts[parts.length - 1]!;
  if (parts.includes('.bin') || name === '.package-lock.json' || name === 'package-lock.json') return false;
  if (/\.(d\.ts|d\.mts|d\.cts|map|md|markdown)$/i.test(name)) return false;
  if (parts[0] === 'sharp' && (parts[1] === 'src' || parts[1] === 'install')) return false;
  if (path.includes('/glib-2.0/include/')) return false;
  return true;
}

/** Every file under `root` (no nested node_modules unless asked), symlinks to files read through. */
export async function collectFiles(root: string, zipPrefix: string, options: { nested: boolean }): Promise<ZipInput[]> {
  const files: ZipInput[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, dirent.name);
      const rel = relative(root, path).split(sep).join('/');
      if (!options.nested && dirent.name === 'node_modules') continue;
      if (!isNeeded(`${zipPrefix}${rel}`.replace(/^node_modules\//, ''))) continue;
      const info = await lstat(path);
      if (info.isSymbolicLink()) {
        // Lambda rejects symlinks in a zip: a link to a file is stored as the file; a folder link is refused.
        const target = await stat(path).catch(() => undefined);
        if (!target?.isFile()) throw new DeployError('PACKAGE_SYMLINK', `${path} is a symbolic link to a folder or to nothing; Lambda rejects symlinks in a zip`);
        files.push({ name: `${zipPrefix}${rel}`, data: await readFile(path) });
      } else if (info.isDirectory()) {
        await walk(path);
      } else if (info.isFile()) {
        files.push({ name: `${zipPrefix}${rel}`, data: await readFile(path) });
      }
    }
  };
  await walk(root);
  return files;
}

async function sharpFiles(staging: string, options: PackageOptions, sharp: { dir: string; pkg: PackageJson }, log: (line: string) => void): Promise<{ files: ZipInput[]; from: 'npm' | 'host' }> {
  const version = sharp.pkg.version ?? '';
  const mode = options.sharp ?? 'auto';
  if (mode !== 'npm') {
    const packages = await hostPackages(sharp, options.arch);
    if (packages) {
      log(`sharp ${version} for linux-${npmCpu(options.arch)}: copied from this machine's node_modules`);
      const files: ZipInput[] = [];
      for (const [name, dir] of packages) files.push(...(await collectFiles(dir, `node_modules/${name}/`, { nested: false })));
      return { files, from: 'host' };
    }
    if (mode === 'host') {
      throw new DeployError('PACKAGE_NO_SHARP', `sharp ${version} for linux-${npmCpu(options.arch)} (glibc) is not installed on this machine; build with npm instead`);
    }
  }
  const modules = await npmInstallSharp(staging, sharp, options.arch, options, log);
  return { files: await collectFiles(modules, 'node_modules/', { nested: true }), from: 'npm' };
}

/**
 * The HEIC decoder (libheif-js): pipeline/heic.ts resolves it at run time, on the first HEIC, so it is
 * shipped as files beside the bundle rather than inlined into index.mjs, which every cold start parses.
 * Only the WASM build is taken (1.4 MiB, ~0.5 MiB zipped); the asm.js and base64-inlined variants are not.
 */
export async function heicDecoderFiles(): Promise<ZipInput[]> {
  const dir = dirname(resolveHere.resolve('libheif-js/libheif-wasm/libheif.wasm'));
  const root = dirname(dir);
  const names = ['package.json', 'LICENSE', 'libheif-wasm/libheif.js', 'libheif-wasm/libheif.wasm', 'libheif-wasm/LICENSE'];
  return Promise.all(names.map(async (name) => ({ name: `node_modules/libheif-js/${name}`, data: await readFile(join(root, name)) })));
}

async function readWatermarkImage(config: Config): Promise<Buffer | undefined> {
  const path = config.watermark?.image;
  if (!path) return undefined;
  return readFile(path).catch((error: Error) => {
    throw new DeployError('PACKAGE_WATERMARK', `cannot read the watermark image ${path}: ${error.message}`, { cause: error });
  });
}

/** The fingerprint the package's config will have, without building it (for a dry run without credentials). */
export async function packageFingerprint(config: Config): Promise<string> {
  return pipelineFingerprint(config, await readWatermarkImage(config));
}

/**
 * Builds the Lambda zip: index.mjs and chunks/ (esbuild, ESM, sharp external), config.json, the font in fonts/, the
 * watermark image if any or the text mark pre-rendered in watermark/text/, sharp with its native packages for the target and the HEIC decoder in node_modules/.
 * Deterministic: an unchanged build gives the same bytes, so CodeSha256 tells whether to upload.
 */
export async function buildLambdaPackage(options: PackageOptions): Promise<LambdaPackage> {
  const log = options.log ?? (() => undefined);
  const staging = await mkdtemp(join(tmpdir(), 'img-pipeline-lambda-'));
  try {
    const sharp = await hostSharp();
    const version = sharp.pkg.version ?? '';
    const files: ZipInput[] = await bundleHandler();

    const markImage = await readWatermarkImage(options.config);
    let watermarkPath: string | undefined;
    if (markImage && options.config.watermark?.image) {
      watermarkPath = `watermark/${basename(options.config.watermark.image).replace(/[^A-Za-z0-9._-]/g, '_')}`;
      files.push({ name: watermarkPath, data: markImage });
    }
    // Validated here, and stored as the schema gave it back: the handler trusts it (see loadBundledConfig).
    const config = validateConfig(bundledConfig(options.config, watermarkPath), 'the config to bundle');
    files.push({ name: 'config.json', data: Buffer.from(`${JSON.stringify(config, null, 2)}\n`) });
    // A text mark is rendered here, with the font the zip ships, by the sharp the CLI uses: a cold start
    // that loads it skips pango and fontconfig (~55 ms), and draws the mark this machine's CLI draws.
    if (options.config.watermark?.text !== undefined) {
      const marks = await (await preparePipeline(options.config, { fontfile: DEFAULT_FONT_FILE })).watermark?.renderTextMarks();
      if (marks) files.push(...storedMarkFiles(marks));
    }

    files.push({ name: 'fonts/DejaVuSans-Bold.ttf', data: await readFile(DEFAULT_FONT_FILE) });
    files.push({ name: 'fonts/fonts.conf', data: await readFile(FONTS_CONF) });
    const fontLicense = join(dirname(DEFAULT_FONT_FILE), '..', 'LICENSE');
    if (existsSync(fontLicense)) files.push({ name: 'fonts/LICENSE', data: await readFile(fontLicense) });

    const native = await sharpFiles(staging, options, sharp, log);
    files.push(...native.files, ...(await heicDecoderFiles()));

    const zip = await writeZip(files);
    const unzippedBytes = files.reduce((sum, f) => sum + f.data.length, 0);
    checkPackageSize(zip.length, unzippedBytes, options.limits);
    return {
      zip,
      // Lambda reports CodeSha256 in base64, not hex.
      sha256: createHash('sha256').update(zip).digest('base64'),
      zippedBytes: zip.length,
      unzippedBytes,
      entries: files.map((f) => f.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      sharpVersion: version,
      sharpFrom: native.from,
      fingerprint: pipelineFingerprint(options.config, markImage),
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
