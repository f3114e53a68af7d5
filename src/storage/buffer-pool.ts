/** Capacities are rounded up to this, so one freed buffer fits the next input of about the same size. */
const GRANULE = 256 * 1024;

/**
 * Memory for downloaded inputs, reused from one image to the next. A fresh multi-megabyte buffer is a new
 * mapping from the kernel, and filling it costs a page fault per 4 KiB: on an S3 run that was 270 ms of
 * the main thread for 89 MB, against 17 ms for the same copy into memory already touched.
 *
 * The pool never owns more than `limit` bytes (the run's read-ahead budget, which already bounds the
 * inputs held at once), lent and free together; beyond that, `take` hands out a buffer the pool forgets.
 * Only `give` returns a buffer to it, and only the holder of the last reference may call it: a buffer
 * given back is overwritten by the next download. A buffer that something may still read (a decode that
 * failed halfway) is `drop`ped instead: the pool stops counting it, and the garbage collector frees it.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** The buffers lent out, each by the view handed out, to its whole allocation. */
  private readonly lent = new WeakMap<Buffer, Buffer>();
  private owned = 0;
  readonly limit: number;

  constructor(limit: number) {
    if (!(limit > 0)) throw new RangeError(`expected a pool limit > 0, received ${limit}`);
    this.limit = limit;
  }

  /** Bytes allocated by the pool and not dropped: lent and free. */
  get ownedBytes(): number {
    return this.owned;
  }

  /** A buffer of exactly `length` bytes, whose contents are undefined until written. */
  take(length: number): Buffer {
    const at = this.bestFit(length);
    if (at >= 0) return this.lend(this.free.splice(at, 1)[0]!, length);
    const capacity = Math.ceil(Math.max(length, 1) / GRANULE) * GRANULE;
    // Free buffers too small for this one make room for it, smallest first (the larger may fit the next).
    this.free.sort((a, b) => a.length - b.length);
    while (this.owned + capacity > this.limit && this.free.length > 0) this.owned -= this.free.shift()!.length;
    if (this.owned + capacity > this.limit) return Buffer.allocUnsafeSlow(length);
    this.owned += capacity;
    return this.lend(Buffer.allocUnsafeSlow(capacity), length);
  }

  /** Returns a buffer from `take` for reuse; anything else, or a second call, is ignored. */
  give(buffer: Buffer): void {
    const whole = this.lent.get(buffer);
    if (!whole) return;
    this.lent.delete(buffer);
    this.free.push(whole);
  }

  /** Forgets a buffer from `take` without reusing it; anything else, or a second call, is ignored. */
  drop(buffer: Buffer): void {
    const whole = this.lent.get(buffer);
    if (!whole) return;
    this.lent.delete(buffer);
    this.owned -= whole.length;
  }

  private bestFit(length: number): number {
    let best = -1;
    for (const [i, candidate] of this.free.entries()) {
      if (candidate.length >= length && (best < 0 || candidate.length < this.free[best]!.length)) best = i;
    }
    return best;
  }

  private lend(whole: Buffer, length: number): Buffer {
    const view = whole.subarray(0, length);
    this.lent.set(view, whole);
    return view;
  }
}
