/** Gives back what `acquire` took; calling it again does nothing. */
export type Release = () => void;

export interface ByteBudgetOptions {
  /** The most bytes held at once. One request larger than this still proceeds, alone. */
  bytes: number;
  /** The most holders at once (default: no limit), so that many tiny items cannot pile up either. */
  items?: number;
}

/**
 * A semaphore counted in bytes (and, optionally, holders): what keeps downloads ahead of the decoders
 * and uploads behind them from holding more memory than the run allows, whatever the images' sizes.
 * Requests are granted strictly in arrival order, so a large one is never starved by a stream of small
 * ones; one larger than the whole budget waits until nothing else is held and then runs alone.
 */
export class ByteBudget {
  private held = 0;
  private holders = 0;
  private most = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];
  readonly limit: number;
  readonly maxItems: number;

  constructor(options: ByteBudgetOptions) {
    if (!(options.bytes > 0)) throw new RangeError(`expected a byte budget > 0, received ${options.bytes}`);
    this.limit = options.bytes;
    this.maxItems = options.items ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes held right now. */
  get inFlight(): number {
    return this.held;
  }

  /** The most bytes ever held at once (for tests and the bench). */
  get peak(): number {
    return this.most;
  }

  /** Holders right now. */
  get count(): number {
    return this.holders;
  }

  /**
   * Resolves once `bytes` fit, with the function that gives them back. Rejects with the signal's reason
   * if it is aborted while waiting (nothing is then held).
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<Release> {
    const size = Math.max(0, bytes);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Release>((resolve, reject) => {
      const waiter = {
        bytes: size,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take(size));
        },
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        reject(signal!.reason);
        // The head may have been what held the others back.
        this.drain();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.drain();
    });
  }

  private fits(bytes: number): boolean {
    if (this.holders >= this.maxItems) return false;
    return this.holders === 0 || this.held + bytes <= this.limit;
  }

  private take(bytes: number): Release {
    this.held += bytes;
    this.holders += 1;
    this.most = Math.max(this.most, this.held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.holders -= 1;
      this.drain();
    };
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) this.waiting.shift()!.grant();
  }
}
