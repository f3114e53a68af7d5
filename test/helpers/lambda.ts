import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import yauzl from 'yauzl';
import { REPO_ROOT } from './paths.js';

export const LAMBDA_RUNNER = join(REPO_ROOT, 'scripts', 'lambda-runner.mjs');

export interface ZipEntryInfo {
  name: string;
  /** The Unix mode stored in the entry's external attributes. */
  mode: number;
  size: number;
  mtime: Date;
}

/** Unpacks a zip (from memory) into `dir` with yauzl; returns its entries in zip order. */
export function unzipTo(zip: Buffer, dir: string): Promise<ZipEntryInfo[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, archive) => {
      if (error || !archive) return reject(error ?? new Error('no archive'));
      const entries: ZipEntryInfo[] = [];
      archive.on('error', reject);
      archive.on('end', () => resolve(entries));
      archive.on('entry', (entry: yauzl.Entry) => {
        entries.push({ name: entry.fileName, mode: entry.externalFileAttributes >>> 16, size: entry.uncompressedSize, mtime: entry.getLastModDate() });
        if (entry.fileName.endsWith('/')) return archive.readEntry();
        archive.openReadStream(entry, (streamError, stream) => {
          if (streamError || !stream) return reject(streamError ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            const path = join(dir, entry.fileName);
            mkdir(dirname(path), { recursive: true })
              .then(() => writeFile(path, Buffer.concat(chunks)))
              .then(() => archive.readEntry(), reject);
          });
        });
      });
      archive.readEntry();
    });
  });
}

export interface Published {
  topicArn: string;
  subject: string | undefined;
  message: unknown;
}

export interface SnsStub {
  endpoint: string;
  messages: Published[];
  stop(): Promise<void>;
}

/** A loopback stand-in for SNS (the SDK's query protocol): records every Publish, answers like SNS. */
export async function startSnsStub(): Promise<SnsStub> {
  const messages: Published[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const form = new URLSearchParams(body);
      if (form.get('Action') !== 'Publish') {
        response.writeHead(400, { 'content-type': 'text/xml' }).end(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>${form.get('Action')}</Message></Error></ErrorResponse>`);
        return;
      }
      messages.push({ topicArn: form.get('TopicArn') ?? '', subject: form.get('Subject') ?? undefined, message: JSON.parse(form.get('Message') ?? 'null') as unknown });
      const id = `msg-${messages.length}`;
      response.writeHead(200, { 'content-type': 'text/xml' }).end(
        `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${id}</MessageId></PublishResult><ResponseMetadata><RequestId>${id}</RequestId></ResponseMetadata></PublishResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    messages,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface LambdaRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Each stdout line that is JSON (the handler's log lines). */
  logs: Record<string, unknown>[];
}

/** Runs the unpacked handler on `event` in a separate `node` process, as the Lambda runtime would. */
export async function runLambda(dir: string, event: unknown, env: NodeJS.ProcessEnv, eventFile: string): Promise<LambdaRun> {
  await writeFile(eventFile, JSON.stringify(event));
  return new Promise((resolve) => {
    execFile(process.execPath, [LAMBDA_RUNNER, dir, eventFile], { env, cwd: dir, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const logs = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, logs });
    });
  });
}
