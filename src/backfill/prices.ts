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
 * Per-task billed duration assumed before the canary measures the real one (a dry run has no canary).
 * `npm run bench:lambda -- --runs 3 --images 6` on the 2-core development machine, under load: a Batch
 * task on a 12 MP JPEG (default config plus a text watermark) took 302 ms warm (median; p90 552 ms) on one
 * core; rounded up for Lambda's share of a vCPU at 1,024 MB.
 */
export const DEFAULT_TASK_MS = 400;
