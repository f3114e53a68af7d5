import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { BIN } from './paths.js';

const isRoot = process.getuid?.() === 0;
/** setpriv(1) drops root to `nobody` for one command (util-linux). */
const SETPRIV = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/**
 * Whether a test can run the CLI without root's powers: root reads and writes any folder whatever its mode,
 * so a run as root needs setpriv to see "permission denied" as users do.
 */
export const canRunUnprivileged = !isRoot || spawnSync(SETPRIV[0]!, ['--version'], { stdio: 'ignore' }).status === 0;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (`node bin/img-pipeline.js`) to completion with pipes for stdout/stderr (so not a TTY).
 * `unprivileged`: as `nobody` when the tests run as root (see canRunUnprivileged; the files it needs must
 * be open to others).
 */
export function runCli(args: readonly string[], options: { cwd: string; timeoutMs?: number; unprivileged?: boolean; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  const [command, ...prefix] = options.unprivileged && isRoot ? [...SETPRIV, process.execPath] : [process.execPath];
  return new Promise((resolve, reject) => {
    execFile(
      command!,
      [...prefix, BIN, ...args],
      { cwd: options.cwd, timeout: options.timeoutMs ?? 30_000, env: { ...(options.env ?? process.env), NO_COLOR: undefined, FORCE_COLOR: undefined }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

/** Starts the CLI without waiting, for tests that signal it mid-run. */
export function spawnCli(args: readonly string[], options: { cwd: string }): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Polls until `check` is true (or throws after `timeoutMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
