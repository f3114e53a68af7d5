import { PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION, resolveAccountOrOffline } from '../../deploy/deploy.js';
import { planDocument } from '../../deploy/document.js';
import { plannedDestroySteps, runDestroy } from '../../deploy/destroy.js';
import { checkBucketName, checkFunctionName } from '../../deploy/plan.js';
import { ConfigError } from '../../errors.js';
import { defaultDeployDeps, formatStep, type DeployDeps } from './deploy.js';
import type { Io } from './run.js';
import { assertProfileExists } from '../../storage/aws-profile.js';

export interface DestroyCommandOptions {
  bucket?: string;
  functionName: string;
  region?: string;
  profile?: string;
  dryRun?: boolean;
  json?: boolean;
  keepLogs?: boolean;
}

/** `img-pipeline destroy`: removes what deploy created; returns the exit code. */
export async function destroyCommand(opts: DestroyCommandOptions, io: Io, deps: Pick<DeployDeps, 'createClients'> = defaultDeployDeps): Promise<number> {
  if (opts.bucket === undefined) throw new ConfigError('FLAG_MISSING', '--bucket: expected the upload bucket whose trigger deploy added, received nothing');
  // Checked as deploy checks them, before any AWS call.
  checkBucketName('--bucket', opts.bucket);
  checkFunctionName(opts.functionName);
  const dryRun = opts.dryRun ?? false;
  const keepLogs = opts.keepLogs ?? false;
  const json = opts.json ?? false;
  const say = (line: string) => (json ? io.stderr : io.stdout).write(`${line}\n`);
  // A missing profile is named as such, not as the SDK's warning and 'no credentials'.
  if (opts.profile) await assertProfileExists(opts.profile, io.env ?? process.env);
  const clients = deps.createClients(opts.region, opts.profile);
  const { account, offline } = await resolveAccountOrOffline(clients, dryRun);
  const where = account ?? { accountId: PLACEHOLDER_ACCOUNT, region: opts.region ?? PLACEHOLDER_REGION, partition: 'aws' };
  const target = { bucket: opts.bucket, functionName: opts.functionName, account: where };
  const document = (steps: Parameters<typeof planDocument>[1]) =>
    `${JSON.stringify(planDocument({ command: 'destroy', dryRun, functionName: opts.functionName, account: where, offline, warnings: [] }, steps), null, 2)}\n`;
  if (offline !== undefined) {
    // Nothing can be checked without credentials: name what would be removed if it exists.
    const steps = plannedDestroySteps(target, keepLogs);
    say(`Destroy plan for ${opts.functionName} (${offline}: nothing was checked; each is removed only if it exists and deploy created it)`);
    for (const step of steps) say(formatStep(step));
    if (json) io.stdout.write(document(steps));
    return 0;
  }
  say(`${dryRun ? 'Destroy plan' : 'Destroying'} ${opts.functionName} in account ${where.accountId}, ${where.region}`);
  const steps = await runDestroy(clients, target, { dryRun, keepLogs, onStep: (step) => say(formatStep(step)) });
  const kept = steps.filter((s) => s.status === 'kept');
  if (kept.length > 0) say(`Kept ${kept.length} resource(s) that deploy did not create, or that you asked to keep.`);
  say('The outputs are left in place.');
  if (json) io.stdout.write(document(steps));
  return 0;
}
