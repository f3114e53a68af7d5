// Shared set-up for the control-plane tests: every AWS client mocked, and the calls of all of them in the
// order they were made, as "service:Command" names.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import { createAwsClients } from '../../../src/cli/commands/deploy.js';
import type { AwsClients } from '../../../src/deploy/aws.js';

export const mocks = {
  sts: mockClient(STSClient),
  iam: mockClient(IAMClient),
  lambda: mockClient(LambdaClient),
  s3: mockClient(S3Client),
  sqs: mockClient(SQSClient),
  sns: mockClient(SNSClient),
  logs: mockClient(CloudWatchLogsClient),
};

export function resetMocks(): void {
  for (const mock of Object.values(mocks)) mock.reset();
}

export interface Call {
  name: string;
  input: Record<string, unknown>;
}

/** Every call to every client, in order: `iam:CreateRole`, with the command's input. */
export function calls(): Call[] {
  const all = Object.entries(mocks).flatMap(([service, mock]) =>
    mock.calls().map((call) => {
      const command = call.args[0] as unknown as { constructor: { name: string }; input: Record<string, unknown> };
      return { id: (call as unknown as { callId: number }).callId, name: `${service}:${command.constructor.name.replace(/Command$/, '')}`, input: command.input };
    }));
  return all.sort((a, b) => a.id - b.id).map(({ name, input }) => ({ name, input }));
}

export function callNames(): string[] {
  return calls().map((c) => c.name);
}

const WRITE = /:(Create|Put|Update|Add|Remove|Delete|Set|Subscribe|Tag|Upload)/;

/** The calls that change something. */
export function writeNames(): string[] {
  return callNames().filter((n) => WRITE.test(n));
}

/** Clients as the CLI builds them; the mocks replace `send` on every instance. */
export function clients(): AwsClients {
  return createAwsClients('us-east-1', undefined);
}

/** An SDK-style error, as the SDK throws it; `fields` are the other members of the error body. */
export function awsError(name: string, message = name, status = 400, headers: Record<string, string> = {}, fields: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $response: { headers }, ...fields });
}

export { captureIo, type CapturedIo } from '../../helpers/io.js';

/**
 * Runs `run` on vitest's fake clock, advancing it through every wait (p-retry's backoff, the SDK
 * waiters' polls), so minutes of AWS eventual consistency take no real time. Returns how long the fake
 * clock advanced, in ms, with the outcome.
 */
export async function onFakeClock<T>(run: () => Promise<T>): Promise<{ value?: T; error?: unknown; elapsedMs: number }> {
  vi.useFakeTimers();
  try {
    const start = Date.now();
    let outcome: { value?: T; error?: unknown } | undefined;
    const settled = run().then((value) => (outcome = { value }), (error: unknown) => (outcome = { error }));
    // The command also does real I/O (the config file), so the clock moves a second at a time, with a
    // real turn of the event loop in between, until it settles (or ten fake hours have passed).
    for (let second = 0; outcome === undefined && second < 36_000; second += 1) {
      await vi.advanceTimersByTimeAsync(1000);
      await new Promise((resolve) => realSetImmediate(resolve));
    }
    await settled;
    return { ...outcome, elapsedMs: Date.now() - start };
  } finally {
    vi.useRealTimers();
  }
}

const realSetImmediate = setImmediate;
