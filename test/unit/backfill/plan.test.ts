import { describe, expect, it } from 'vitest';
import { estimateBackfill } from '../../../src/backfill/estimate.js';
import { createJobRequest, planBackfill, type DeployedFunction } from '../../../src/backfill/plan.js';
import { PRICES } from '../../../src/backfill/prices.js';
import { resourceNames } from '../../../src/deploy/plan.js';

const account = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };
const fn: DeployedFunction = {
  name: 'ImageProcessor', arn: 'arn:aws:lambda:us-east-1:123456789012:function:ImageProcessor', sourceBucket: 'in', sourcePrefix: 'uploads/',
  processed: { bucket: 'in', prefix: 'processed/' }, fingerprint: 'f', memoryMb: 1024, architecture: 'arm64', timeoutSeconds: 30, codeSha256: 'c', concurrency: 1000,
};
const request = { functionName: 'ImageProcessor', source: { bucket: 'in', prefix: 'uploads/2024/' }, reportScope: 'FailedTasksOnly' as const, notify: false, priority: 10 };

describe('planBackfill', () => {
  it('puts manifest and report in a hidden folder next to the outputs, never under the trigger prefix', () => {
    const plan = planBackfill(request, fn, 'ab'.repeat(32), account);
    expect(plan.manifest.key).toBe('processed/.img-pipeline/backfill/abababababababab/manifest.csv');
    expect(plan.report.prefix).toBe('processed/.img-pipeline/backfill/abababababababab/report');
    expect(plan.manifest.key.startsWith(fn.sourcePrefix)).toBe(false);
  });

  it('refuses a manifest folder under the trigger prefix (a function set up by hand with overlapping prefixes)', () => {
    expect(() => planBackfill(request, { ...fn, processed: { bucket: 'in', prefix: 'uploads/out/' } }, 'ab'.repeat(32), account)).toThrow(/under the trigger prefix uploads\/, and its upload would invoke the function/);
  });

  it('the token is a hash of everything the job is made of: the same inputs give the same token, any change another', () => {
    const plan = planBackfill(request, fn, 'ab'.repeat(32), account);
    const inputs = { versionArn: `${fn.arn}:3`, manifestEtag: '"e"', accountId: account.accountId, priority: 10, description: 'd' };
    const token = createJobRequest(plan, inputs).ClientRequestToken;
    expect(createJobRequest(plan, inputs).ClientRequestToken).toBe(token);
    expect(createJobRequest(plan, { ...inputs, versionArn: `${fn.arn}:4` }).ClientRequestToken).not.toBe(token);
    expect(createJobRequest(plan, { ...inputs, manifestEtag: '"f"' }).ClientRequestToken).not.toBe(token);
    expect(token).toHaveLength(64);
  });

  it('the Batch role is named like deploy\'s role (regional) with a suffix, cut to IAM\'s 64 characters with a hash', () => {
    expect(resourceNames('ImageProcessor', 'us-east-1').batchRole).toBe('ImageProcessor-us-east-1-role-batch');
    const long = resourceNames('f'.repeat(59), 'ap-southeast-2').batchRole;
    expect(long).toHaveLength(64);
    expect(long).not.toBe(resourceNames(`${'f'.repeat(58)}g`, 'ap-southeast-2').batchRole);
  });
});

describe('estimateBackfill: the computed model', () => {
  it('1M images at 400 ms, 1024 MB arm64, concurrency 1000', () => {
    const e = estimateBackfill({ objects: 1_000_000, bytes: 0, outputsPerObject: 2, memoryMb: 1024, architecture: 'arm64', concurrency: 1000, taskMs: 400, taskMsFrom: 'default', listRequests: 3000 });
    expect(e.wallSeconds).toBe(400);
    expect(e.gbSeconds).toBe(400_000);
    expect(e.cost.lambdaCompute).toBeCloseTo(400_000 * PRICES.lambda.perGbSecond.arm64, 6);
    expect(e.cost.batchTasks).toBe(1);
    expect(e.cost.batchJob).toBe(0.25);
    expect(e.requests).toEqual({ get: 2_000_000, put: 2_000_001, list: 3000 });
    expect(e.cost.total).toBeCloseTo(0.25 + 1 + 5.33336 + 0.2 + 0.8 + 10.000005 + 0.015, 3);
  });
});
