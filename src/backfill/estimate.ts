import type { Architecture } from '../deploy/plan.js';
import { PRICES } from './prices.js';

export interface EstimateInput {
  objects: number;
  bytes: number;
  /** Variants times formats: one PUT each. */
  outputsPerObject: number;
  memoryMb: number;
  architecture: Architecture;
  /** The function's available concurrency: its reserved concurrency, or the account's unreserved pool. */
  concurrency: number;
  /** Billed milliseconds per task, and where the figure comes from. */
  taskMs: number;
  taskMsFrom: 'canary' | 'default';
  /** ListObjectsV2 requests the manifest took (source and destination listings). */
  listRequests: number;
}

export interface Estimate {
  objects: number;
  bytes: number;
  concurrency: number;
  taskMs: number;
  taskMsFrom: 'canary' | 'default';
  /** Lower bound: every slot busy from the first second; Batch's own ramp-up and preparation come on top. */
  wallSeconds: number;
  gbSeconds: number;
  /** USD, by line, and the total. */
  cost: { batchJob: number; batchTasks: number; lambdaCompute: number; lambdaRequests: number; s3Get: number; s3Put: number; s3List: number; total: number };
  requests: { get: number; put: number; list: number };
}

/**
 * The capacity and cost model, computed, never measured (docs/backfill.md writes out the same formulas):
 *   wall  = ceil(objects / concurrency) x taskMs
 *   GB-s  = objects x taskMs/1000 x memoryMb/1024
 *   GET   = 2 per object (the handler's HEAD, then the GET); PUT = one per output, plus the manifest
 *   cost  = Batch per job + per task, Lambda GB-s + requests, S3 requests, at PRICES.
 */
export function estimateBackfill(input: EstimateInput): Estimate {
  const { objects } = input;
  const concurrency = Math.max(1, input.concurrency);
  const gbSeconds = objects * (input.taskMs / 1000) * (input.memoryMb / 1024);
  const requests = { get: objects * 2, put: objects * input.outputsPerObject + 1, list: input.listRequests };
  const cost = {
    batchJob: objects > 0 ? PRICES.batchOperations.perJob : 0,
    batchTasks: (objects / 1e6) * PRICES.batchOperations.perMillionTasks,
    lambdaCompute: gbSeconds * PRICES.lambda.perGbSecond[input.architecture],
    lambdaRequests: (objects / 1e6) * PRICES.lambda.perMillionRequests,
    s3Get: (requests.get / 1000) * PRICES.s3.perThousandGet,
    s3Put: (requests.put / 1000) * PRICES.s3.perThousandPutOrList,
    s3List: (requests.list / 1000) * PRICES.s3.perThousandPutOrList,
    total: 0,
  };
  cost.total = cost.batchJob + cost.batchTasks + cost.lambdaCompute + cost.lambdaRequests + cost.s3Get + cost.s3Put + cost.s3List;
  return {
    objects,
    bytes: input.bytes,
    concurrency,
    taskMs: input.taskMs,
    taskMsFrom: input.taskMsFrom,
    wallSeconds: Math.ceil(objects / concurrency) * (input.taskMs / 1000),
    gbSeconds,
    cost,
    requests,
  };
}
