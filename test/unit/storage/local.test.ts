import { mkdir, opendir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/errors.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { LocalSink, LocalSource, type LocalFs } from '../../../src/storage/local.js';
import { openSources } from '../../../src/storage/resolve.js';
import type { Source, SourceEntry } from '../../../src/storage/types.js';
import { listFiles, makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

async function keys(source: Source): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of source.list()) found.push(entry.key);
  return found;
}

/** Writes each file (with its folders) under `dir`. */
async function files(dir: string, paths: string[]): Promise<void> {
  for (const path of paths) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), 'x');
  }
}

/** Real opendir, except for the folders named, which fail as an unreadable folder does for a normal user. */
function unreadable(...folders: string[]): LocalFs {
  return {
    opendir: async (path) => {
      if (folders.includes(path)) throw Object.assign(new Error(`EACCES: permission denied, opendir '${path}'`), { code: 'EACCES' });
      return opendir(path);
    },
  };
}

describe('LocalSource', () => {
  it('lists a folder recursively with /-separated keys relative to it', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'photos', '2024'), { recursive: true });
    await writeFile(join(dir, 'photos', 'a.jpg'), 'a');
    await writeFile(join(dir, 'photos', '2024', 'cat.PNG'), 'c');
    expect(await keys(await LocalSource.open(join(dir, 'photos')))).toEqual(['2024/cat.PNG', 'a.jpg']);
  });

  it('lists keys in S3 byte order: folders sort as "name/", and UTF-8 (not UTF-16) decides for unicode', async () => {
    const dir = await makeTempDir();
    // '-' and '.' sort before '/', so a.jpg and a-b.jpg come before the folder a/ as they would in S3;
    // U+FF71 (halfwidth katakana) sorts before an emoji in UTF-8 but after it in UTF-16.
    const files = ['a/x.jpg', 'a.jpg', 'a-b.jpg', 'a0.jpg', 'B.jpg', 'é.jpg', '\u{1F600}.jpg', '\uFF71.jpg', 'z/y/deep.jpg', 'z.jpg'];
    for (const file of files) {
      await mkdir(join(dir, file, '..'), { recursive: true });
      await writeFile(join(dir, file), 'x');
    }
    const listed = await keys(await LocalSource.open(dir));
    const byteOrder = [...files].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(listed).toEqual(byteOrder);
    expect(listed.indexOf('\uFF71.jpg')).toBeLessThan(listed.indexOf('\u{1F600}.jpg'));
  });

  it('counts a file as changed when its content was, even if its mtime was set back (cp -p, rsync -a, unzip)', async () => {
    const dir = await makeTempDir();
    await files(dir, ['in/a.jpg', 'one.jpg']);
    const before = Date.now();
    const old = new Date('2019-06-01T12:00:00Z');
    for (const file of ['in/a.jpg', 'one.jpg']) await utimes(join(dir, file), old, old);
    for (const path of [join(dir, 'in'), join(dir, 'one.jpg')]) {
      const entries: SourceEntry[] = [];
      for await (const entry of (await LocalSource.open(path)).list()) entries.push(entry);
      // The change time (now), not the mtime it was given: outputs written before now are not up to date.
      expect(entries[0]!.mtimeMs).toBeGreaterThanOrEqual(before - 50);
      expect(entries[0]!.mtimeMs).toBe((await stat(entries[0]!.uri)).ctimeMs);
    }
  });

  it('lists a single file under its own name', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'one.jpg'), 'x');
    const entries: SourceEntry[] = [];
    for await (const entry of (await LocalSource.open(join(dir, 'one.jpg'))).list()) entries.push(entry);
    expect(entries).toEqual([expect.objectContaining({ key: 'one.jpg', uri: join(dir, 'one.jpg'), size: 1 })]);
  });

  it('skips excluded folders (the output inside the input)', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'out', 'thumb'), { recursive: true });
    await writeFile(join(dir, 'a.jpg'), 'a');
    await writeFile(join(dir, 'out', 'thumb', 'a.jpg'), 'o');
    expect(await keys(await LocalSource.open(dir, [join(dir, 'out')]))).toEqual(['a.jpg']);
    // A sibling whose name merely starts the same is not excluded.
    await mkdir(join(dir, 'outdoor'));
    await writeFile(join(dir, 'outdoor', 'b.jpg'), 'b');
    expect(await keys(await LocalSource.open(dir, [join(dir, 'out')]))).toEqual(['a.jpg', 'outdoor/b.jpg']);
  });

  it('reports a folder it cannot read as one failed entry in its place, and goes on with the rest', async () => {
    const dir = await makeTempDir();
    await files(dir, ['a.jpg', 'b/x.jpg', 'b/deeper/y.jpg', 'c/ok.jpg', 'z.jpg']);
    const source = await LocalSource.open(dir, [], unreadable(join(dir, 'b')));
    const entries: SourceEntry[] = [];
    for await (const entry of source.list()) entries.push(entry);
    // In key order: the folder stands where its files would have been.
    expect(entries.map((e) => e.key)).toEqual(['a.jpg', 'b/', 'c/ok.jpg', 'z.jpg']);
    expect(entries[1]).toEqual({ key: 'b/', uri: join(dir, 'b'), size: 0, mtimeMs: 0, error: { code: 'LOCAL_UNREADABLE', message: expect.stringContaining(`cannot read the folder ${join(dir, 'b')}`) } });
    expect(entries[1]!.error!.message).toContain('EACCES');
    expect(entries.filter((e) => e.error)).toHaveLength(1);
  });

  it('reports a folder that vanished mid-scan (a real opendir failure, whoever runs the test) and goes on', async () => {
    const dir = await makeTempDir();
    await files(dir, ['a.jpg', 'b/x.jpg', 'z.jpg']);
    const iterator = (await LocalSource.open(dir)).list()[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ key: 'a.jpg' });
    // The root's names are read already; b/ is opened only when the walk gets to it.
    await rm(join(dir, 'b'), { recursive: true });
    const rest: SourceEntry[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value);
    expect(rest.map((e) => [e.key, e.error?.code])).toEqual([['b/', 'LOCAL_UNREADABLE'], ['z.jpg', undefined]]);
    expect(rest[0]!.error!.message).toMatch(new RegExp(`${join(dir, 'b')}.*ENOENT`));
  });

  it('refuses an input folder it cannot read at all, before listing, as LOCAL_NOT_FOUND', async () => {
    const dir = await makeTempDir();
    await expect(LocalSource.open(dir, [], unreadable(dir))).rejects.toMatchObject({ code: 'LOCAL_NOT_FOUND', message: expect.stringContaining('EACCES') });
  });

  it('leaves out folders below the root that hold the state file (earlier outputs), but not the root itself', async () => {
    const dir = await makeTempDir();
    await files(dir, [STATE_KEY, 'a.jpg', `old/${STATE_KEY}`, 'old/thumb/a.jpg', `deep/er/${STATE_KEY}`, 'deep/er/medium/b.jpg', 'deep/c.jpg']);
    const source = await LocalSource.open(dir);
    expect(await keys(source)).toEqual([STATE_KEY, 'a.jpg', 'deep/c.jpg']);
    expect(source.skippedFolders).toEqual([join(dir, 'deep/er'), join(dir, 'old')]);
    // Named as the input, an output folder is scanned like any other.
    expect(await keys(await LocalSource.open(join(dir, 'old')))).toEqual([STATE_KEY, 'thumb/a.jpg']);
  });

  it('says which paths are its inputs: its own file, or a place its scan lists', async () => {
    const dir = await makeTempDir();
    await files(dir, ['in/a.jpg', 'one.jpg']);
    const file = await LocalSource.open(join(dir, 'one.jpg'));
    expect(file.contains(join(dir, 'one.jpg'))).toBe(true);
    expect(file.contains(join(dir, 'in/a.jpg'))).toBe(false);
    const folder = await LocalSource.open(join(dir, 'in'), [join(dir, 'in/thumb')]);
    expect(folder.contains(join(dir, 'in/a.jpg'))).toBe(true);
    expect(folder.contains(join(dir, 'in/new/b.jpg'))).toBe(true);
    expect(folder.contains(join(dir, 'in/thumb/a.jpg'))).toBe(false);
    expect(folder.contains(join(dir, 'one.jpg'))).toBe(false);
    expect(folder.contains('s3://bucket/in/a.jpg')).toBe(false);
  });

  it('fails to open a missing path with LOCAL_NOT_FOUND naming it', async () => {
    await expect(LocalSource.open('/definitely/not/here.jpg')).rejects.toMatchObject({ code: 'LOCAL_NOT_FOUND', message: expect.stringContaining('/definitely/not/here.jpg') });
  });
});

describe('openSources over local folders', () => {
  const variants = ['thumb', 'medium'];

  it('leaves out only <out>/<variant>/ and the state file, so --out can be the input folder or its parent', async () => {
    const dir = await makeTempDir();
    await files(dir, ['photos/a.jpg', 'photos/thumb/a.jpg', 'photos/medium/a.jpg', `photos/${STATE_KEY}`, 'photos/thumbnails/b.jpg', 'photos/sub/thumb/c.jpg']);
    const [same] = await openSources([join(dir, 'photos')], join(dir, 'photos'), { variants });
    expect(await keys(same!)).toEqual(['a.jpg', 'sub/thumb/c.jpg', 'thumbnails/b.jpg']);
    // `--out .` from the folder above: nothing of photos/ is an output folder.
    const [parent] = await openSources([join(dir, 'photos')], dir, { variants });
    expect(await keys(parent!)).toEqual([STATE_KEY, 'a.jpg', 'medium/a.jpg', 'sub/thumb/c.jpg', 'thumb/a.jpg', 'thumbnails/b.jpg']);
    // Any other variant names decide instead.
    const [custom] = await openSources([join(dir, 'photos')], join(dir, 'photos'), { variants: ['sub'] });
    expect(await keys(custom!)).toEqual(['a.jpg', 'medium/a.jpg', 'thumb/a.jpg', 'thumbnails/b.jpg']);
  });

  it('opens an input named twice once, however it is spelt', async () => {
    const dir = await makeTempDir();
    await files(dir, ['rv-o/a.jpg']);
    const input = join(dir, 'rv-o');
    const sources = await openSources([input, `${input}/`, relative(process.cwd(), input), join(dir, '.', 'rv-o')], join(dir, 'out'), { variants });
    expect(sources.map((s) => s.uri)).toEqual([input]);
  });

  it('refuses an input folder inside a variant folder of --out (its outputs would land on it), but not a file there', async () => {
    const dir = await makeTempDir();
    await files(dir, ['out/thumb/x.jpg', 'out/thumb/sub/y.jpg']);
    for (const input of [join(dir, 'out/thumb'), join(dir, 'out/thumb/sub')]) {
      await expect(openSources([input], join(dir, 'out'), { variants })).rejects.toMatchObject({ kind: 'config', code: 'LOCAL_LOOP', message: expect.stringContaining(join(dir, 'out/thumb')) });
    }
    expect(await openSources([join(dir, 'out/thumb/x.jpg')], join(dir, 'out'), { variants })).toHaveLength(1);
    // The output root itself is fine: its variant folders are left out of the scan.
    expect(await keys((await openSources([join(dir, 'out')], join(dir, 'out'), { variants }))[0]!)).toEqual([]);
  });
});

describe('LocalSink', () => {
  it('writes through a hidden temp file and a rename: the target is complete and no temp file remains', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(join(dir, 'out'));
    const data = Buffer.alloc(256 * 1024, 7);
    await sink.write('thumb/2024/cat.jpg', data, { contentType: 'image/jpeg', metadata: {} });
    expect(await listFiles(join(dir, 'out'))).toEqual(['thumb/2024/cat.jpg']);
    expect((await readFile(join(dir, 'out', 'thumb', '2024', 'cat.jpg'))).equals(data)).toBe(true);
    expect(sink.uriOf('thumb/2024/cat.jpg')).toBe(join(dir, 'out', 'thumb', '2024', 'cat.jpg'));
  });

  it('writes an output whose name is as long as the file system allows (255 bytes), its temp name cut to fit', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(dir);
    // 125 two-byte letters and ".jpg": 254 bytes, a legal name (NAME_MAX counts bytes), but not once the
    // temp file's dot, random suffix and ".tmp" are added to it whole.
    const name = `${'é'.repeat(125)}.jpg`;
    await sink.write(`thumb/${name}`, Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} });
    expect(await readdir(join(dir, 'thumb'))).toEqual([name]);
  });

  it('replaces an existing output atomically', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(dir);
    await sink.write('a.jpg', Buffer.from('old'), { contentType: 'image/jpeg', metadata: {} });
    await sink.write('a.jpg', Buffer.from('new'), { contentType: 'image/jpeg', metadata: {} });
    expect(await readFile(join(dir, 'a.jpg'), 'utf8')).toBe('new');
    expect(await listFiles(dir)).toEqual(['a.jpg']);
  });

  it('leaves neither a partial target nor a temp file when the rename into place fails', async () => {
    const dir = await makeTempDir();
    // A folder at the output path: the temp file is written, then the rename onto it fails (EISDIR), for
    // root too (a read-only folder would not stop root).
    await mkdir(join(dir, 'thumb', 'a.jpg'), { recursive: true });
    const sink = new LocalSink(dir);
    const error = await sink.write('thumb/a.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'LOCAL_WRITE_FAILED', message: expect.stringContaining(join(dir, 'thumb', 'a.jpg')) });
    expect((error as StorageError).cause).toMatchObject({ syscall: 'rename' });
    expect(await listFiles(dir)).toEqual([]);
    expect(await readdir(join(dir, 'thumb'))).toEqual(['a.jpg']);
  });

  it('fails a write whose folder cannot be created, cleaning up, and names the target', async () => {
    const dir = await makeTempDir();
    // A file where the variant folder should be: mkdir fails whoever runs the test (root included).
    await writeFile(join(dir, 'thumb'), 'not a folder');
    const sink = new LocalSink(dir);
    await expect(sink.write('thumb/a.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} })).rejects.toMatchObject({ code: 'LOCAL_WRITE_FAILED', message: expect.stringContaining(join(dir, 'thumb', 'a.jpg')) });
    expect(await listFiles(dir)).toEqual(['thumb']);
  });

  it('refuses keys that would resolve outside its folder, and writes nothing there', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(join(dir, 'deep', 'out'));
    for (const key of ['../escaped.jpg', 'thumb/../../escaped.jpg', 'thumb/../../../../escaped.jpg', '..', '', '.']) {
      await expect(sink.write(key, Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} })).rejects.toMatchObject({ code: 'LOCAL_UNSAFE_KEY' });
      expect(() => sink.uriOf(key)).toThrow(/outside the output folder/);
    }
    expect(await listFiles(dir)).toEqual([]);
    // A name that merely starts with two dots is a name like any other.
    await sink.write('thumb/..hidden.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} });
    expect(await listFiles(dir)).toEqual(['deep/out/thumb/..hidden.jpg']);
  });

  it('lists one folder under it in byte order, keys relative to the root; reads text with its time', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(dir);
    for (const key of ['thumb/b.jpg', 'thumb/a/x.jpg', 'thumb/a.jpg', 'medium/a.jpg']) await sink.write(key, Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} });
    const listed: string[] = [];
    for await (const entry of sink.list({ under: 'thumb/' })) listed.push(entry.key);
    expect(listed).toEqual(['thumb/a.jpg', 'thumb/a/x.jpg', 'thumb/b.jpg']);
    for await (const entry of sink.list({ under: 'small/' })) listed.push(entry.key);
    expect(listed).toHaveLength(3);
    await sink.write('state.json', Buffer.from('{}'), { contentType: 'application/json', metadata: {} });
    const entry = await sink.readTextEntry('state.json');
    expect(entry).toEqual({ text: '{}', mtimeMs: (await stat(join(dir, 'state.json'))).mtimeMs });
  });

  it('checks its folder up front: refuses a file in its place or on its path, creates it only when asked', async () => {
    const dir = await makeTempDir();
    await writeFile(join(dir, 'file'), 'not a folder');
    await expect(new LocalSink(join(dir, 'file')).prepare({ create: true })).rejects.toMatchObject({ code: 'LOCAL_OUT_NOT_FOLDER', message: `the output folder ${join(dir, 'file')} is an existing file, not a folder; choose another --out` });
    await expect(new LocalSink(join(dir, 'file', 'sub')).prepare({ create: true })).rejects.toMatchObject({ code: 'LOCAL_OUT_NOT_FOLDER', message: expect.stringContaining(`${join(dir, 'file')} is a file, not a folder`) });
    await new LocalSink(join(dir, 'a', 'b')).prepare({ create: false });
    expect(await stat(join(dir, 'a')).catch(() => undefined)).toBeUndefined();
    await new LocalSink(join(dir, 'a', 'b')).prepare({ create: true });
    expect((await stat(join(dir, 'a', 'b'))).isDirectory()).toBe(true);
    await new LocalSink(join(dir, 'a', 'b')).prepare({ create: true });
    expect(await readFile(join(dir, 'file'), 'utf8')).toBe('not a folder');
  });

  it('lists nothing for a destination that does not exist yet, and reads back text', async () => {
    const dir = await makeTempDir();
    const sink = new LocalSink(join(dir, 'missing'));
    const listed = [];
    for await (const entry of sink.list()) listed.push(entry);
    expect(listed).toEqual([]);
    expect(await sink.readText('state.json')).toBeUndefined();
    await sink.write('state.json', Buffer.from('{"a":1}'), { contentType: 'application/json', metadata: {} });
    expect(await sink.readText('state.json')).toBe('{"a":1}');
  });
});

describe('LocalSource and broken symlinks', () => {
  it('lists dangling and looping symlinks as broken links, not as entries, and a good one as a file', async () => {
    const dir = await makeTempDir();
    await files(dir, ['a.jpg']);
    await symlink(join(dir, 'missing.jpg'), join(dir, 'dangling.jpg'));
    await symlink(join(dir, 'self.jpg'), join(dir, 'self.jpg'));
    await symlink(join(dir, 'a.jpg'), join(dir, 'good.jpg'));
    const source = await LocalSource.open(dir);
    expect(await keys(source)).toEqual(['a.jpg', 'good.jpg']);
    expect(source.brokenLinks).toEqual([{ path: join(dir, 'dangling.jpg'), loops: false }, { path: join(dir, 'self.jpg'), loops: true }]);
    // Each listing reports its own.
    await rm(join(dir, 'self.jpg'));
    await keys(source);
    expect(source.brokenLinks).toEqual([{ path: join(dir, 'dangling.jpg'), loops: false }]);
  });
});

describe('LocalSource and names that are not UTF-8', () => {
  it('lists an image whose name is in another encoding (Latin-1 café.jpg) as a failed entry naming why, not as nothing', async () => {
    const dir = await makeTempDir();
    await files(dir, ['ok.jpg']);
    // Node reads such a name as U+FFFD and cannot open it by that name: it must not vanish from the run.
    const latin1 = (name: string) => Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name, 'latin1')]);
    await writeFile(latin1('café.jpg'), 'x');
    await writeFile(latin1('notes-é.txt'), 'x');
    await mkdir(latin1('été'));
    const listed: SourceEntry[] = [];
    for await (const entry of (await LocalSource.open(dir)).list()) listed.push(entry);
    expect(listed.map((e) => e.key)).toEqual(['caf\uFFFD.jpg', 'ok.jpg', '\uFFFDt\uFFFD/']);
    for (const entry of [listed[0], listed[2]]) expect(entry).toMatchObject({ error: { code: 'LOCAL_NAME_NOT_UTF8', message: expect.stringMatching(/not valid UTF-8.*rename it/) } });
  });

  it('fails a symlink whose name is not UTF-8 the same way, not as a broken link that only --verbose shows', async () => {
    const dir = await makeTempDir();
    await files(dir, ['ok.jpg']);
    // The link's target is fine; only its own name cannot be opened, so calling it dangling would be false.
    await symlink(join(dir, 'ok.jpg'), Buffer.concat([Buffer.from(`${dir}/`), Buffer.from('lié.jpg', 'latin1')]));
    const source = await LocalSource.open(dir);
    const listed: SourceEntry[] = [];
    for await (const entry of source.list()) listed.push(entry);
    expect(listed.map((e) => [e.key, e.error?.code])).toEqual([['li\uFFFD.jpg', 'LOCAL_NAME_NOT_UTF8'], ['ok.jpg', undefined]]);
    expect(source.brokenLinks).toEqual([]);
  });
});
