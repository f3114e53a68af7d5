import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

  it.skipIf(process.getuid?.() === 0)('leaves neither a partial target nor a temp file when a write fails', async () => {
    const dir = await makeTempDir();
    await mkdir(join(dir, 'ro'));
    await chmod(join(dir, 'ro'), 0o555);
    const sink = new LocalSink(dir);
    await expect(sink.write('ro/a.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} })).rejects.toMatchObject({ code: 'LOCAL_WRITE_FAILED' });
    expect(await listFiles(dir)).toEqual([]);
  });

  it('fails a write whose folder cannot be created, cleaning up, and names the target', async () => {
    const dir = await makeTempDir();
    // A file where the variant folder should be: mkdir fails whoever runs the test (root included).
    await writeFile(join(dir, 'thumb'), 'not a folder');
    const sink = new LocalSink(dir);
    await expect(sink.write('thumb/a.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} })).rejects.toMatchObject({ code: 'LOCAL_WRITE_FAILED', message: expect.stringContaining(join(dir, 'thumb', 'a.jpg')) });
    expect(await listFiles(dir)).toEqual(['thumb']);
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
