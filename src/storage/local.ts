import { randomBytes } from 'node:crypto';
import { mkdir, opendir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { StorageError } from '../errors.js';
import type { Sink, SinkEntry, Source, SourceEntry, WriteOptions } from './types.js';

function toKey(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/** Files under `dir`, depth first in name order; symlinked folders are not followed (no loops). */
async function* walk(dir: string, exclude: readonly string[]): AsyncGenerator<{ path: string; size: number; mtimeMs: number }> {
  let handle;
  try {
    handle = await opendir(dir);
  } catch (error) {
    throw new StorageError('LOCAL_UNREADABLE', `cannot read folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const names: { name: string; isDir: boolean; isLink: boolean }[] = [];
  for await (const dirent of handle) names.push({ name: dirent.name, isDir: dirent.isDirectory(), isLink: dirent.isSymbolicLink() });
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { name, isDir, isLink } of names) {
    const path = join(dir, name);
    if (exclude.some((ex) => isInside(ex, path))) continue;
    if (isDir) {
      yield* walk(path, exclude);
      continue;
    }
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && !(isLink && info.isDirectory())) yield { path, size: info.size, mtimeMs: info.mtimeMs };
  }
}

/** A local file, or a folder scanned recursively. Never written to. */
export class LocalSource implements Source {
  readonly uri: string;
  private readonly root: string;
  private readonly singleFile: string | undefined;

  private constructor(path: string, isFile: boolean, private readonly exclude: readonly string[]) {
    this.uri = path;
    this.root = isFile ? dirname(path) : path;
    this.singleFile = isFile ? path : undefined;
  }

  /** Checks that the path exists; `exclude` lists folders (such as the output) never to scan. */
  static async open(path: string, exclude: readonly string[] = []): Promise<LocalSource> {
    const absolute = resolve(path);
    const info = await stat(absolute).catch((error: NodeJS.ErrnoException) => {
      throw new StorageError('LOCAL_NOT_FOUND', `input ${path} does not exist or cannot be read (${error.code ?? error.message})`, { cause: error });
    });
    if (!info.isFile() && !info.isDirectory()) throw new StorageError('LOCAL_NOT_FOUND', `input ${path} is neither a file nor a folder`);
    return new LocalSource(absolute, info.isFile(), exclude.map((e) => resolve(e)));
  }

  async *list(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    if (this.singleFile) {
      const info = await stat(this.singleFile);
      yield { key: basename(this.singleFile), uri: this.singleFile, size: info.size, mtimeMs: info.mtimeMs };
      return;
    }
    for await (const file of walk(this.root, this.exclude)) {
      if (signal?.aborted) return;
      yield { key: toKey(this.root, file.path), uri: file.path, size: file.size, mtimeMs: file.mtimeMs };
    }
  }

  async read(entry: SourceEntry): Promise<Buffer> {
    try {
      return await readFile(entry.uri, { flag: 'r' });
    } catch (error) {
      throw new StorageError('LOCAL_READ_FAILED', `cannot read ${entry.uri}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** A local output folder. Each write goes to a hidden temporary name beside the target, then is renamed. */
export class LocalSink implements Sink {
  readonly uri: string;

  constructor(root: string) {
    this.uri = resolve(root);
  }

  async *list(): AsyncIterable<SinkEntry> {
    const exists = await stat(this.uri).then((s) => s.isDirectory(), () => false);
    if (!exists) return;
    for await (const file of walk(this.uri, [])) yield { key: toKey(this.uri, file.path), mtimeMs: file.mtimeMs, size: file.size };
  }

  async readText(key: string): Promise<string | undefined> {
    return readFile(this.pathOf(key), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new StorageError('LOCAL_READ_FAILED', `cannot read ${this.pathOf(key)}: ${error.message}`, { cause: error });
    });
  }

  async write(key: string, data: Buffer, _options: WriteOptions): Promise<void> {
    const target = this.pathOf(key);
    const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(temp, data, { flag: 'wx' });
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new StorageError('LOCAL_WRITE_FAILED', `cannot write ${target}: ${(error as Error).message}`, { cause: error });
    }
  }

  uriOf(key: string): string {
    return this.pathOf(key);
  }

  private pathOf(key: string): string {
    return join(this.uri, ...key.split('/'));
  }
}
