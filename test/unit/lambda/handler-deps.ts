// The handler's dependencies for unit tests: the default config, a sink that refuses writes, and clients
// that the tests' aws-sdk-client-mock instances answer for.
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { validateConfig } from '../../../src/config/load.js';
import type { HandlerDeps } from '../../../src/lambda/process-event.js';
import { readLambdaSettings } from '../../../src/lambda/settings.js';
import type { Pipeline } from '../../../src/pipeline/process.js';
import type { Sink } from '../../../src/storage/types.js';

const sink: Sink = {
  uri: 's3://out/',
  list: async function* () {},
  readText: async () => undefined,
  write: async () => {
    throw new Error('nothing should be written');
  },
  uriOf: (key) => `s3://out/${key}`,
};

/** Deps whose log lines go to `lines`, with the Lambda environment `env`. */
export function handlerDeps(lines: string[], env: Record<string, string>): HandlerDeps {
  const pipeline: Pipeline = { config: validateConfig({}, 'test'), watermark: undefined, fingerprint: 'f' };
  return {
    s3: new S3Client({ region: 'us-east-1' }),
    sns: new SNSClient({ region: 'us-east-1' }),
    pipeline,
    settings: readLambdaSettings(env),
    sink,
    log: (line) => lines.push(line),
  };
}
