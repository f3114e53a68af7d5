import { createInterface } from 'node:readline/promises';
import { S3ControlClient } from '@aws-sdk/client-s3-control';
import type { S3Client } from '@aws-sdk/client-s3';
import { buildLocalManifest, runBackfill, type BackfillOutcome, type ListedManifest } from '../../backfill/backfill.js';
import type { Estimate } from '../../backfill/estimate.js';
import type { DeployedFunction } from '../../backfill/plan.js';
import { readCompletionReport, type CompletionReport } from '../../backfill/report.js';
import { cancelJob, describeJob, exitCodeOf, realSleep, watchJob, type JobView, type Sleep } from '../../backfill/status.js';
import { loadConfig } from '../../config/load.js';
import type { AwsClients } from '../../deploy/aws.js';
import { resolveAccount } from '../../deploy/deploy.js';
import { packageFingerprint } from '../../deploy/package.js';
import { checkFunctionName } from '../../deploy/plan.js';
import { ConfigError } from '../../errors.js';
import { folderPrefix, isS3Uri, parseS3Uri } from '../../storage/s3.js';
import { formatEstimate, formatJobLine, formatManifest, formatOutcome, jobProgressBar, printable } from '../backfill-report.js';
import { pipelineFlags } from '../options.js';
import { createAwsClients, formatStep } from './deploy.js';
import type { Io } from './run.js';
import { assertProfileExists } from '../../storage/aws-profile.js';

export interface BackfillCommandOptions extends Record<string, unknown> {
  functionName: string;
  out?: string;
  status?: string;
  cancel?: string;
  wait?: boolean;
  dryRun?: boolean;
  manifestOnly?: string;
  report: string;
  notify?: boolean;
  priority: string;
  yes?: boolean;
  force?: boolean;
  json?: boolean;
  config?: string;
  region?: string;
  profile?: string;
  pollSeconds?: string;
}

/** What the command builds at the edge; tests replace any of them. */
export interface BackfillDeps {
  createClients: (region: string | undefined, profile: string | undefined) => AwsClients & { s3control: S3ControlClient };
  /** The S3 client of the data (listings, manifest, report), built from the config like `run`'s. */
  createS3: (config: Awaited<ReturnType<typeof loadConfig>>['config'], env: NodeJS.ProcessEnv) => Promise<S3Client>;
  sleep: Sleep;
  /** Whether a person can answer a prompt (stdin and stderr are terminals). */
  interactive: () => boolean;
  ask: (question: string) => Promise<string>;
}

/** The reports print the first this many failed keys. */
const FAILED_SHOWN = 20;

export const defaultBackfillDeps: BackfillDeps = {
  createClients: (region, profile) => ({
    ...createAwsClients(region, profile),
    s3control: new S3ControlClient({ ...(region ? { region } : {}), ...(profile ? { profile } : {}) }),
  }),
  createS3: async (config, env) => {
    const { createS3Client } = await import('../../storage/s3-client.js');
    return createS3Client(config.s3, { env });
  },
  sleep: realSleep,
  interactive: () => Boolean(process.stdin.isTTY && process.stderr.isTTY),
  ask: async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  },
};

function s3Location(flag: string, uri: string | undefined): { bucket: string; prefix: string } {
  if (uri === undefined) throw new ConfigError('FLAG_MISSING', `${flag}: expected s3://bucket/prefix/, received nothing`);
  if (!isS3Uri(uri)) throw new ConfigError('FLAG_INVALID', `${flag}: expected s3://bucket/prefix/, received "${uri}"`);
  const location = parseS3Uri(uri);
  return { bucket: location.bucket, prefix: folderPrefix(location.prefix) };
}

function integerIn(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new ConfigError('FLAG_INVALID', `${flag}: expected an integer from ${min} to ${max}, received "${value}"`);
  return n;
}

const JOB_ID = /^[a-zA-Z0-9-_]{5,36}$/;

function checkJobId(flag: string, id: string): string {
  if (!JOB_ID.test(id)) throw new ConfigError('FLAG_INVALID', `${flag}: expected a Batch Operations job id (5-36 letters, digits, - or _), received "${id}"`);
  return id;
}

function json(io: Io, document: unknown): void {
  io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** `img-pipeline backfill`: returns the exit code. */
export async function backfillCommand(source: string | undefined, opts: BackfillCommandOptions, io: Io, deps: BackfillDeps = defaultBackfillDeps): Promise<number> {
  const modes = [opts.status !== undefined, opts.cancel !== undefined, opts.manifestOnly !== undefined].filter(Boolean).length;
  if (modes > 1) throw new ConfigError('FLAG_INVALID', '--status, --cancel and --manifest-only: give one of them');
  if (opts.report !== 'failed' && opts.report !== 'all') throw new ConfigError('FLAG_INVALID', `--report: expected failed or all, received "${opts.report}"`);
  const priority = integerIn('--priority', opts.priority, 0, 2_147_483_647);
  const pollMs = integerIn('--poll-seconds', opts.pollSeconds ?? '15', 1, 3600) * 1000;
  const { layer, sizeOverrides } = pipelineFlags(opts);
  const s3Layer = { ...(opts.region ? { region: opts.region } : {}), ...(opts.profile ? { profile: opts.profile } : {}) };
  const { config } = await loadConfig({ cwd: io.cwd, file: opts.config, flags: { ...layer, ...(Object.keys(s3Layer).length ? { s3: s3Layer } : {}) }, sizeOverrides });
  const env = io.env ?? process.env;
  // A missing profile is named as such, not as the SDK's warning and 'no credentials'.
  if (config.s3.profile) await assertProfileExists(config.s3.profile, env);

  if (opts.manifestOnly !== undefined) {
    const from = s3Location('the source', source);
    const out = s3Location('--out', opts.out);
    const s3 = await deps.createS3(config, env);
    try {
      const manifest = await buildLocalManifest(s3, { source: from, out, config, fingerprint: await packageFingerprint(config), force: opts.force ?? false, file: opts.manifestOnly, cwd: io.cwd, ...(io.signal ? { signal: io.signal } : {}) });
      if (!manifest) {
        io.stderr.write('Interrupted while listing: no manifest was written.\n');
        return 130;
      }
      if (opts.json) json(io, { command: 'backfill', mode: 'manifest-only', manifest });
      else io.stderr.write(`${formatManifest(manifest, `written to ${manifest.file}`)}\n`);
    } finally {
      s3.destroy();
    }
    return 0;
  }

  if (opts.out !== undefined) throw new ConfigError('FLAG_INVALID', '--out: only with --manifest-only; a backfill writes where the function was deployed to write');
  // Every argument is checked before the first AWS call: a typo is reported as such, not as a credentials error.
  const jobFlag = opts.cancel !== undefined ? '--cancel' : opts.status !== undefined ? '--status' : undefined;
  if (jobFlag && source !== undefined) throw new ConfigError('FLAG_INVALID', `${jobFlag}: takes a job id, not a source; received both the source "${source}" and ${jobFlag} ${opts.cancel ?? opts.status}`);
  const jobId = jobFlag ? checkJobId(jobFlag, (opts.cancel ?? opts.status)!) : undefined;
  const request = jobFlag ? undefined : {
    functionName: checkFunctionName(opts.functionName),
    source: s3Location('the source', source),
    reportScope: opts.report === 'all' ? 'AllTasks' as const : 'FailedTasksOnly' as const,
    notify: opts.notify ?? false,
    priority,
  };
  if (request && !opts.dryRun && !opts.yes && !deps.interactive()) {
    throw new ConfigError('CONFIRMATION_NEEDED', 'backfill creates a Batch Operations job that costs money: pass --yes to start it without a prompt (no terminal to ask on), or --dry-run to see the plan and the estimate');
  }
  const clients = deps.createClients(opts.region, opts.profile);
  const account = await resolveAccount(clients);
  const s3 = await deps.createS3(config, env);
  try {
    if (opts.cancel !== undefined) {
      const id = jobId!;
      const status = await cancelJob(clients.s3control, account.accountId, id, account.region);
      if (opts.json) json(io, { command: 'backfill', mode: 'cancel', job: { id, status } });
      else io.stderr.write(`Job ${id}: ${status}. Batch Operations stops starting tasks; the ones running finish. Watch it with: img-pipeline backfill --status ${id} --wait\n`);
      return 0;
    }
    if (!request) return await follow(jobId!, opts, io, deps, clients.s3control, s3, account, pollMs, {});

    const outcome = await runBackfill({ aws: clients, s3control: clients.s3control, s3 }, request, account, {
      config,
      fingerprint: await packageFingerprint(config),
      force: opts.force ?? false,
      dryRun: opts.dryRun ?? false,
      ...(io.signal ? { signal: io.signal } : {}),
      confirm: (estimate, manifest, fn) => confirm(estimate, manifest, fn, opts, io, deps),
      // A step names the first manifest key (the canary's): untrusted, so never raw on the terminal.
      ...(opts.json ? {} : { onStep: (step) => io.stderr.write(`${printable(formatStep(step))}\n`) }),
    });
    if (outcome.kind === 'interrupted') {
      io.stderr.write('Interrupted while listing: nothing was created.\n');
      return 130;
    }
    if (outcome.kind !== 'created') return reportNotCreated(outcome, opts, io);
    const summary = { command: 'backfill', function: outcome.versionArn, manifest: outcome.manifest, estimate: outcome.estimate, job: { id: outcome.jobId, clientRequestToken: outcome.token, record: outcome.record } };
    if (!opts.json) {
      // The prompt showed the estimate at the default per-task time; the canary measured the real one.
      if (outcome.estimate.taskMsFrom === 'canary') io.stderr.write(`With the canary's time:\n${formatEstimate(outcome.estimate, outcome.fn)}\n`);
      io.stderr.write(`Created job ${outcome.jobId} (record ${outcome.record}).\n`);
    }
    if (!opts.wait) {
      if (opts.json) json(io, summary);
      else io.stderr.write(`Watch it with: img-pipeline backfill --status ${outcome.jobId} --wait${opts.region ? ` --region ${opts.region}` : ''}\n`);
      return 0;
    }
    return await follow(outcome.jobId, { ...opts, wait: true }, io, deps, clients.s3control, s3, account, pollMs, summary);
  } finally {
    s3.destroy();
  }
}

async function confirm(estimate: Estimate, manifest: ListedManifest, fn: DeployedFunction, opts: BackfillCommandOptions, io: Io, deps: BackfillDeps): Promise<boolean> {
  if (!opts.json) io.stderr.write(`${formatManifest(manifest, '')}\n${formatEstimate(estimate, fn)}\n`);
  if (opts.yes) return true;
  const answer = await deps.ask(`Start a Batch Operations job for ${manifest.count} objects? [y/N] `);
  return /^y(es)?$/i.test(answer.trim());
}

function reportNotCreated(outcome: Exclude<BackfillOutcome, { kind: 'created' | 'interrupted' }>, opts: BackfillCommandOptions, io: Io): number {
  if (opts.json) {
    json(io, { command: 'backfill', result: outcome.kind, ...('manifest' in outcome ? { manifest: outcome.manifest } : { job: { id: outcome.jobId, status: outcome.status } }), ...('estimate' in outcome ? { estimate: outcome.estimate } : {}), ...('plan' in outcome ? { plan: outcome.plan } : {}) });
    return 0;
  }
  if (outcome.kind === 'running') {
    io.stderr.write(`A backfill of this source by ${outcome.fn.name} is already under way: job ${outcome.jobId} (${outcome.status}). No second job was created. Watch it with: img-pipeline backfill --status ${outcome.jobId} --wait\n`);
  } else if (outcome.kind === 'nothing') {
    io.stderr.write(`${formatManifest(outcome.manifest, '')}\nNothing to do: every object under the source is up to date (or refused). No job was created.\n`);
  } else if (outcome.kind === 'declined') {
    io.stderr.write('Not started: nothing was created.\n');
  } else {
    const { plan, fn } = outcome;
    io.stderr.write([
      formatManifest(outcome.manifest, ''),
      formatEstimate(outcome.estimate, fn),
      `Plan (dry run: nothing was written)`,
      `  role      ${plan.role.name}, assumed by batchoperations.s3.amazonaws.com: lambda:InvokeFunction on ${fn.arn}:<version>, read ${plan.manifest.key.replace(/^.*\//, '')} and write ${plan.report.prefix.replace(/^.*\//, '')}/ in each s3://${plan.folder.bucket}/${fn.processed.prefix}.img-pipeline/backfill/<manifest>/`,
      `  version   a published version of ${fn.name} (the job never runs $LATEST)`,
      `  manifest  s3://${plan.manifest.bucket}/${plan.manifest.key}`,
      `  canary    one synchronous invocation on ${printable(outcome.manifest.first?.key ?? '')}, then its outputs checked`,
      `  job       LambdaInvoke, schema 2.0, report ${plan.report.scope} to s3://${plan.folder.bucket}/${plan.report.prefix}/job-<id>/`,
      '',
    ].join('\n'));
  }
  return 0;
}

/** --status and --wait: one look, or a watch until the job ends; then the report. */
async function follow(id: string, opts: BackfillCommandOptions, io: Io, deps: BackfillDeps, s3control: S3ControlClient, s3: S3Client, account: { accountId: string; region: string }, pollMs: number, extra: Record<string, unknown>): Promise<number> {
  let view: JobView;
  let interrupted = false;
  if (opts.wait) {
    const bar = !opts.json && deps.interactive() ? jobProgressBar(io.stderr) : undefined;
    let last = '';
    try {
      ({ view, interrupted } = await watchJob(s3control, account.accountId, id, account.region, {
        sleep: deps.sleep, intervalMs: pollMs, ...(io.signal ? { signal: io.signal } : {}),
        onUpdate: (v) => {
          if (bar) return bar.update(v);
          const line = formatJobLine(v);
          if (!opts.json && line !== last) io.stderr.write(`${line}\n`);
          last = line;
        },
      }));
    } finally {
      bar?.stop();
    }
  } else {
    view = await describeJob(s3control, account.accountId, id, account.region);
  }
  if (interrupted) {
    if (opts.json) json(io, { ...extra, command: 'backfill', job: view, interrupted: true });
    else io.stderr.write(`\nStopped watching; the job goes on (${view.status}). Watch it again with: img-pipeline backfill --status ${id} --wait\n`);
    return 130;
  }
  const report: CompletionReport | undefined = view.terminal && view.report ? await readCompletionReport(s3, view.report, id, FAILED_SHOWN) : undefined;
  if (opts.json) json(io, { ...extra, command: 'backfill', job: view, ...(report ? { report } : {}) });
  else io.stderr.write(`${view.terminal ? formatOutcome(view, report) : formatJobLine(view)}\n`);
  return view.terminal ? exitCodeOf(view) : 0;
}
