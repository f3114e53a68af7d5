import pLimit from 'p-limit';

export interface RunJobsOptions {
  concurrency: number;
  /** When aborted, nothing new starts; work already started finishes (its writes are atomic). */
  signal?: AbortSignal;
}

/**
 * Runs `worker` over a stream with at most `concurrency` items in flight, pulling from the stream only
 * as slots free up: an S3 listing is consumed page by page while work goes on, and memory stays flat.
 * `worker` must not throw; a failure is a result like any other.
 */
export async function runJobs<T>(items: AsyncIterable<T> | Iterable<T>, worker: (item: T) => Promise<void>, options: RunJobsOptions): Promise<void> {
  const limit = pLimit(options.concurrency);
  const inFlight = new Set<Promise<void>>();
  const signal = options.signal;
  try {
    for await (const item of items) {
      if (signal?.aborted) break;
      const task = limit(() => (signal?.aborted ? Promise.resolve() : worker(item)));
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
      // Keep one item queued per slot so a slot never waits on the listing, and no more than that.
      if (inFlight.size >= options.concurrency * 2) await Promise.race(inFlight);
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}
