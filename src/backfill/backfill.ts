import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3ControlClient } from '@aws-sdk/client-s3-control';
import type { Config } from '../config/schema.js';
import type { AwsClients, StepResult } from '../deploy/aws.js';
import type { Account } from '../deploy/plan.js';
import { ConfigError, DeployError } from '../errors.js';
import { STATE_KEY } from '../pipeline/layout.js';
import { recordedFingerprint, recordState } from '../runner/state-file.js';
import { formatS3Uri, S3Sink, S3Source } from '../storage/s3.js';
import { estimateBackfill, type Estimate } from './estimate.js';
import { createJob, ensureBatchRole, publishVersion, readDeployedFunction, recordJob, runCanary, uploadManifest } from './job.js';
import { buildManifest, type ManifestSummary } from './manifest.js';
import { checkSource, createJobRequest, planBackfill, type BackfillPlan, type BackfillRequest, type DeployedFunction } from './plan.js';
import { DEFAULT_TASK_MS } from './prices.js';
import { findActiveJob } from './status.js';

/** The clients a backfill uses: deploy's, S3 Control, and the S3 client of the data (honours --endpoint). */
export interface BackfillClients {
  aws: Pick<AwsClients, 'iam' | 'lambda'>;
  s3control: S3ControlClient;
  s3: S3Client;
}

export interface BackfillOptions {
  config: Config;
  /** The fingerprint of `config`, as deploy bundles it. */
  fingerprint: string;
  force: boolean;
  dryRun: boolean;
  signal?: AbortSignal;
  /** Asked once the estimate is known, before anything is created; false stops with nothing done. */
  confirm: (estimate: Estimate, manifest: ListedManifest, fn: DeployedFunction) => Promise<boolean>;
  onStep?: (step: StepResult) => void;
}

/** The manifest as reported: its local file is temporary, gone once the backfill returns. */
export type ListedManifest = Omit<ManifestSummary, 'file'>;

export type BackfillOutcome =
  | { kind: 'interrupted'; fn: DeployedFunction }
  | { kind: 'running'; fn: DeployedFunction; jobId: string; status: string }
  | { kind: 'nothing'; fn: DeployedFunction; manifest: ListedManifest }
  | { kind: 'planned'; fn: DeployedFunction; manifest: ListedManifest; plan: BackfillPlan; estimate: Estimate }
  | { kind: 'declined'; fn: DeployedFunction; manifest: ListedManifest; estimate: Estimate }
  | { kind: 'created'; fn: DeployedFunction; manifest: ListedManifest; plan: BackfillPlan; estimate: Estimate; jobId: string; versionArn: string; token: string; record: string };

/** List requests a manifest took: one per 1,000 listed objects, in the source and in each variant folder. */
function listRequests(manifest: ListedManifest, variants: number): number {
  const listed = manifest.count + manifest.upToDate + manifest.refusedCount;
  return Math.max(1, Math.ceil(listed / 1000)) * (1 + variants);
}

/**
 * The whole backfill, in a fixed order: read the function, refuse what it cannot do, build the manifest,
 * estimate and ask, then the role, a published version, the manifest upload, the canary, and the job.
 * Nothing is created before `confirm` says yes, and nothing at all in a dry run.
 */
export async function runBackfill(clients: BackfillClients, request: BackfillRequest, account: Account, options: BackfillOptions): Promise<BackfillOutcome> {
  const { config } = options;
  const fn = await readDeployedFunction(clients.aws.lambda, request.functionName, account.region);
  checkSource(request, fn);
  if (fn.fingerprint === undefined) {
    throw new DeployError('FUNCTION_UNUSABLE', `the function ${fn.name} records no CONFIG_FINGERPRINT (it was deployed by an older img-pipeline): redeploy it with this version, with the same config`);
  }
  if (fn.fingerprint !== options.fingerprint) {
    throw new ConfigError('CONFIG_MISMATCH', `the config given here (fingerprint ${options.fingerprint}) is not the one ${fn.name} was deployed with (${fn.fingerprint}): pass the same --config and pipeline flags as to deploy, so that up-to-date outputs are recognised`);
  }
  const sink = new S3Sink({ client: clients.s3, bucket: fn.processed.bucket, prefix: fn.processed.prefix, cacheControl: config.s3.cacheControl });
  const recorded = recordedFingerprint(await sink.readText(STATE_KEY));
  const stale = recorded !== undefined && recorded !== fn.fingerprint;
  if (stale && !options.force) {
    throw new DeployError('BACKFILL_REFUSED', `refusing to backfill: ${sink.uriOf(STATE_KEY)} records outputs made with another config (fingerprint ${recorded}, the function's is ${fn.fingerprint}). Nothing was created. Pass --force to redo every output with the function's config`);
  }

  const description = `img-pipeline backfill of ${formatS3Uri(request.source.bucket, request.source.prefix)} by ${fn.arn}:`;
  const running = await findActiveJob(clients.s3control, account.accountId, description);
  if (running) return { kind: 'running', fn, jobId: running.id, status: running.status };

  const dir = await mkdtemp(join(tmpdir(), 'img-pipeline-backfill-'));
  try {
    const source = new S3Source({ client: clients.s3, bucket: request.source.bucket, prefix: request.source.prefix });
    const { file, ...manifest } = await buildManifest({
      source, bucket: request.source.bucket, sourceKeyPrefix: request.source.prefix, layoutPrefix: fn.sourcePrefix,
      sink, config, fingerprint: fn.fingerprint, force: options.force || stale, file: join(dir, 'manifest.csv'),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // Ctrl-C ends a listing quietly: a manifest cut short must never become a job.
    if (options.signal?.aborted) return { kind: 'interrupted', fn };
    if (manifest.count === 0) return { kind: 'nothing', fn, manifest };
    const plan = planBackfill(request, fn, manifest.sha256, account);
    const variants = Object.keys(config.sizes).length;
    const estimateWith = (taskMs: number, taskMsFrom: 'canary' | 'default') => estimateBackfill({
      objects: manifest.count, bytes: manifest.bytes, outputsPerObject: variants * config.formats.length, memoryMb: fn.memoryMb,
      architecture: fn.architecture, concurrency: fn.concurrency, taskMs, taskMsFrom, listRequests: listRequests(manifest, variants),
    });
    const estimate = estimateWith(DEFAULT_TASK_MS, 'default');
    if (options.dryRun) return { kind: 'planned', fn, manifest, plan, estimate };
    if (!(await options.confirm(estimate, manifest, fn))) return { kind: 'declined', fn, manifest, estimate };

    options.onStep?.(await ensureBatchRole(clients.aws.iam, plan.role, { dryRun: false, log: () => undefined }));
    const version = await publishVersion(clients.aws.lambda, fn);
    options.onStep?.({ resource: 'Lambda version', name: version.arn, status: 'unchanged', detail: 'published (the job invokes this version only)' });
    const etag = await uploadManifest(clients.s3, plan, file);
    options.onStep?.({ resource: 'manifest', name: formatS3Uri(plan.manifest.bucket, plan.manifest.key), status: 'created', detail: `${manifest.count} objects, ETag ${etag}` });
    // Outputs made with another config would otherwise stay stale to every later run.
    if (stale) await recordState(sink, fn.fingerprint);
    const first = manifest.first!;
    const canary = await runCanary(clients.aws.lambda, clients.s3, {
      versionArn: version.arn, bucket: request.source.bucket, key: first.key, userArguments: plan.userArguments,
      outputs: { bucket: fn.processed.bucket, prefix: fn.processed.prefix, keys: first.outputs },
    });
    options.onStep?.({ resource: 'canary', name: formatS3Uri(request.source.bucket, first.key), status: 'created', detail: `${canary.resultString}${canary.billedMs === undefined ? '' : `; billed ${canary.billedMs} ms`}` });
    const measured = canary.billedMs === undefined ? estimate : estimateWith(canary.billedMs, 'canary');

    const jobRequest = createJobRequest(plan, {
      versionArn: version.arn, manifestEtag: etag, accountId: account.accountId, priority: request.priority,
      description: `${description}${version.version}`,
    });
    // Idempotent under retries: the same token gives back the same job.
    const jobId = await createJob(clients.s3control, jobRequest);
    const record = await recordJob(clients.s3, plan, {
      tool: 'img-pipeline', jobId, region: account.region, accountId: account.accountId, functionVersionArn: version.arn,
      source: formatS3Uri(request.source.bucket, request.source.prefix), manifest: formatS3Uri(plan.manifest.bucket, plan.manifest.key), manifestEtag: etag,
      report: formatS3Uri(plan.folder.bucket, `${plan.report.prefix}/job-${jobId}/`), clientRequestToken: jobRequest.ClientRequestToken,
      objects: manifest.count, bytes: manifest.bytes, createdAt: new Date().toISOString(),
    });
    return { kind: 'created', fn, manifest, plan, estimate: measured, jobId, versionArn: version.arn, token: jobRequest.ClientRequestToken, record };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface LocalManifestOptions {
  source: { bucket: string; prefix: string };
  out: { bucket: string; prefix: string };
  config: Config;
  fingerprint: string;
  force: boolean;
  file: string;
  cwd: string;
  signal?: AbortSignal;
}

/**
 * `--manifest-only`: the manifest of what `run` would process from `source` into `out` (keys laid out
 * relative to the source prefix, as `run` lays them out), written to a local file whole or not at all.
 * Only S3 listings and the state file are read; no AWS control plane. Undefined when interrupted.
 */
export async function buildLocalManifest(s3: S3Client, options: LocalManifestOptions): Promise<ManifestSummary | undefined> {
  const file = resolve(options.cwd, options.file);
  const partial = join(dirname(file), `.${Date.now()}-${process.pid}.manifest.partial`);
  const sink = new S3Sink({ client: s3, bucket: options.out.bucket, prefix: options.out.prefix, cacheControl: options.config.s3.cacheControl });
  try {
    const manifest = await buildManifest({
      source: new S3Source({ client: s3, bucket: options.source.bucket, prefix: options.source.prefix }),
      bucket: options.source.bucket, sourceKeyPrefix: options.source.prefix, layoutPrefix: options.source.prefix,
      sink, config: options.config, fingerprint: options.fingerprint, force: options.force, file: partial,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // Interrupted (Ctrl-C): the listing stopped early, and a partial manifest is never put in place.
    if (options.signal?.aborted) return undefined;
    await rename(partial, file);
    return { ...manifest, file };
  } finally {
    await rm(partial, { force: true });
  }
}
