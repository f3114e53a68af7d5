import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../../src/storage/buffer-pool.js';

const MiB = 1024 * 1024;
/** Whether two views share any byte of memory. */
const overlap = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;

describe('BufferPool', () => {
  it('hands out exactly the length asked for, and reuses memory given back', () => {
    const pool = new BufferPool(16 * MiB);
    const a = pool.take(3 * MiB + 5);
    expect(a.length).toBe(3 * MiB + 5);
    pool.give(a);
    const b = pool.take(2 * MiB);
    expect(b.length).toBe(2 * MiB);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.ownedBytes).toBeLessThanOrEqual(4 * MiB);
  });

  it('never hands out memory that is still lent, however many buffers are taken', () => {
    const pool = new BufferPool(64 * MiB);
    const held = [pool.take(MiB), pool.take(MiB), pool.take(10)];
    pool.give(pool.take(MiB));
    const more = [pool.take(MiB), pool.take(2 * MiB), pool.take(MiB)];
    const all = [...held, ...more];
    for (const [i, a] of all.entries()) for (const b of all.slice(i + 1)) expect(overlap(a, b)).toBe(false);
  });

  it('ignores a second give and buffers it did not lend, so one buffer is never lent twice', () => {
    const pool = new BufferPool(16 * MiB);
    const a = pool.take(MiB);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(MiB));
    const [b, c] = [pool.take(MiB), pool.take(MiB)];
    expect(overlap(b, c)).toBe(false);
  });

  it('forgets a dropped buffer: never reused, and no longer counted against the limit', () => {
    const pool = new BufferPool(4 * MiB);
    const a = pool.take(3 * MiB);
    pool.drop(a);
    expect(pool.ownedBytes).toBe(0);
    pool.give(a);
    const b = pool.take(3 * MiB);
    expect(b.buffer).not.toBe(a.buffer);
    expect(pool.ownedBytes).toBe(3 * MiB);
  });

  it('owns no more than its limit, lent and free: beyond it, buffers are not pooled', () => {
    const pool = new BufferPool(4 * MiB);
    const a = pool.take(3 * MiB);
    const b = pool.take(3 * MiB);
    expect(pool.ownedBytes).toBe(3 * MiB);
    pool.give(b);
    pool.give(a);
    expect(pool.take(3 * MiB).buffer).toBe(a.buffer);
    // A free buffer too small for the next request makes room for it rather than holding the limit.
    const small = new BufferPool(4 * MiB);
    small.give(small.take(MiB));
    small.take(3.5 * MiB);
    expect(small.ownedBytes).toBe(3.5 * MiB);
  });

  it('refuses a limit that is not positive', () => {
    expect(() => new BufferPool(0)).toThrow('expected a pool limit > 0, received 0');
  });
});
