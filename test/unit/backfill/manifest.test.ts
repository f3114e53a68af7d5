import { describe, expect, it } from 'vitest';
import { encodeManifestKey, manifestLine, parseManifestLine } from '../../../src/backfill/manifest.js';
import { parseCsv, reportedTask } from '../../../src/backfill/report.js';

async function* chunks(...parts: string[]): AsyncGenerator<string> {
  yield* parts;
}

async function records(...parts: string[]): Promise<string[][]> {
  const all: string[][] = [];
  for await (const record of parseCsv(chunks(...parts))) all.push(record);
  return all;
}

// Batch Operations manifests are `bucket,key` with the key URL-encoded:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-create-job.html
describe('the manifest CSV encoding', () => {
  const keys = ['a b.jpg', 'a+b.jpg', '100%.jpg', 'x,y.jpg', 'say "cheese".jpg', 'line\nbreak.jpg', 'crlf\r\n.jpg', 'café/日本/ü.png', 'emoji 📷.webp', 'dir/sub dir/x.png'];

  it.each(keys)('%j: one line, one comma, no quote or line break, and it round-trips', (key) => {
    const line = manifestLine('my-bucket', key);
    expect(line.endsWith('\n')).toBe(true);
    const body = line.slice(0, -1);
    expect(body.split(',')).toHaveLength(2);
    expect(body).not.toMatch(/["\r\n ]|[^\x20-\x7e]/);
    expect(parseManifestLine(body)).toEqual({ bucket: 'my-bucket', key });
  });

  it('encodes space as %20 and + as %2B (a "+" would read as a space), keeps slashes', () => {
    expect(encodeManifestKey('a b+c/d%e,f')).toBe('a%20b%2Bc/d%25e%2Cf');
  });
});

describe('the completion report CSV', () => {
  it('reads quoted fields with doubled quotes, commas and line breaks, split across chunks', async () => {
    expect(await records('b,k1,,failed,200,PermanentFailure,"Lambda returned function error: {""errorMessage"":""x, y""}"\nb,k2', ',,succeeded,200,,"ok\nstill ok"\r\n')).toEqual([
      ['b', 'k1', '', 'failed', '200', 'PermanentFailure', 'Lambda returned function error: {"errorMessage":"x, y"}'],
      ['b', 'k2', '', 'succeeded', '200', '', 'ok\nstill ok'],
    ]);
  });

  it('decodes the key and takes whichever of ErrorCode/HTTPStatusCode is a number for the status', () => {
    expect(reportedTask(['b', 'uploads/a%20b.jpg', '', 'failed', '200', 'PermanentFailure', 'm'])).toEqual({ bucket: 'b', key: 'uploads/a b.jpg', status: 'failed', errorCode: 'PermanentFailure', httpStatus: '200', message: 'm' });
    expect(reportedTask(['b', 'k', '', 'failed', 'TemporaryFailure', '500', 'm'])).toMatchObject({ errorCode: 'TemporaryFailure', httpStatus: '500' });
  });
});
