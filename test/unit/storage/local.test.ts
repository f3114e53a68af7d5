import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/errors.js';
import { LocalSink, LocalSource } from '../../../src/storage/local.js';
import type { SourceEntry } from '../../../src/storage/types.js';
import { listFiles, makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

async function keys(source: LocalSource): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of source.list()) found.push(entry.key);
  return found;
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

  it('fails to open a missing path with LOCAL_NOT_FOUND naming it', async () => {
    await expect(LocalSource.open('/definitely/not/here.jpg')).rejects.toMatchObject({ code: 'LOCAL_NOT_FOUND', message: expect.stringContaining('/definitely/not/here.jpg') });
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
