import pLimit from 'p-limit';

export interface RunJobsOptions<T> {
  concurrency: number;
  /** When aborted, nothing new starts; work already started finishes (its writes are atomic). */
  signal?: AbortSignal;
  /**
   * Called for each item taken from the stream that never started because the signal was aborted (it was
   * queued for a slot, or just pulled), so a report can still account for it.
   */
  onDropped?: (item: T) => void;
}

/**
 * Runs `worker` over a stream with at most `concurrency` items in flight, pulling from the stream only
 * as slots free up: an S3 listing is consumed page by page while work goes on, and memory stays flat.
 * `worker` must not throw; a failure is a result like any other.
 */
export async function runJobs<T>(items: AsyncIterable<T> | Iterable<T>, worker: (item: T) => Promise<void>, options: RunJobsOptions<T>): Promise<void> {
  const limit = pLimit(options.concurrency);
  const inFlight = new Set<Promise<void>>();
  const { signal, onDropped } = options;
  try {
    for await (const item of items) {
      if (signal?.aborted) {
        onDropped?.(item);
        break;
      }
      const task = limit(() => {
        if (!signal?.aborted) return worker(item);
        onDropped?.(item);
        return Promise.resolve();
      });
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
      // Keep one item queued per slot so a slot never waits on the listing, and no more than that.
      if (inFlight.size >= options.concurrency * 2) await Promise.race(inFlight);
    }
  } finally {
    await Promise.allSettled(inFlight);
  }
}
