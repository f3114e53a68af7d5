import { PassThrough } from 'node:stream';
import type { Io } from '../../src/cli/commands/run.js';

/** An Io whose stdout and stderr are collected, for commands run in-process. */
export interface CapturedIo extends Io {
  out(): string;
  err(): string;
}

export function captureIo(): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return {
    cwd: process.cwd(),
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
    signal: new AbortController().signal,
    out: () => out,
    err: () => err,
  };
}
