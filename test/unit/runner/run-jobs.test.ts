import { describe, expect, it } from 'vitest';
import { runJobs } from '../../../src/runner/run-jobs.js';

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

describe('runJobs', () => {
  it('never has more than `concurrency` items in flight, and runs them all', async () => {
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    await runJobs(Array.from({ length: 20 }, (_, i) => i), async (i) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await tick(1 + (i % 3));
      inFlight -= 1;
      done.push(i);
    }, { concurrency: 3 });
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('pulls from the listing only as slots free up (at most one queued item per slot)', async () => {
    let pulled = 0;
    let started = 0;
    let maxAhead = 0;
    async function* listing() {
      for (let i = 0; i < 30; i++) {
        pulled += 1;
        maxAhead = Math.max(maxAhead, pulled - started);
        yield i;
      }
    }
    await runJobs(listing(), async () => {
      started += 1;
      await tick();
    }, { concurrency: 2 });
    expect(started).toBe(30);
    expect(maxAhead).toBeLessThanOrEqual(2 * 2 + 1);
  });

  it('stops scheduling when aborted and waits for the work already started', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const finished: number[] = [];
    await runJobs(Array.from({ length: 50 }, (_, i) => i), async (i) => {
      started.push(i);
      if (i === 2) controller.abort();
      await tick(5);
      finished.push(i);
    }, { concurrency: 2, signal: controller.signal });
    expect(started.length).toBeLessThan(6);
    expect(finished.sort()).toEqual(started.sort());
  });

  it('hands every item taken but never started to onDropped, so none goes unaccounted', async () => {
    const controller = new AbortController();
    const ran: number[] = [];
    const dropped: number[] = [];
    let pulled = 0;
    async function* listing() {
      for (let i = 0; i < 50; i++) {
        pulled += 1;
        yield i;
      }
    }
    await runJobs(listing(), async (i) => {
      ran.push(i);
      if (i === 1) controller.abort();
      await tick(5);
    }, { concurrency: 2, signal: controller.signal, onDropped: (i) => dropped.push(i) });
    expect(dropped.length).toBeGreaterThan(0);
    expect(ran.length + dropped.length).toBe(pulled);
    expect([...ran, ...dropped].sort((a, b) => a - b)).toEqual(Array.from({ length: pulled }, (_, i) => i));
  });

  it('runs nothing when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    let ran = 0;
    await runJobs([1, 2, 3], async () => {
      ran += 1;
    }, { concurrency: 1, signal: controller.signal });
    expect(ran).toBe(0);
  });
});
