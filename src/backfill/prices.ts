/**
 * Every price the backfill estimate uses, in one place: US East (N. Virginia), on-demand, USD, the first
 * (most expensive) tier of each. Checked on 2026-12-01 against the figures on AWS's pricing pages below
 * (those pages are not in the index this project can search, so the values are the published list prices
 * as last known; other regions differ by a few percent). Taxes and free tiers are left out.
 */
export const PRICES = {
  region: 'us-east-1',
  checked: '2026-12-01',
  sources: ['https://aws.amazon.com/s3/pricing/ (Batch Operations, Requests)', 'https://aws.amazon.com/lambda/pricing/'],
  batchOperations: { perJob: 0.25, perMillionTasks: 1.0 },
  lambda: {
    perGbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 },
    perMillionRequests: 0.2,
  },
  s3: {
    /** GET and HEAD (and SELECT) requests. */
    perThousandGet: 0.0004,
    /** PUT, COPY, POST and LIST requests. */
    perThousandPutOrList: 0.005,
  },
} as const;

/**
 * Per-task duration of the handler when nothing better is known (a dry run has no canary): measured with
 * `npm run bench:lambda` on the unpacked zip (one 1600x1200 JPEG, default config, thumb and medium) on the
 * development machine, rounded up. The real run replaces it with the canary's billed duration.
 */
export const DEFAULT_TASK_MS = 400;
