import { randomBytes } from 'node:crypto';
import type { Dir, Stats } from 'node:fs';
import { access, constants, mkdir, opendir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { StorageError } from '../errors.js';
import { isImageKey, OUTPUT_FOLDER_MARKER, OUTPUT_MARKER, STATE_KEY } from '../pipeline/layout.js';
import { recordedVariants } from '../runner/state-file.js';
import { compareKeys } from './key-order.js';
import type { Sink, SinkEntry, SinkListOptions, Source, SourceEntry, Stored, TextEntry, WriteOptions } from './types.js';

function toKey(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/** Whether `child` is `parent` or lies under it (`..foo` is a name like any other, not a way up). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Longest file name most file systems allow (ext4, XFS, APFS, NTFS: 255 bytes or UTF-16 units). */
const NAME_MAX = 255;

/**
 * The hidden name an output is written under before its rename: `.<name>.<random>.tmp`, the name cut (at a
 * character, never inside one) so the whole fits NAME_MAX, or an output whose own name fits would fail.
 */
function tempName(name: string): string {
  const suffix = `.${randomBytes(6).toString('hex')}.tmp`;
  const kept = [...name];
  while (Buffer.byteLength(`.${kept.join('')}${suffix}`) > NAME_MAX) kept.pop();
  return `.${kept.join('')}${suffix}`;
}

/**
 * The file-system call a scan makes to open a folder. Replaceable so a test can make one folder unreadable:
 * tests may run as root, which reads a folder whatever its mode.
 */
export interface LocalFs {
  opendir(path: string): Promise<Dir>;
}

const NODE_FS: LocalFs = { opendir: (path) => opendir(path) };

interface WalkOptions {
  exclude: readonly string[];
  fs: LocalFs;
  /**
   * Sources only: called for a folder that holds img-pipeline outputs, which is then left out: one holding
   * OUTPUT_FOLDER_MARKER (the root included), one below the root holding the state file (another run's
   * `--out`), or a variant folder the state file in the folder above it records.
   */
  onOutputFolder?: (folder: string) => void;
  /** Called for a symlink that leads nowhere (its target is missing, or it loops): nothing to process. */
  onBrokenLink?: (link: BrokenLink) => void;
  signal?: AbortSignal;
}

/** A symlink a scan found that leads to no file. */
export interface BrokenLink {
  path: string;
  /** It points back at itself (through other links); otherwise its target does not exist. */
  loops: boolean;
}

/** Why a name that Node read as U+FFFD (bytes that are not UTF-8) names no file or folder. */
const NOT_UTF8 = 'is not valid UTF-8 (written in another encoding, such as Latin-1), so it cannot be opened by the name it shows; rename it, e.g. with convmv -f latin1 -t utf-8';

/** A file found by a walk, or a folder (or an image) it could not read. */
type Walked = { path: string; info: Stats; error?: undefined } | { path: string; error: StorageError; isFile?: true };

/**
 * Files under `dir`, depth first, in the byte order of their keys (S3's order): each folder's entries are
 * sorted by name with '/' after folder names, so `a.jpg` comes before `a/x.jpg` as it does in a listing.
 * Symlinked folders are not followed (no loops). Only one folder's names are held at a time per level.
 * A folder that cannot be read is yielded as an error in its place, and the walk goes on with the rest.
 */
async function* walk(dir: string, options: WalkOptions, isRoot = true): AsyncGenerator<Walked> {
  const names: { name: string; sortKey: string; isDir: boolean; isLink: boolean }[] = [];
  let holdsState = false;
  let marked = false;
  try {
    const handle = await options.fs.opendir(dir);
    for await (const dirent of handle) {
      const isDir = dirent.isDirectory();
      if (!isDir && dirent.name === STATE_KEY) holdsState = true;
      if (!isDir && dirent.name === OUTPUT_FOLDER_MARKER) marked = true;
      names.push({ name: dirent.name, sortKey: isDir ? `${dirent.name}/` : dirent.name, isDir, isLink: dirent.isSymbolicLink() });
    }
  } catch (error) {
    const notUtf8 = (error as NodeJS.ErrnoException).code === 'ENOENT' && basename(dir).includes('\uFFFD');
    const reason = notUtf8 ? `its name ${NOT_UTF8}` : (error as Error).message;
    yield { path: dir, error: new StorageError(notUtf8 ? 'LOCAL_NAME_NOT_UTF8' : 'LOCAL_UNREADABLE', `cannot read the folder ${dir}, so nothing under it was processed: ${reason}`, { cause: error }) };
    return;
  }
  const { onOutputFolder } = options;
  // Outputs of some run (a variant folder, or another run's `--out`): thumbnails, not inputs.
  if (onOutputFolder && (marked || (!isRoot && holdsState))) {
    onOutputFolder(dir);
    return;
  }
  // The input is some run's `--out` (`photos --out photos`): every variant folder it ever had is outputs.
  const recorded = onOutputFolder && holdsState ? new Set(recordedVariants(await readFile(join(dir, STATE_KEY), 'utf8').catch(() => undefined))) : undefined;
  names.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  for (const { name, isDir, isLink } of names) {
    if (options.signal?.aborted) return;
    const path = join(dir, name);
    if (options.exclude.some((ex) => isInside(ex, path))) continue;
    if (isDir && recorded?.has(name)) {
      onOutputFolder!(path);
      continue;
    }
    if (isDir) {
      yield* walk(path, options, false);
      continue;
    }
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => error);
    if (info instanceof Error) {
      // A name in another encoding (Latin-1 from an old archive) reads as U+FFFD, which names no file:
      // an image the run must not silently leave out. Checked first, as a symlink so named is not dangling.
      if (info.code === 'ENOENT' && name.includes('\uFFFD') && isImageKey(name)) {
        yield { path, isFile: true, error: new StorageError('LOCAL_NAME_NOT_UTF8', `its name ${NOT_UTF8}`, { cause: info }) };
      // A file deleted since the folder was read is simply gone; a broken symlink is still there, so say so.
      } else if (isLink && (info.code === 'ENOENT' || info.code === 'ELOOP')) options.onBrokenLink?.({ path, loops: info.code === 'ELOOP' });
      continue;
    }
    if (info.isFile()) yield { path, info };
  }
}

/**
 * The latest moment a file's content may have changed. Its mtime alone is not that: `cp -p`, `rsync -a` and
 * unzip put another photo in place with the old photo's time, or an older one. Its change time (ctime) is
 * set by the kernel to now on any such write, and on `utimes` itself, and no program can set it back; it
 * also moves on chmod, chown, rename or a new hard link, which costs a needless redo, never a wrong skip.
 */
function changedAt(info: Stats): number {
  return Math.max(info.mtimeMs, info.ctimeMs);
}

/** A local file, or a folder scanned recursively. Never written to. */
export class LocalSource implements Source {
  readonly uri: string;
  /** An empty local file is a broken image, and fails like one. */
  readonly emptyObjectsArePlaceholders = false;
  /** Reading a local file is quick: reading ahead would only hold more inputs in memory at once. */
  readonly readAhead = false;
  private readonly root: string;
  private readonly singleFile: string | undefined;
  private skipped: string[] = [];
  private broken: BrokenLink[] = [];

  private constructor(
    path: string,
    isFile: boolean,
    private readonly exclude: readonly string[],
    private readonly fs: LocalFs,
  ) {
    this.uri = path;
    this.root = isFile ? dirname(path) : path;
    this.singleFile = isFile ? path : undefined;
  }

  /**
   * Checks that the path exists and can be read; `exclude` lists folders and files (such as the output's
   * variant folders) never to scan. `fs` is for tests.
   */
  static async open(path: string, exclude: readonly string[] = [], fs: LocalFs = NODE_FS): Promise<LocalSource> {
    const absolute = resolve(path);
    const info = await stat(absolute).catch((error: NodeJS.ErrnoException) => {
      throw new StorageError('LOCAL_NOT_FOUND', `input ${path} does not exist or cannot be read (${error.code ?? error.message})`, { cause: error });
    });
    if (!info.isFile() && !info.isDirectory()) throw new StorageError('LOCAL_NOT_FOUND', `input ${path} is neither a file nor a folder`);
    if (info.isDirectory()) {
      // A folder named as an input that cannot be read at all is a usage error, found before anything is written.
      try {
        await (await fs.opendir(absolute)).close();
      } catch (error) {
        throw new StorageError('LOCAL_NOT_FOUND', `input ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
      }
    }
    return new LocalSource(absolute, info.isFile(), exclude.map((e) => resolve(e)), fs);
  }

  /** Subfolders the last listing left out because they hold `.img-pipeline.json`: an earlier run's outputs. */
  get skippedFolders(): readonly string[] {
    return this.skipped;
  }

  /** Symlinks the last listing found dangling or looping: not inputs, and not failures either. */
  get brokenLinks(): readonly BrokenLink[] {
    return this.broken;
  }

  async *list(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    if (this.singleFile) {
      const info = await stat(this.singleFile);
      yield { key: basename(this.singleFile), uri: this.singleFile, size: info.size, mtimeMs: changedAt(info) };
      return;
    }
    this.skipped = [];
    this.broken = [];
    const options: WalkOptions = { exclude: this.exclude, fs: this.fs, onOutputFolder: (folder) => this.skipped.push(folder), onBrokenLink: (link) => this.broken.push(link), ...(signal ? { signal } : {}) };
    for await (const found of walk(this.root, options)) {
      const key = toKey(this.root, found.path);
      if (found.error) {
        // A folder in its place in key order (`b/` sorts where its files would), so listings stay sorted.
        yield { key: found.isFile || key === '' ? key : `${key}/`, uri: found.path, size: 0, mtimeMs: 0, error: { code: found.error.code, message: found.error.message } };
        continue;
      }
      yield { key, uri: found.path, size: found.info.size, mtimeMs: changedAt(found.info) };
    }
  }

  /**
   * Whether `uri` is this input file, or lies where this folder's scan would look (inside it, outside
   * every excluded folder). An S3 URI is never a local path.
   */
  contains(uri: string): boolean {
    if (!isAbsolute(uri)) return false;
    const path = resolve(uri);
    if (this.singleFile) return path === this.singleFile;
    return isInside(this.root, path) && !this.exclude.some((ex) => isInside(ex, path));
  }

  async read(entry: SourceEntry): Promise<Buffer> {
    try {
      return await readFile(entry.uri, { flag: 'r' });
    } catch (error) {
      throw new StorageError('LOCAL_READ_FAILED', `cannot read ${entry.uri}: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * A local output folder. Each write goes to a hidden temporary name beside the target, then is renamed.
 * The first output written into a top folder (`<variant>/`) also leaves OUTPUT_FOLDER_MARKER there.
 */
export class LocalSink implements Sink {
  readonly uri: string;
  private readonly marked = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.uri = resolve(root);
  }

  async *list(options: SinkListOptions = {}): AsyncIterable<SinkEntry> {
    const under = options.under ?? '';
    const folder = under === '' ? this.uri : this.pathOf(under.replace(/\/$/, ''));
    const exists = await stat(folder).then((s) => s.isDirectory(), () => false);
    if (!exists) return;
    for await (const found of walk(folder, { exclude: [], fs: NODE_FS, ...(options.signal ? { signal: options.signal } : {}) })) {
      // Outputs in a folder that cannot be read are unknown, so their sources are redone (and fail there).
      if (found.error) continue;
      yield { key: toKey(this.uri, found.path), mtimeMs: found.info.mtimeMs, size: found.info.size };
    }
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

  /** Makes sure the root is a writable folder (creating it with `create`), before anything is written. */
  async prepare(options: { create: boolean }): Promise<void> {
    // The nearest part of the path that exists: the root itself, or the folder it would be created in.
    let existing = this.uri;
    for (;;) {
      const info = await stat(existing).catch((error: NodeJS.ErrnoException) => error);
      if (!(info instanceof Error)) {
        if (info.isDirectory()) break;
        throw new StorageError(
          'LOCAL_OUT_NOT_FOLDER',
          existing === this.uri ? `the output folder ${this.uri} is an existing file, not a folder; choose another --out` : `cannot create the output folder ${this.uri}: ${existing} is a file, not a folder`,
        );
      }
      const parent = dirname(existing);
      if ((info.code !== 'ENOENT' && info.code !== 'ENOTDIR') || parent === existing) {
        throw new StorageError('LOCAL_OUT_UNWRITABLE', `cannot use the output folder ${this.uri}: ${info.message}`, { cause: info });
      }
      existing = parent;
    }
    try {
      await access(existing, constants.W_OK | constants.X_OK);
    } catch (error) {
      const where = existing === this.uri ? '' : ` (it would be created in ${existing})`;
      throw new StorageError('LOCAL_OUT_UNWRITABLE', `cannot write to the output folder ${this.uri}${where}: ${(error as Error).message}`, { cause: error });
    }
    if (!options.create || existing === this.uri) return;
    try {
      await mkdir(this.uri, { recursive: true });
    } catch (error) {
      throw new StorageError('LOCAL_OUT_UNWRITABLE', `cannot create the output folder ${this.uri}: ${(error as Error).message}`, { cause: error });
    }
  }

  async write(key: string, data: Buffer, options: WriteOptions): Promise<void> {
    const slash = key.indexOf('/');
    if (slash > 0 && options.metadata[OUTPUT_MARKER] !== undefined) await this.markFolder(key.slice(0, slash));
    await this.writeFile(key, data);
  }

  /** Marks a folder as holding outputs, once per run, before its first output lands (so no output is ever unmarked). */
  private markFolder(folder: string): Promise<void> {
    let marking = this.marked.get(folder);
    if (!marking) {
      const body = `${JSON.stringify({ tool: 'img-pipeline', note: 'this folder holds img-pipeline outputs; scans never read it as input' })}\n`;
      marking = this.writeFile(`${folder}/${OUTPUT_FOLDER_MARKER}`, Buffer.from(body));
      this.marked.set(folder, marking);
      // A failed marker fails this write; the next output tries again.
      marking.catch(() => this.marked.delete(folder));
    }
    return marking;
  }

  private async writeFile(key: string, data: Buffer): Promise<void> {
    const target = this.pathOf(key);
    const temp = join(dirname(target), tempName(basename(target)));
    try {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(temp, data, { flag: 'wx' });
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new StorageError('LOCAL_WRITE_FAILED', `cannot write ${target}: ${(error as Error).message}`, { cause: error });
    }
  }

  async createExclusive(key: string, data: Buffer): Promise<Stored | false> {
    const path = this.pathOf(key);
    try {
      await writeFile(path, data, { flag: 'wx' });
      return {};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new StorageError('LOCAL_WRITE_FAILED', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async remove(key: string): Promise<void> {
    await unlink(this.pathOf(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw new StorageError('LOCAL_WRITE_FAILED', `cannot delete ${this.pathOf(key)}: ${error.message}`, { cause: error });
    });
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
