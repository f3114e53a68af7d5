import { compareKeys } from '../storage/key-order.js';
import type { Source, SourceEntry } from '../storage/types.js';

/** One listed entry and the source it came from. */
export interface Listed {
  entry: SourceEntry;
  source: Source;
}

/**
 * The listings of several sources merged into one stream in key order (each is sorted already), holding
 * one entry per source. One ordered stream is what lets resume walk the destination once, in step, and
 * what puts keys from different inputs that would write the same outputs next to each other.
 * Equal keys come in the order the sources were given.
 */
export async function* mergeListings(sources: readonly Source[], signal?: AbortSignal): AsyncGenerator<Listed> {
  if (sources.length === 1) {
    const source = sources[0]!;
    for await (const entry of source.list(signal)) yield { entry, source };
    return;
  }
  const iterators = sources.map((source) => ({ source, iterator: source.list(signal)[Symbol.asyncIterator]() }));
  try {
    const heads = await Promise.all(iterators.map(async ({ source, iterator }) => ({ source, iterator, next: await iterator.next() })));
    for (;;) {
      let first: (typeof heads)[number] | undefined;
      for (const head of heads) {
        if (head.next.done) continue;
        if (!first || compareKeys(head.next.value.key, (first.next.value as SourceEntry).key) < 0) first = head;
      }
      if (!first) return;
      yield { entry: first.next.value as SourceEntry, source: first.source };
      first.next = await first.iterator.next();
    }
  } finally {
    await Promise.allSettled(iterators.map(({ iterator }) => iterator.return?.()));
  }
}
