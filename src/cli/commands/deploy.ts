import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import type { AwsClients, StepResult } from '../../deploy/aws.js';
import { PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION, plannedSteps, prepareDeploy, resolveAccountOrOffline, runDeploy } from '../../deploy/deploy.js';
import { planDocument } from '../../deploy/document.js';
import { buildLambdaPackage, packageFingerprint, type LambdaPackage, type PackageOptions } from '../../deploy/package.js';
import { checkDeployRequest, parseArchitecture, planDeploy, type DeployPlan } from '../../deploy/plan.js';
import { ConfigError } from '../../errors.js';
import { SIDECAR_FOLDER, STATE_KEY } from '../../pipeline/layout.js';
import { isS3Uri, parseS3Uri } from '../../storage/s3.js';
import { pipelineFlags } from '../options.js';
import type { Io } from './run.js';
import { assertProfileExists } from '../../storage/aws-profile.js';

export interface DeployCommandOptions extends Record<string, unknown> {
  bucket?: string;
  prefix?: string;
  out?: string;
  functionName: string;
  arch: string;
  memory: string;
  timeout: string;
  snsTopic?: string;
  notifyEmail?: string;
  config?: string;
  region?: string;
  profile?: string;
  logRetentionDays: string;
  /** --no-smoke-test sets it false. */
  smokeTest?: boolean;
  dryRun?: boolean;
  json?: boolean;
  packageOnly?: string;
  verbose?: boolean;
}

/** What the command builds at the edge; tests replace any of them. */
export interface DeployDeps {
  createClients: (region: string | undefined, profile: string | undefined) => AwsClients;
  buildPackage: (options: PackageOptions) => Promise<LambdaPackage>;
}

/** The one place AWS clients are constructed for deploy and destroy. */
export function createAwsClients(region: string | undefined, profile: string | undefined): AwsClients {
  const common = { ...(region ? { region } : {}), ...(profile ? { profile } : {}) };
  const snsByRegion = new Map<string, SNSClient>();
  return {
    sts: new STSClient(common),
    iam: new IAMClient(common),
    lambda: new LambdaClient(common),
    s3: new S3Client(common),
    sqs: new SQSClient(common),
    logs: new CloudWatchLogsClient(common),
    sns: new SNSClient(common),
    snsIn: (other) => {
      const client = snsByRegion.get(other) ?? new SNSClient({ ...common, region: other });
      snsByRegion.set(other, client);
      return client;
    },
  };
}

export const defaultDeployDeps: DeployDeps = { createClients: createAwsClients, buildPackage: buildLambdaPackage };

const STATUS_WIDTH = 13;

/** One line per step: status, resource, name, detail. */
export function formatStep(step: StepResult): string {
  return `  ${step.status.padEnd(STATUS_WIDTH)} ${step.resource.padEnd(24)} ${step.name}${step.detail ? `  (${step.detail})` : ''}`;
}

function indent(text: string, by: string): string {
  return text.split('\n').map((line) => `${by}${line}`).join('\n');
}

/** The whole plan for --dry-run: each resource, the policy JSON, the trigger and the environment. */
function formatPlan(plan: DeployPlan, config: Config, offline: string | undefined): string {
  const { request, fn } = plan;
  const variants = Object.keys(config.sizes).join(', ');
  const lines = [
    `Deploy plan for ${fn.name} in account ${plan.account.accountId}, region ${plan.account.region}${offline ? ` (${offline}: nothing was checked, everything shows as "would create")` : ''}`,
    '',
    `Trigger      s3:ObjectCreated:* on s3://${request.bucket}/${request.prefix}  ->  ${fn.arn}${plan.notification.filterPrefix !== request.prefix ? `  (filter prefix ${plan.notification.filterPrefix}, URL-encoded as S3 requires)` : ''}`,
    `Outputs      s3://${request.out.bucket}/${request.out.prefix}<variant>/<key relative to ${request.prefix || 'the bucket'}>  (variants ${variants}; formats ${config.formats.join(', ')})`,
    ...(config.sidecar ? [`Sidecars     s3://${request.out.bucket}/${request.out.prefix}${SIDECAR_FOLDER}/<key relative to ${request.prefix || 'the bucket'}>.json`] : []),
    `Function     ${fn.name}: ${fn.runtime}, ${fn.architecture}, ${fn.memory} MB, ${fn.timeout} s, handler ${fn.handler}`,
    'Environment',
    ...Object.entries(fn.environment).map(([k, v]) => `  ${k}=${v}`),
    `Role         ${plan.role.name}, assumed by lambda.amazonaws.com (IAM is global: the name says the region)`,
    `Inline policy ${plan.role.policyName}:`,
    indent(JSON.stringify(plan.role.policy, null, 2), '  '),
    `Encryption   ${plan.encryption ? 'KMS keys of the buckets and the topic: granted above where they need it' : 'not checked (deploy reads the buckets\' default encryption with credentials)'}`,
    `Logs         ${plan.logGroup.name}, kept ${plan.logGroup.retentionDays} days`,
    `Failures     ${plan.asyncInvoke.maximumRetryAttempts} retries, then the event goes to SQS ${plan.queue.name} (kept ${plan.queue.retentionSeconds / 86_400} days)`,
    `Notify       ${plan.topic.kind === 'none' ? 'off (--sns-topic ARN or --notify-email ADDR)' : plan.topic.kind === 'existing' ? `SNS ${plan.topic.arn} (existing)` : `SNS ${plan.topic.arn} (new), email ${plan.topic.email}`}`,
    `State file   s3://${request.out.bucket}/${request.out.prefix}${STATE_KEY} (lets a CLI backfill skip the Lambda's outputs)`,
    '',
    'Steps',
  ];
  return lines.join('\n');
}

function parseOut(out: string | undefined): { bucket: string; prefix: string } {
  if (out === undefined) throw new ConfigError('FLAG_MISSING', '--out: expected s3://bucket[/prefix] for the outputs, received nothing');
  if (!isS3Uri(out)) throw new ConfigError('FLAG_INVALID', `--out: expected s3://bucket[/prefix], received "${out}"`);
  return parseS3Uri(out);
}

function integer(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim())) throw new ConfigError('FLAG_INVALID', `${flag}: expected a whole number, received "${value}"`);
  return n;
}

async function writePackage(pkg: LambdaPackage, file: string, io: Io): Promise<void> {
  const path = resolve(io.cwd, file);
  await writeFile(path, pkg.zip);
  io.stdout.write(`Wrote ${path}: ${(pkg.zippedBytes / 1024 / 1024).toFixed(1)} MiB zipped, ${(pkg.unzippedBytes / 1024 / 1024).toFixed(1)} MiB unzipped, ${pkg.entries.length} files\n`);
  io.stdout.write(`  sharp ${pkg.sharpVersion} (${pkg.sharpFrom === 'npm' ? 'installed with npm for the target' : "copied from this machine's node_modules"}), CodeSha256 ${pkg.sha256}\n`);
}

/** `img-pipeline deploy`: returns the exit code. */
export async function deployCommand(opts: DeployCommandOptions, io: Io, deps: DeployDeps = defaultDeployDeps): Promise<number> {
  const { layer, sizeOverrides } = pipelineFlags(opts);
  const { config } = await loadConfig({ cwd: io.cwd, file: opts.config, flags: layer, sizeOverrides });
  const arch = parseArchitecture(opts.arch);
  const packageOptions: PackageOptions = { config, arch, env: io.env ?? process.env, log: (line) => io.stderr.write(`${line}\n`) };

  if (opts.packageOnly !== undefined) {
    await writePackage(await deps.buildPackage(packageOptions), opts.packageOnly, io);
    return 0;
  }
  if (opts.bucket === undefined) throw new ConfigError('FLAG_MISSING', '--bucket: expected the upload bucket that triggers the function, received nothing');
  // Every flag is checked, and a loop refused, before any AWS call.
  const request = checkDeployRequest({
    bucket: opts.bucket,
    prefix: opts.prefix ?? '',
    out: parseOut(opts.out),
    functionName: opts.functionName,
    arch,
    memory: integer('--memory', opts.memory),
    timeout: integer('--timeout', opts.timeout),
    snsTopicArn: opts.snsTopic,
    notifyEmail: opts.notifyEmail,
    logRetentionDays: integer('--log-retention-days', opts.logRetentionDays),
    fingerprint: await packageFingerprint(config),
  });

  // A missing profile is named as such, not as the SDK's warning and 'no credentials'.
  if (opts.profile) await assertProfileExists(opts.profile, io.env ?? process.env);
  const clients = deps.createClients(opts.region, opts.profile);
  const dryRun = opts.dryRun ?? false;
  const json = opts.json ?? false;
  const { account, offline } = await resolveAccountOrOffline(clients, dryRun);
  const plan = account
    ? await prepareDeploy(clients, request, account)
    : planDeploy(request, { accountId: PLACEHOLDER_ACCOUNT, region: opts.region ?? PLACEHOLDER_REGION, partition: 'aws' });
  // With --json, stdout holds the one document; the lines a person reads go to stderr.
  const say = (line: string) => (json ? io.stderr : io.stdout).write(`${line}\n`);
  const note = (line: string) => io.stderr.write(`${line}\n`);
  for (const warning of plan.warnings) note(`warning: ${warning}`);
  const deployOptions = (pkg: LambdaPackage) => ({
    dryRun,
    code: pkg,
    state: { fingerprint: pkg.fingerprint, cacheControl: config.s3.cacheControl },
    smokeTest: opts.smokeTest ?? true,
    onStep: (step: StepResult) => say(formatStep(step)),
    log: (line: string) => note(`  ${line}`),
  });
  const document = (steps: StepResult[]) => `${JSON.stringify(planDocument({ command: 'deploy', dryRun, functionName: plan.fn.name, account: plan.account, offline, warnings: plan.warnings }, steps), null, 2)}\n`;

  if (dryRun) {
    if (!json) say(formatPlan(plan, config, offline));
    let steps: StepResult[];
    if (offline) {
      steps = plannedSteps(plan, { fingerprint: await packageFingerprint(config), cacheControl: config.s3.cacheControl });
      if (!json) for (const step of steps) say(formatStep(step));
    } else {
      steps = await runDeploy(clients, plan, deployOptions(await deps.buildPackage(packageOptions)));
    }
    if (json) io.stdout.write(document(steps));
    return 0;
  }

  note(`Packaging the handler for ${arch}...`);
  const pkg = await deps.buildPackage(packageOptions);
  note(`Package: ${(pkg.zippedBytes / 1024 / 1024).toFixed(1)} MiB zipped, CodeSha256 ${pkg.sha256}`);
  say(`Deploying ${plan.fn.name} to account ${plan.account.accountId}, ${plan.account.region}`);
  const steps = await runDeploy(clients, plan, deployOptions(pkg));
  const changed = steps.filter((s) => s.status !== 'unchanged' && s.status !== 'passed').length;
  const resources = steps.filter((s) => s.status !== 'passed').length;
  say([
    '',
    changed === 0 ? 'Everything was already up to date.' : `Done: ${changed} of ${resources} steps changed something.`,
    `Function  ${plan.fn.arn}`,
    `Trigger   s3:ObjectCreated:* on s3://${request.bucket}/${request.prefix} -> s3://${request.out.bucket}/${request.out.prefix}<variant>/...`,
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/how-to-enable-disable-notification-intro.html
    `Try it    ${plan.testCommand}  (a new or changed trigger takes effect within minutes: S3 documents up to about five)`,
    `Logs      aws logs tail ${plan.logGroup.name} --follow`,
    '',
  ].join('\n'));
  if (json) io.stdout.write(document(steps));
  return 0;
}
