import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_KEY } from '../../../src/pipeline/layout.js';
import { acquireRunLock } from '../../../src/runner/run-lock.js';
import { LocalSink } from '../../../src/storage/local.js';
import { rejection } from '../../helpers/errors.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

/** The pid of a process that has exited: a lock it left is stale. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

async function sinkIn(): Promise<{ dir: string; sink: LocalSink }> {
  const dir = await makeTempDir();
  return { dir, sink: new LocalSink(dir) };
}

describe('acquireRunLock (one run per destination)', () => {
  it('refuses a second run while the first holds the lock, naming it; release frees the destination', async () => {
    const { dir, sink } = await sinkIn();
    const first = await acquireRunLock(sink, { command: 'img-pipeline "a" --out "o" --watermark A' });
    const lock = JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'));
    expect(lock).toMatchObject({ tool: 'img-pipeline', pid: process.pid, hostname: hostname(), command: 'img-pipeline "a" --out "o" --watermark A' });
    const error = await rejection(acquireRunLock(sink, { command: 'second' }), Error);
    expect(error).toMatchObject({ code: 'OUT_LOCKED' });
    expect(error.message).toBe(`another img-pipeline run is writing to ${dir} (pid ${process.pid} on this machine, started ${lock.startedAt}: img-pipeline "a" --out "o" --watermark A); wait for it to finish, or choose another --out`);
    await first!.release();
    const second = await acquireRunLock(sink, { command: 'second' });
    await second!.release();
    await expect(readFile(join(dir, LOCK_KEY))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over a lock left by a dead process on this machine', async () => {
    const { dir, sink } = await sinkIn();
    const pid = deadPid();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid, hostname: hostname(), startedAt: 'then', command: 'killed', token: 'old' }));
    const lock = await acquireRunLock(sink, { command: 'new', settleMs: 1 });
    expect(JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'))).toMatchObject({ pid: process.pid, command: 'new' });
    await lock!.release();
  });

  it('refuses a lock held on another machine (its process cannot be checked), saying which file to delete if it is gone', async () => {
    const { dir, sink } = await sinkIn();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'elsewhere', startedAt: 'then', command: 'remote run', token: 't' }));
    const error = await rejection(acquireRunLock(sink, { command: 'new', isAlive: () => false }), Error);
    expect(error.message).toMatch(/\(pid 1 on host elsewhere, started then: remote run\); wait for it to finish, or choose another --out\. If that run is gone, delete .*\.img-pipeline\.lock$/);
  });

  it('of two runs racing to take over the same stale lock, only one goes on', async () => {
    const { dir, sink } = await sinkIn();
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: deadPid(), hostname: hostname(), startedAt: 'then', command: 'killed', token: 'old' }));
    const confirmed = (command: string) => acquireRunLock(sink, { command, settleMs: 50 }).then((lock) => lock!.confirmed);
    const results = await Promise.allSettled([confirmed('one'), confirmed('two')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'OUT_LOCKED' } });
  });

  it('never deletes a lock that is no longer its own', async () => {
    const { dir, sink } = await sinkIn();
    const lock = await acquireRunLock(sink, { command: 'one' });
    await writeFile(join(dir, LOCK_KEY), JSON.stringify({ tool: 'img-pipeline', pid: process.pid, hostname: hostname(), startedAt: 'now', command: 'took over', token: 'other' }));
    await lock!.release();
    expect(JSON.parse(await readFile(join(dir, LOCK_KEY), 'utf8'))).toMatchObject({ token: 'other' });
  });
});
