import { Option, type Command } from 'commander';
import { addAccountOptions, addPipelineOptions } from '../options.js';
import type { BackfillCommandOptions } from './backfill.js';
import type { DeployCommandOptions } from './deploy.js';
import type { DestroyCommandOptions } from './destroy.js';
import type { Io } from './run.js';

// Deploy and destroy load the IAM, Lambda, SNS, SQS, STS and CloudWatch Logs clients and esbuild: imported when one of
// them runs, so `img-pipeline ./photos` does not pay for them at startup.

/** Adds `deploy`, `destroy` and `backfill` to the program; main.ts stays a list of commands. */
export function registerDeployCommands(program: Command, io: Io, setExitCode: (code: number) => void): void {
  const deploy = program
    .command('deploy')
    .description('package the pipeline as an S3-triggered AWS Lambda and install it (safe to run again)')
    .optionsGroup('Deploy options:')
    .option('--bucket <name>', 'the upload bucket whose new objects trigger the function')
    .option('--prefix <prefix>', 'only keys under this prefix trigger it (default: the whole bucket)')
    .option('--out <s3uri>', 'where outputs go: s3://bucket[/prefix]')
    .option('--function-name <name>', 'Lambda function name', 'ImageProcessor')
    .addOption(new Option('--arch <arch>', 'Lambda architecture').choices(['arm64', 'x86_64']).default('arm64'))
    .option('--memory <mb>', 'memory in MB (CPU grows with it)', '1024')
    .option('--timeout <seconds>', 'timeout per invocation', '30')
    .option('--sns-topic <arn>', 'publish one JSON message per image to this existing topic')
    .option('--notify-email <address>', 'create a topic and subscribe this address (confirm the email AWS sends)')
    .option('--log-retention-days <days>', 'how long CloudWatch keeps the function\'s logs (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)', '30')
    .option('--no-smoke-test', 'skip the test invocation with S3\'s test event before the trigger is set (needs lambda:InvokeFunction)');
  addAccountOptions(addPipelineOptions(deploy))
    .optionsGroup('Deploy options:')
    .option('--dry-run', 'print the whole plan and change nothing (works without credentials)')
    .option('--json', 'print one JSON document of every resource (name, ARN, action, settings) on stdout; with --dry-run, the plan')
    .option('--package-only <file>', 'build the Lambda zip into <file> and stop')
    .option('--verbose', 'print stack traces of errors')
    .addHelpText('after', `
Refuses any setup where outputs could trigger the function again (same bucket, overlapping prefixes).

Examples:
  img-pipeline deploy --bucket my-uploads --prefix uploads/ --out s3://my-processed/ --watermark "© Acme" --notify-email me@example.com
  img-pipeline deploy --bucket my-uploads --prefix uploads/ --out s3://my-processed/ --dry-run
  img-pipeline deploy --bucket my-uploads --prefix uploads/ --out s3://my-processed/ --dry-run --json > plan.json
  img-pipeline deploy --package-only fn.zip`)
    .action(async (opts: DeployCommandOptions) => {
      const { deployCommand } = await import('./deploy.js');
      setExitCode(await deployCommand(opts, io));
    });

  const destroy = program
    .command('destroy')
    .description('remove what deploy created (its trigger entry, permission, function, role, queue, topic and log group)')
    .optionsGroup('Destroy options:')
    .option('--bucket <name>', 'the upload bucket the trigger is on')
    .option('--function-name <name>', 'Lambda function name', 'ImageProcessor');
  addAccountOptions(destroy)
    .optionsGroup('Destroy options:')
    .option('--dry-run', 'list what would be removed and change nothing (works without credentials)')
    .option('--json', 'print one JSON document of every resource (name, ARN, action) on stdout')
    .option('--keep-logs', 'keep the log group /aws/lambda/<function>')
    .option('--verbose', 'print stack traces of errors')
    .action(async (opts: DestroyCommandOptions) => {
      const { destroyCommand } = await import('./destroy.js');
      setExitCode(await destroyCommand(opts, io));
    });

  const backfill = program
    .command('backfill')
    .description('process what is already in the bucket on AWS: an S3 Batch Operations job invoking the deployed function')
    .argument('[source]', 's3://bucket/prefix/ to backfill (under the prefix the function was deployed for)')
    .optionsGroup('Backfill options:')
    .option('--function-name <name>', 'the function deploy created', 'ImageProcessor')
    .option('--wait', 'show progress until the job ends, then the failed keys (Ctrl-C stops watching, not the job)')
    .option('--status <job-id>', 'progress of a job started earlier (with --wait: watch it)')
    .option('--cancel <job-id>', 'cancel a job')
    .option('--dry-run', 'count, plan and estimate the cost; create and write nothing')
    .option('--manifest-only <file>', 'write the manifest of what needs work to <file> and stop (needs --out; no AWS control plane)')
    .option('--out <s3uri>', 'with --manifest-only: the destination whose outputs count as done')
    .addOption(new Option('--report <scope>', 'completion report: failed tasks or all').choices(['failed', 'all']).default('failed'))
    .option('--notify', 'publish one SNS message per task (off: a million objects would send a million messages)')
    .option('--priority <n>', 'job priority (higher runs first)', '10')
    .option('--yes', 'start the job without asking (needed without a terminal)')
    .option('--force', 'redo every object, even up-to-date ones or ones made with another config')
    .option('--json', 'print one JSON document on stdout');
  addAccountOptions(addPipelineOptions(backfill))
    .addOption(new Option('--poll-seconds <n>', 'seconds between DescribeJob calls with --wait').default('15').hideHelp())
    .optionsGroup('Backfill options:')
    .option('--verbose', 'print stack traces of errors')
    .addHelpText('after', `
The manifest holds only what still needs work (no outputs yet, stale ones, earlier failures), from the same
listing as \`run\`; pass the same --config and pipeline flags as to deploy. Before the job starts: an estimate of
time and cost, a prompt (--yes skips it), and one synchronous canary invocation.

Exit codes: 0 every task succeeded (or nothing to do), 1 some tasks failed, 2 refused, or the job failed or
was cancelled, 130 stopped watching.

Examples:
  img-pipeline backfill s3://my-uploads/uploads/ --function-name ImageProcessor --wait
  img-pipeline backfill s3://my-uploads/uploads/ --dry-run
  img-pipeline backfill --status <job-id> --wait
  img-pipeline backfill --cancel <job-id>
  img-pipeline backfill s3://my-uploads/uploads/ --out s3://my-processed/ --manifest-only manifest.csv`)
    .action(async (source: string | undefined, opts: BackfillCommandOptions) => {
      const { backfillCommand } = await import('./backfill.js');
      setExitCode(await backfillCommand(source, opts, io));
    });
}
