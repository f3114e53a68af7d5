import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { describeError, ImgPipelineError } from '../errors.js';
import { runCommand, type Io, type RunCommandOptions } from './commands/run.js';
import { addPipelineOptions } from './options.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Exit codes: 0 success, 1 some inputs failed, 2 usage or config error (nothing written), 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Maps an error that escaped a command to its exit code, printing one line (the stack only with --verbose). */
export function reportFatal(error: unknown, stderr: NodeJS.WritableStream, verbose: boolean): number {
  stderr.write(`img-pipeline: ${describeError(error)}\n`);
  if (verbose && error instanceof Error) stderr.write(`${error.stack ?? ''}\n${error.cause ? `caused by: ${String((error.cause as Error).stack ?? error.cause)}\n` : ''}`);
  if (error instanceof ImgPipelineError) {
    // Config, missing inputs and refused setups are found before anything is written.
    return error.kind === 'config' || error.code === 'LOCAL_NOT_FOUND' ? EXIT.usage : EXIT.failed;
  }
  return EXIT.failed;
}

/** Builds the command tree; `io` is injected so tests can run it in-process. */
export function buildProgram(io: Io, setExitCode: (code: number) => void): Command {
  const program = new Command('img-pipeline')
    .description('Resize images into named variants (thumb 128x128, medium 512x512), watermark and encode them.\nInputs and outputs are local files and folders.')
    .version(version)
    .showHelpAfterError('(run img-pipeline --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  const run = program
    .command('run', { isDefault: true })
    .description('process images: img-pipeline [run] <input...> --out <dir>')
    .argument('<input...>', 'image files or folders (scanned recursively; images picked by extension)')
    .option('-o, --out <dir>', 'output folder', './processed')
    .addOption(new Option('-j, --concurrency <n>', 'images processed at once (default: number of CPU cores)'));
  addPipelineOptions(run)
    .option('--force', 'reprocess inputs whose outputs are up to date')
    .option('--dry-run', 'list what would be processed and write nothing')
    .option('--json', 'print one JSON report on stdout (messages go to stderr)')
    .option('--quiet', 'print only failures and the summary')
    .option('--verbose', 'print skipped files too, and stack traces of errors')
    .addHelpText('after', `
Output layout: <out>/<variant>/<path relative to the input, with the format's extension>
  photos/2024/cat.PNG  ->  processed/thumb/2024/cat.jpg, processed/medium/2024/cat.jpg

Exit codes: 0 all processed or skipped, 1 some inputs failed, 2 usage or config error, 130 interrupted.

Examples:
  img-pipeline ./photos --out ./processed
  img-pipeline ./photos --watermark "© Acme" -j 4
  img-pipeline photo.jpg --format jpeg,webp,avif --sizes thumb=128x128,medium=512x512,large=1024x1024`)
    .action(async (inputs: string[], opts: RunCommandOptions) => {
      setExitCode(await runCommand(inputs, opts, io));
    });
  return program;
}

/** The CLI entry: parses argv, runs one command, sets the exit code. */
export async function main(argv: string[]): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    // The first Ctrl-C stops scheduling and lets writes in flight finish; a second one quits at once.
    if (interrupts > 1) process.exit(EXIT.interrupted);
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
