import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { describeError, ImgPipelineError, SetupError } from '../errors.js';
import { runCommand, type Io, type RunCommandOptions } from './commands/run.js';
import { registerDeployCommands } from './commands/register-deploy.js';
import { escapeControl } from './terminal-text.js';
import { addPipelineOptions, addS3Options, groupHelpOptions, refuseContradictions } from './options.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Exit codes: 0 success, 1 some inputs failed, 2 usage or config error, or a run that could not start (nothing written), 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** What each exit code means, for --help and the generated table in docs/cli.md. */
export const EXIT_MEANINGS: Record<keyof typeof EXIT, string> = {
  ok: 'all processed or skipped (or nothing found)',
  failed: 'some inputs failed, the others were processed',
  usage: 'usage or config error, or a run that could not start (no source listable, destination unusable or locked, credentials refused); nothing written',
  interrupted: 'interrupted (Ctrl-C)',
};

/** Where the documentation is: the package ships docs/, and the repository has the same folder. */
export const DOCS_POINTER = 'Docs: docs/ in the package (node_modules/img-pipeline/docs/), starting with docs/cli.md for every option.';

/**
 * Storage errors that mean nothing could start because of what was asked for: a missing input (local path
 * or bucket), an output folder that cannot be one or cannot be written, or S3 settings that cannot work.
 * They are raised before anything is written.
 */
export const USAGE_CODES = new Set(['LOCAL_NOT_FOUND', 'LOCAL_OUT_NOT_FOLDER', 'LOCAL_OUT_UNWRITABLE', 'S3_NO_SUCH_BUCKET', 'S3_NO_CREDENTIALS', 'S3_NO_REGION', 'S3_WRONG_REGION', 'OUT_LOCKED', 'DEPLOY_REFUSED', 'NO_CREDENTIALS', 'NO_REGION', 'NO_SUCH_BUCKET', 'WRONG_REGION', 'BACKFILL_REFUSED', 'NO_SUCH_JOB']);

/**
 * A stack for --verbose: its frames one a line, its head ("Name: message") escaped whole, since the
 * message is text from outside like the headline's. A stack whose head is not that (a message changed
 * after it was read) is escaped to one line, as its head cannot be told from its frames.
 */
function describeStack(error: unknown): string {
  const stack = error instanceof Error ? error.stack : undefined;
  if (stack === undefined) return escapeControl(String(error));
  const head = String(error);
  if (!stack.startsWith(head)) return escapeControl(stack);
  return `${escapeControl(head)}${escapeControl(stack.slice(head.length), { keepNewlines: true })}`;
}

/** Maps an error that escaped a command to its exit code, printing one line (the stack only with --verbose). */
export function reportFatal(error: unknown, stderr: NodeJS.WritableStream, verbose: boolean): number {
  // Every line escaped on its own: a line break inside a message (a quoted name, a lock's host) is text
  // from outside, and printed raw it would forge a line of output.
  const headline = escapeControl(error instanceof ImgPipelineError ? error.headline : describeError(error));
  const details = error instanceof ImgPipelineError && error.details.length > 0 ? `:\n  ${error.details.map((line) => escapeControl(line)).join('\n  ')}` : '';
  stderr.write(`img-pipeline: ${headline}${details}\n`);
  if (verbose && error instanceof Error) stderr.write(`${describeStack(error)}\n${error.cause ? `caused by: ${describeStack(error.cause)}\n` : ''}`);
  if (error instanceof SetupError) return EXIT.usage;
  if (error instanceof ImgPipelineError) {
    // Config, missing inputs and refused setups are found before anything is written.
    return error.kind === 'config' || USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.failed;
  }
  return EXIT.failed;
}

/** Builds the command tree; `io` is injected so tests can run it in-process. */
export function buildProgram(io: Io, setExitCode: (code: number) => void): Command {
  const program = new Command('img-pipeline')
    .description('Resize images into named variants (thumb 128x128, medium 512x512), watermark and encode them.\nInputs and outputs are local files and folders, or S3 prefixes (s3://bucket/prefix/).')
    .version(version)
    .usage('[run] <input...> [options]  |  <command> [options]')
    .showHelpAfterError('(run img-pipeline --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  const run = program
    .command('run', { isDefault: true })
    .description('process images: img-pipeline [run] <input...> --out <dir>')
    .argument('<input...>', 'image files or folders (scanned recursively; images picked by extension), or s3://bucket/prefix/')
    .optionsGroup('Run options:')
    .option('-o, --out <dir>', 'output folder or s3://bucket/prefix/', './processed')
    .addOption(new Option('-j, --concurrency <n>', 'images processed at once (default: number of CPU cores)'));
  addS3Options(addPipelineOptions(run))
    .optionsGroup('Run options:')
    .option('--force', 'reprocess inputs whose outputs are up to date')
    .option('--dry-run', 'list what would be processed and write nothing')
    .option('--json', 'print one JSON report on stdout (messages go to stderr)')
    .option('--report <file>', 'also write an HTML page of the run: thumbnails, sizes, savings, failures, totals')
    .option('--quiet', 'print only failures and the summary')
    .option('--verbose', 'print skipped files too, and the stack trace and cause of each error (on stderr, never in the --json report)')
    .addHelpText('after', `
Output layout: <out>/<variant>/<path relative to the input, with the format's extension>
  photos/2024/cat.PNG  ->  processed/thumb/2024/cat.jpg, processed/medium/2024/cat.jpg
  s3://in/uploads/2024/cat.PNG  ->  s3://out/thumb/2024/cat.jpg (keys relative to the input prefix)
  Scans never read outputs: <out>/<variant>/ folders and folders holding .img-pipeline.json (an earlier
  --out) are left out, and no output is ever written over an input.

S3: the standard AWS credential chain (environment, profiles, SSO, roles), or --profile. Outputs carry
  x-amz-meta-img-pipeline-output and are never processed again; a destination inside the source is refused.

Exit codes: ${Object.entries(EXIT).map(([name, code]) => `${code} ${EXIT_MEANINGS[name as keyof typeof EXIT]}`).join('; ')}.

Examples:
  img-pipeline ./photos --out ./processed
  img-pipeline ./photos --watermark "© Acme" -j 4
  img-pipeline ./photos --report report.html        (a page of thumbnails, savings and failures)
  img-pipeline photo.jpg --format jpeg,webp,avif --sizes thumb=128x128,medium=512x512,large=1024x1024
  img-pipeline s3://my-uploads/uploads/ --out s3://my-processed/ --dry-run --json
  img-pipeline s3://bucket/in/ --out s3://bucket/out/ --endpoint http://127.0.0.1:9000 --region us-east-1`)
    .action(async (inputs: string[], opts: RunCommandOptions, command: Command) => {
      // commander keeps the raw argv but leaves it out of its types; only it shows `--x` and `--no-x` together.
      refuseContradictions((command.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? []);
      setExitCode(await runCommand(inputs, opts, io));
    });
  registerDeployCommands(program, io, setExitCode);
  groupHelpOptions(program);
  // `run` is the default command, so its options are the ones most people need: point to them here.
  program.addHelpText('after', `
"run" is the default command: \`img-pipeline ./photos\` is \`img-pipeline run ./photos\`.

Examples:
  img-pipeline ./photos --out ./processed
  img-pipeline ./photos --out ./processed --watermark "© Acme" -j 4
  img-pipeline photo.jpg --format jpeg,webp,avif --sizes thumb=128x128,medium=512x512,large=1024x1024
  img-pipeline ./photos --dry-run
  img-pipeline s3://my-uploads/uploads/ --out s3://my-processed/

Run \`img-pipeline run --help\` for all options: sizes, formats, quality, watermark, metadata, limits, S3,
--force, --dry-run, --json, --quiet and --verbose. \`img-pipeline deploy --help\` covers the Lambda.

${DOCS_POINTER}`);
  return program;
}

/** The CLI entry: parses argv, runs one command, sets the exit code. */
export async function main(argv: string[]): Promise<void> {
  // The watermark font is passed to sharp as a file; this config keeps the machine's fonts and hinting
  // rules out, so text renders the same here as in the Lambda, which ships the same file.
  process.env['FONTCONFIG_FILE'] ??= fileURLToPath(new URL('../../assets/fonts.conf', import.meta.url));
  // We support Node 20 (package.json engines); the AWS SDK's eight-line notice about its own future Node
  // requirement would otherwise open every S3 run, deploy and destroy. A user who sets the variable keeps
  // their choice.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  // `img-pipeline ./photos | head`: a reader that went away is not an error worth a stack trace, nor a
  // reason to drop the run half-way (and exit 0 for work not done). What that stream would have shown is
  // dropped; the run goes on, releases its lock and exits with its own code.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      stream.write = (() => true) as typeof stream.write;
    });
  }
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    // The first Ctrl-C stops scheduling and lets writes in flight finish; a second one quits at once.
    // Outputs are renamed into place whole, so quitting mid-write leaves at most a hidden temp file.
    if (interrupts > 1) {
      process.stderr.write('\nimg-pipeline: stopped immediately. The outputs written so far are complete; no partial file is left at an output path. Run again to finish the rest.\n');
      process.exit(EXIT.interrupted);
    }
    process.stderr.write('\nStopping: finishing the images in flight (Ctrl-C again to quit now)...\n');
    controller.abort();
  });
  const io: Io = { cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr, signal: controller.signal };
  const program = buildProgram(io, (code) => {
    process.exitCode = code;
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    process.exitCode = reportFatal(error, process.stderr, argv.includes('--verbose'));
  }
}
