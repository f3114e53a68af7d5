import { resolveAccountOrOffline } from '../../deploy/deploy.js';
import { runDestroy } from '../../deploy/destroy.js';
import { checkBucketName, checkFunctionName, resourceNames } from '../../deploy/plan.js';
import { ConfigError } from '../../errors.js';
import { defaultDeployDeps, formatStep, type DeployDeps } from './deploy.js';
import type { Io } from './run.js';

export interface DestroyCommandOptions {
  bucket?: string;
  functionName: string;
  region?: string;
  profile?: string;
  dryRun?: boolean;
}

/** `img-pipeline destroy`: removes what deploy created; returns the exit code. */
export async function destroyCommand(opts: DestroyCommandOptions, io: Io, deps: Pick<DeployDeps, 'createClients'> = defaultDeployDeps): Promise<number> {
  if (opts.bucket === undefined) throw new ConfigError('FLAG_MISSING', '--bucket: expected the upload bucket whose trigger deploy added, received nothing');
  // Checked as deploy checks them, before any AWS call.
  checkBucketName('--bucket', opts.bucket);
  checkFunctionName(opts.functionName);
  const names = resourceNames(opts.functionName);
  const clients = deps.createClients(opts.region, opts.profile);
  const { account, offline } = await resolveAccountOrOffline(clients, opts.dryRun ?? false);
  if (offline !== undefined) {
    // Nothing can be checked without credentials: name what would be removed if it exists.
    io.stdout.write([
      `Destroy plan for ${opts.functionName} (${offline}: nothing was checked)`,
      `  would delete  the S3 trigger ${names.notificationId} on s3://${opts.bucket} (other notifications kept)`,
      `  would delete  the invoke permission ${names.statementId} and the function ${opts.functionName}`,
      `  would delete  the IAM role ${names.role} with its inline policy ${names.policy}`,
      `  would delete  the IAM role ${names.batchRole} (backfill's, for S3 Batch Operations), only if img-pipeline created it`,
      `  would delete  the SQS queue ${names.queue}, and with it any failed events still waiting there`,
      `  would delete  the SNS topic ${names.topic}, only if deploy created it`,
      '',
    ].join('\n'));
    return 0;
  }
  io.stdout.write(`${opts.dryRun ? 'Destroy plan' : 'Destroying'} ${opts.functionName} in account ${account.accountId}, ${account.region}\n`);
  const steps = await runDestroy(clients, { bucket: opts.bucket, functionName: opts.functionName, account }, {
    dryRun: opts.dryRun ?? false,
    onStep: (step) => io.stdout.write(`${formatStep(step)}\n`),
  });
  const kept = steps.filter((s) => s.status === 'kept');
  if (kept.length > 0) io.stdout.write(`Kept ${kept.length} resource(s) that deploy did not create.\n`);
  io.stdout.write(`The log group ${names.logGroup} and the outputs are left in place (aws logs delete-log-group --log-group-name ${names.logGroup}).\n`);
  return 0;
}
