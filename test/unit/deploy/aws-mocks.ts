// Shared set-up for the control-plane tests: every AWS client mocked, and the calls of all of them in the
// order they were made, as "service:Command" names.
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { createAwsClients } from '../../../src/cli/commands/deploy.js';
import type { AwsClients } from '../../../src/deploy/aws.js';

export const mocks = {
  sts: mockClient(STSClient),
  iam: mockClient(IAMClient),
  lambda: mockClient(LambdaClient),
  s3: mockClient(S3Client),
  sqs: mockClient(SQSClient),
  sns: mockClient(SNSClient),
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

/** An SDK-style error, as the SDK throws it. */
export function awsError(name: string, message = name, status = 400, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $response: { headers } });
}

export { captureIo, type CapturedIo } from '../../helpers/io.js';
