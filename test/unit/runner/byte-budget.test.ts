import { describe, expect, it } from 'vitest';
import { ByteBudget, type Release } from '../../../src/runner/byte-budget.js';

/** Lets pending promise callbacks run. */
const settle = () => new Promise((done) => setImmediate(done));

describe('ByteBudget', () => {
  it('never holds more than its bytes, and grants in arrival order', async () => {
    const budget = new ByteBudget({ bytes: 100 });
    const granted: string[] = [];
    const take = (name: string, bytes: number) => budget.acquire(bytes).then((release) => (granted.push(name), release));
    const a = take('a', 60);
    const b = take('b', 50);
    // c fits beside a, but b came first: nothing jumps the queue, so a large request is never starved.
    const c = take('c', 10);
    await settle();
    expect(granted).toEqual(['a']);
    expect(budget.inFlight).toBe(60);
    (await a)();
    await settle();
    expect(granted).toEqual(['a', 'b', 'c']);
    expect(budget.inFlight).toBe(60);
    (await b)();
    (await c)();
    expect(budget.inFlight).toBe(0);
    expect(budget.peak).toBe(60);
  });

  it('lets one request larger than the whole budget through, alone', async () => {
    const budget = new ByteBudget({ bytes: 100 });
    const small = await budget.acquire(10);
    let big: Release | undefined;
    void budget.acquire(500).then((release) => (big = release));
    await settle();
    expect(big).toBeUndefined();
    small();
    await settle();
    expect(budget.inFlight).toBe(500);
    let after: Release | undefined;
    void budget.acquire(1).then((release) => (after = release));
    await settle();
    expect(after).toBeUndefined();
    big!();
    await settle();
    expect(after).toBeDefined();
  });

  it('also bounds the number of holders, however small each is', async () => {
    const budget = new ByteBudget({ bytes: 1000, items: 2 });
    const first = await budget.acquire(1);
    await budget.acquire(1);
    let third = false;
    void budget.acquire(1).then(() => (third = true));
    await settle();
    expect(third).toBe(false);
    expect(budget.count).toBe(2);
    first();
    // Releasing twice gives back nothing more.
    first();
    await settle();
    expect(third).toBe(true);
    expect(budget.count).toBe(2);
  });

  it('on abort, drops a waiting request without holding anything, and lets the ones behind it through', async () => {
    const budget = new ByteBudget({ bytes: 100 });
    const held = await budget.acquire(90);
    const controller = new AbortController();
    const waiting = budget.acquire(50, controller.signal);
    let small = false;
    void budget.acquire(5).then(() => (small = true));
    await settle();
    expect(small).toBe(false);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    await settle();
    expect(small).toBe(true);
    expect(budget.inFlight).toBe(95);
    held();
    await expect(budget.acquire(1, controller.signal)).rejects.toThrow('stop');
  });

  it('refuses a budget of zero bytes', () => {
    expect(() => new ByteBudget({ bytes: 0 })).toThrow('expected a byte budget > 0, received 0');
  });
});
