import { randomBytes } from 'node:crypto';
import { mkdir, opendir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { StorageError } from '../errors.js';
import { compareKeys } from './key-order.js';
import type { Sink, SinkEntry, SinkListOptions, Source, SourceEntry, TextEntry, WriteOptions } from './types.js';

function toKey(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/** Whether `child` is `parent` or lies under it (`..foo` is a name like any other, not a way up). */
function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Files under `dir`, depth first, in the byte order of their keys (S3's order): each folder's entries are
 * sorted by name with '/' after folder names, so `a.jpg` comes before `a/x.jpg` as it does in a listing.
 * Symlinked folders are not followed (no loops). Only one folder's names are held at a time per level.
 */
async function* walk(dir: string, exclude: readonly string[], signal?: AbortSignal): AsyncGenerator<{ path: string; size: number; mtimeMs: number }> {
  let handle;
  try {
    handle = await opendir(dir);
  } catch (error) {
    throw new StorageError('LOCAL_UNREADABLE', `cannot read folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const names: { name: string; sortKey: string; isDir: boolean }[] = [];
  for await (const dirent of handle) {
    const isDir = dirent.isDirectory();
    names.push({ name: dirent.name, sortKey: isDir ? `${dirent.name}/` : dirent.name, isDir });
  }
  names.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  for (const { name, isDir } of names) {
    if (signal?.aborted) return;
    const path = join(dir, name);
    if (exclude.some((ex) => isInside(ex, path))) continue;
    if (isDir) {
      yield* walk(path, exclude, signal);
      continue;
    }
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) yield { path, size: info.size, mtimeMs: info.mtimeMs };
  }
}

/** A local file, or a folder scanned recursively. Never written to. */
export class LocalSource implements Source {
  readonly uri: string;
  /** An empty local file is a broken image, and fails like one. */
  readonly emptyObjectsArePlaceholders = false;
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
    for await (const file of walk(this.root, this.exclude, signal)) {
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

  async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
    const under = options.under ?? '';
    const folder = under === '' ? this.uri : this.pathOf(under.replace(/\/$/, ''));
    const exists = await stat(folder).then((s) => s.isDirectory(), () => false);
    if (!exists) return;
    for await (const file of walk(folder, [], options.signal)) yield { key: toKey(this.uri, file.path), mtimeMs: file.mtimeMs, size: file.size };
  }

  async readText(key: string): Promise<string | undefined> {
    return (await this.readTextEntry(key))?.text;
  }

  async readTextEntry(key: string): Promise<TextEntry | undefined> {
    const path = this.pathOf(key);
    try {
      const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      return { text, mtimeMs: info.mtimeMs };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StorageError('LOCAL_READ_FAILED', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
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

  /**
   * The path of a key, refused unless it lies strictly inside the root. The planner already fails keys with
   * '..', '.' or empty segments; this is the second line of defence, since a key from an S3 listing is
   * whatever someone uploaded.
   */
  private pathOf(key: string): string {
    const path = resolve(this.uri, ...key.split('/'));
    if (path === this.uri || !isInside(this.uri, path)) {
      throw new StorageError('LOCAL_UNSAFE_KEY', `refusing the key "${key}": it would resolve to ${path}, outside the output folder ${this.uri}`);
    }
    return path;
  }
}
