import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { createS3Client, customEndpoint } from '../../../src/storage/s3-client.js';

const s3 = (input: Record<string, unknown> = {}) => configSchema.parse({ s3: { region: 'us-east-1', ...input } }).s3;
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

async function settings(client: ReturnType<typeof createS3Client>) {
  const { config } = client;
  return {
    forcePathStyle: config.forcePathStyle,
    followRegionRedirects: config.followRegionRedirects,
    requestChecksumCalculation: await config.requestChecksumCalculation(),
    responseChecksumValidation: await config.responseChecksumValidation(),
    maxAttempts: await config.maxAttempts(),
  };
}

describe('customEndpoint: the one decision behind path-style and checksums', () => {
  it('takes --endpoint first, then AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, naming where it came from', () => {
    const env = { AWS_ENDPOINT_URL_S3: 'http://localhost:4566', AWS_ENDPOINT_URL: 'http://localhost:1' };
    expect(customEndpoint({ endpoint: 'http://127.0.0.1:9000' }, env)).toEqual({ url: 'http://127.0.0.1:9000', origin: '--endpoint' });
    expect(customEndpoint({}, env)).toEqual({ url: 'http://localhost:4566', origin: 'AWS_ENDPOINT_URL_S3' });
    expect(customEndpoint({}, { AWS_ENDPOINT_URL: 'http://localhost:1' })).toEqual({ url: 'http://localhost:1', origin: 'AWS_ENDPOINT_URL' });
    expect(customEndpoint({}, { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
    expect(customEndpoint({}, {})).toBeUndefined();
  });
});

describe('createS3Client', () => {
  it('talks to AWS with virtual-hosted addressing, upload checksums, region redirects followed and --max-attempts', async () => {
    const client = createS3Client(s3({ maxAttempts: 7 }), { credentials });
    expect(await settings(client)).toEqual({
      forcePathStyle: false,
      followRegionRedirects: true,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      // Not on downloads: a CRC64 in JavaScript over every input byte costs more than it protects (s3-client.ts).
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 7,
    });
    client.destroy();
  });

  it('uses path-style and checksums only where required for --endpoint and for AWS_ENDPOINT_URL_S3 alike', async () => {
    const expected = { forcePathStyle: true, followRegionRedirects: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 5 };
    const flag = createS3Client(s3({ endpoint: 'http://127.0.0.1:9000' }), { credentials });
    const variable = createS3Client(s3(), { credentials, env: { AWS_ENDPOINT_URL_S3: 'http://localhost:9000' } });
    expect(await settings(flag)).toEqual(expected);
    expect(await settings(variable)).toEqual(expected);
    flag.destroy();
    variable.destroy();
  });
});

describe('s3.endpoint in the schema', () => {
  it('accepts only http:// and https:// URLs, with a message that says so', () => {
    expect(validateConfig({ s3: { endpoint: 'https://acct.r2.cloudflarestorage.com' } }, 'test').s3.endpoint).toBe('https://acct.r2.cloudflarestorage.com');
    for (const bad of ['localhost:9000', '127.0.0.1:9000', 'ftp://host/']) {
      expect(() => validateConfig({ s3: { endpoint: bad } }, 'test')).toThrow(`s3.endpoint: expected an http:// or https:// URL, such as http://127.0.0.1:9000, received "${bad}"`);
    }
  });
});
