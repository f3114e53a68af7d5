import { createHash, randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ImgPipelineError } from '../../../src/errors.js';
import { LOCK_KEY, MAX_SOURCE_METADATA, OUTPUT_MARKER, outputMetadata, SOURCE_ETAG_METADATA, SOURCE_KEY_METADATA, STATE_KEY } from '../../../src/pipeline/layout.js';
import { acquireRunLock } from '../../../src/runner/run-lock.js';
import { openSink, openSources, refuseLoop } from '../../../src/storage/resolve.js';
import { folderPrefix, parseS3Uri, S3Sink, S3Source, toStorageError } from '../../../src/storage/s3.js';
import type { SourceEntry } from '../../../src/storage/types.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { getObject, headObject, listKeys, putObject, startS3Server, testClient, type S3Server } from '../../helpers/s3-server.js';
import { rejection } from '../../helpers/errors.js';

let server: S3Server;
let proxy: FaultProxy;
/** Goes through the proxy, so tests can count and break requests. */
let client: S3Client;
/** Goes straight to the server, for set-up and checks. */
let direct: S3Client;

beforeAll(async () => {
  server = await startS3Server(['unit', 'other']);
  proxy = await startFaultProxy(server.endpoint);
  client = testClient(proxy.endpoint, { maxAttempts: 3 });
  direct = testClient(server.endpoint);
  await Promise.all([
    putObject(direct, 'unit', 'in/a.jpg', 'aaaa'),
    putObject(direct, 'unit', 'in/2024/b.png', 'bb'),
    putObject(direct, 'unit', 'in/2024/', ''),
    putObject(direct, 'unit', 'in/my photo é+1.jpg', 'spaces, unicode and plus'),
    putObject(direct, 'unit', 'in/c.txt', 'c'),
    putObject(direct, 'unit', 'in/d.webp', 'dd'),
    putObject(direct, 'unit', 'in2/not-mine.jpg', 'x'),
    putObject(direct, 'unit', 'in/ours.jpg', 'an output', { [OUTPUT_MARKER]: 'true' }),
  ]);
});

afterAll(async () => {
  client?.destroy();
  direct?.destroy();
  await proxy?.close();
  await server?.stop();
});

afterEach(() => proxy.reset());

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

const caught = (promise: Promise<unknown>) => rejection(promise, ImgPipelineError);

describe('parseS3Uri', () => {
  it('splits bucket and prefix, keeping the prefix verbatim', () => {
    expect(parseS3Uri('s3://my-uploads/uploads/2024/')).toEqual({ bucket: 'my-uploads', prefix: 'uploads/2024/' });
    expect(parseS3Uri('s3://b/my photos/é+1')).toEqual({ bucket: 'b', prefix: 'my photos/é+1' });
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Uri('s3://bucket/')).toEqual({ bucket: 'bucket', prefix: '' });
  });

  it('refuses anything that is not s3://bucket[/prefix] with a ConfigError naming what it received', () => {
    for (const bad of ['s3://', 's3:///key', 'http://b/k', 'b/k', 's3://-bucket/x']) {
      expect(() => parseS3Uri(bad)).toThrow(ConfigError);
      expect(() => parseS3Uri(bad)).toThrow(`received "${bad}"`);
    }
  });

  it('treats a prefix without a trailing slash as a folder for destinations', () => {
    expect(folderPrefix('out')).toBe('out/');
    expect(folderPrefix('out/')).toBe('out/');
    expect(folderPrefix('')).toBe('');
  });
});

describe('refuseLoop', () => {
  it('refuses a destination inside the source prefix in the same bucket, explaining the loop', () => {
    const error = (() => {
      try {
        refuseLoop('s3://b/uploads/', 's3://b/uploads/processed/');
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.code).toBe('S3_LOOP');
    expect(error?.message).toContain('inside the source s3://b/uploads/');
    expect(error?.message).toContain('processed again');
    expect(() => refuseLoop('s3://b/', 's3://b/processed/')).toThrow(ConfigError);
    expect(() => refuseLoop('s3://b/uploads', 's3://b/uploads')).toThrow(ConfigError);
  });

  it('catches outputs that land inside the source through a variant folder', () => {
    expect(() => refuseLoop('s3://b/site/thumb/', 's3://b/site/', ['thumb', 'medium'])).toThrow('s3://b/site/thumb/');
    expect(() => refuseLoop('s3://b/site/thumb/', 's3://b/site/', ['small'])).not.toThrow();
  });

  it('allows other buckets, sibling prefixes and anything local', () => {
    expect(() => refuseLoop('s3://b/uploads/', 's3://c/uploads/')).not.toThrow();
    expect(() => refuseLoop('s3://b/in', 's3://b/in2/')).not.toThrow();
    expect(() => refuseLoop('s3://b/uploads/', 's3://b/')).not.toThrow();
    expect(() => refuseLoop('./photos', 's3://b/')).not.toThrow();
    expect(() => refuseLoop('s3://b/', './processed')).not.toThrow();
  });

  it('is checked by openSources before any request is made', async () => {
    await expect(openSources(['s3://unit/in/'], 's3://unit/in/out/', { s3: { client, cacheControl: 'x' } })).rejects.toThrow(ConfigError);
    expect(proxy.requests).toEqual([]);
  });
});

describe('S3Source', () => {
  it('lists keys relative to the prefix across pages, with URI, size, time and ETag', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/', pageSize: 2 });
    const entries = await collect(source.list());
    expect(entries.map((e) => e.key).sort()).toEqual(['2024/', '2024/b.png', 'a.jpg', 'c.txt', 'd.webp', 'my photo é+1.jpg', 'ours.jpg']);
    const a = entries.find((e) => e.key === 'a.jpg')!;
    expect(a).toMatchObject({ uri: 's3://unit/in/a.jpg', size: 4 });
    expect(a.etag).toMatch(/^"[0-9a-f]{32}"$/);
    // LastModified is whole seconds: a source counts as modified at the end of its second.
    const stored = (await listKeys(direct, 'unit', 'in/a.jpg'))[0]!;
    expect(a.mtimeMs).toBe(stored.lastModified + 999);
    expect(Math.abs(a.mtimeMs - Date.now())).toBeLessThan(120_000);
    expect(proxy.requests.filter((r) => r.op === 'list').length).toBe(4);
  });

  it('lists in S3 byte order (UTF-8), the order resume relies on', async () => {
    const keys = (await collect(new S3Source({ client, bucket: 'unit', prefix: 'in/' }).list())).map((e) => e.key);
    expect(keys).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it('ends a listing quietly when the signal is aborted while a page is on its way', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/', pageSize: 2 });
    proxy.rule = (r) => (r.op === 'list' && r.query.get('continuation-token') ? { kind: 'delay', ms: 2000 } : undefined);
    const controller = new AbortController();
    const keys: string[] = [];
    const started = Date.now();
    for await (const entry of source.list(controller.signal)) {
      keys.push(entry.key);
      if (keys.length === 2) setTimeout(() => controller.abort(), 50);
    }
    expect(keys).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(1500);
    // The first page asked for when the source is opened, too: Ctrl-C there is not an error.
    await expect(S3Source.open({ client, bucket: 'unit', prefix: 'in/' }, controller.signal).ready).resolves.toBeUndefined();
  });

  it('lists from the page asked for when it was opened: that first page checks the bucket, and is not asked for twice', async () => {
    const source = S3Source.open({ client, bucket: 'unit', prefix: 'in/', pageSize: 2 });
    await source.ready;
    expect(proxy.requests.filter((r) => r.op === 'list')).toHaveLength(1);
    const keys = (await collect(source.list())).map((e) => e.key);
    expect(keys).toEqual(['2024/', '2024/b.png', 'a.jpg', 'c.txt', 'd.webp', 'my photo é+1.jpg', 'ours.jpg']);
    // Four pages of two, the first of them the one open asked for; a second listing starts afresh.
    expect(proxy.requests.filter((r) => r.op === 'list')).toHaveLength(4);
    expect(await collect(source.list())).toHaveLength(7);
    expect(proxy.requests.filter((r) => r.op === 'list')).toHaveLength(8);
    expect(new S3Source({ client, bucket: 'unit', prefix: 'in/' }).ready).toBeUndefined();
  });

  it('streams: the first entry arrives before the later pages are requested', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/', pageSize: 1 });
    for await (const entry of source.list()) {
      expect(entry.key).toBeTruthy();
      break;
    }
    // The first page, and at most the one prefetched after it, out of seven.
    expect(proxy.requests.filter((r) => r.op === 'list').length).toBeLessThanOrEqual(2);
  });

  it('reads "in" as the key in and the folder in/, never in2/', async () => {
    const keys = (await collect(new S3Source({ client, bucket: 'unit', prefix: 'in' }).list())).map((e) => e.key);
    expect(keys).toContain('a.jpg');
    expect(keys).not.toContain('not-mine.jpg');
    const single = await collect(new S3Source({ client, bucket: 'unit', prefix: 'in/2024/b.png' }).list());
    expect(single).toEqual([expect.objectContaining({ key: 'b.png', uri: 's3://unit/in/2024/b.png' })]);
  });

  it('reads keys with spaces, unicode and + byte for byte, and counts the bytes', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = (await collect(source.list())).find((e) => e.key === 'my photo é+1.jpg')!;
    expect((await source.read(entry)).toString()).toBe('spaces, unicode and plus');
    expect(source.bytesTransferred).toBe(24);
  });

  it('refuses an object that carries the output marker, as INPUT_IS_OUTPUT', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = (await collect(source.list())).find((e) => e.key === 'ours.jpg')!;
    const error = await caught(source.read(entry));
    expect(error.code).toBe('INPUT_IS_OUTPUT');
    expect(source.bytesTransferred).toBe(0);
  });

  it('downloads again when a body is cut off midway, and fails with a reason when it always is', async () => {
    await putObject(direct, 'unit', 'cut/big.jpg', Buffer.alloc(256 * 1024, 7));
    const source = new S3Source({ client, bucket: 'unit', prefix: 'cut/' });
    const [entry] = await collect(source.list());
    let cuts = 0;
    proxy.rule = (r) => (r.op === 'get' && cuts++ === 0 ? { kind: 'cut-response' } : undefined);
    const data = await source.read(entry!);
    expect(data.length).toBe(256 * 1024);
    expect(data.every((b) => b === 7)).toBe(true);
    expect(cuts).toBe(2);

    proxy.rule = (r) => (r.op === 'get' ? { kind: 'cut-response' } : undefined);
    proxy.requests.length = 0;
    const error = await caught(source.read(entry!));
    expect(error.code).toBe('S3_READ_INCOMPLETE');
    expect(error.message).toContain('s3://unit/cut/big.jpg');
    // As many downloads as the client's maxAttempts (--max-attempts): 3 here, 2 below.
    expect(proxy.requests.filter((r) => r.op === 'get')).toHaveLength(3);
    const twice = testClient(proxy.endpoint, { maxAttempts: 2 });
    try {
      proxy.requests.length = 0;
      expect((await caught(new S3Source({ client: twice, bucket: 'unit', prefix: 'cut/' }).read(entry!))).message).toContain('broke off 2 times');
      expect(proxy.requests.filter((r) => r.op === 'get')).toHaveLength(2);
    } finally {
      twice.destroy();
    }
  });

  it('stops a download on abort and says it was interrupted, not failed', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = (await collect(source.list())).find((e) => e.key === 'a.jpg')!;
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'delay', ms: 2000 } : undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const error = await caught(source.read(entry, controller.signal));
    expect(error.code).toBe('INTERRUPTED');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('downloads only the version it listed (If-Match), and says so when the object changed since', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = (await collect(source.list())).find((e) => e.key === 'a.jpg')!;
    await source.read(entry);
    expect(proxy.requests.find((r) => r.op === 'get')!.headers['if-match']).toBe(entry.etag);
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'error', status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' } : undefined);
    const error = await caught(source.read(entry));
    expect(error.code).toBe('S3_CHANGED');
    expect(error.message).toContain('s3://unit/in/a.jpg changed since it was listed');
  });

  it('fails a read with "AccessDenied: s3:GetObject on s3://bucket/key"', async () => {
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = (await collect(source.list())).find((e) => e.key === 'a.jpg')!;
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' } : undefined);
    const error = await caught(source.read(entry));
    expect(error.code).toBe('S3_ACCESS_DENIED');
    expect(error.message).toBe('AccessDenied: s3:GetObject on s3://unit/in/a.jpg');
  });

  it('checks the bucket up front: NoSuchBucket, a bucket in another region, AccessDenied', async () => {
    const missing = await caught(S3Source.open({ client, bucket: 'nope', prefix: 'x/' }).ready);
    expect(missing.code).toBe('S3_NO_SUCH_BUCKET');
    expect(missing.message).toContain('the bucket nope does not exist');

    proxy.rule = () => ({ kind: 'error', status: 301, code: 'PermanentRedirect', message: 'The bucket you are attempting to access must be addressed using the specified endpoint.', headers: { 'x-amz-bucket-region': 'eu-west-1' }, extra: { Endpoint: 'unit.s3.eu-west-1.amazonaws.com', Bucket: 'unit' } });
    const redirect = await caught(S3Source.open({ client, bucket: 'unit', prefix: 'in/' }).ready);
    expect(redirect.code).toBe('S3_WRONG_REGION');
    expect(redirect.message).toContain('--region eu-west-1');

    proxy.rule = () => ({ kind: 'error', status: 400, code: 'AuthorizationHeaderMalformed', message: "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'", extra: { Region: 'ap-southeast-2' } });
    const malformed = await caught(S3Source.open({ client, bucket: 'unit', prefix: 'in/' }).ready);
    expect(malformed.code).toBe('S3_WRONG_REGION');
    expect(malformed.message).toContain('--region ap-southeast-2');

    proxy.rule = () => ({ kind: 'error', status: 403, code: 'AccessDenied' });
    const denied = await caught(S3Source.open({ client, bucket: 'unit', prefix: 'in/' }).ready);
    expect(denied.message).toBe('AccessDenied: s3:ListBucket on s3://unit/in/');
  });

  it('says that an endpoint answering 404 to a listing does not look like S3 (a web page, a console port)', async () => {
    const web = createServer((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html' });
      response.end('<html>Not Found</html>');
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
    const notS3 = testClient(url, { maxAttempts: 1 });
    try {
      const listing = await caught(S3Source.open({ client: notS3, bucket: 'unit', prefix: 'in/', endpoint: { url, origin: '--endpoint' } }).ready);
      expect(listing.code).toBe('S3_NOT_S3_API');
      expect(listing.message).toBe(`${url} answered HTTP 404 to s3:ListBucket on s3://unit/in/: it does not look like an S3 API; check --endpoint`);
      // A 404 to a download is a missing object.
      const download = await caught(new S3Source({ client: notS3, bucket: 'unit', prefix: 'in/' }).read({ key: 'a.jpg', uri: 's3://unit/in/a.jpg', size: 1, mtimeMs: 0 }));
      expect(download.code).toBe('S3_NO_SUCH_KEY');
    } finally {
      notS3.destroy();
      web.close();
    }
  });

  it('names the endpoint it cannot reach', async () => {
    const unreachable = testClient('http://127.0.0.1:1', { maxAttempts: 1 });
    try {
      const error = await caught(S3Source.open({ client: unreachable, bucket: 'unit', prefix: '' }).ready);
      expect(error.code).toBe('S3_UNREACHABLE');
      expect(error.message).toContain('http://127.0.0.1:1');
      expect(error.message).toContain('ECONNREFUSED');
    } finally {
      unreachable.destroy();
    }
  });

  it('retries 500 and 503 SlowDown up to maxAttempts, then fails with a reason', async () => {
    let failures = 0;
    proxy.rule = (r) => (r.op === 'list' && failures++ < 2 ? { kind: 'error', status: failures === 1 ? 500 : 503, code: failures === 1 ? 'InternalError' : 'SlowDown' } : undefined);
    expect((await collect(new S3Source({ client, bucket: 'unit', prefix: 'in/' }).list())).length).toBe(7);

    proxy.reset();
    proxy.rule = (r) => (r.op === 'list' ? { kind: 'error', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' } : undefined);
    const error = await caught(collect(new S3Source({ client, bucket: 'unit', prefix: 'in/' }).list()));
    expect(error.code).toBe('S3_THROTTLED');
    expect(proxy.requests.filter((r) => r.op === 'list').length).toBe(3);
  });
});

describe('S3Sink', () => {
  const entry: SourceEntry = { key: 'a.jpg', uri: 's3://unit/in/a.jpg', size: 4, mtimeMs: 0, etag: '"abc"' };

  it('writes with Content-Type, Cache-Control and metadata, under the prefix as a folder', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'site', cacheControl: 'public, max-age=60' });
    expect(sink.uri).toBe('s3://other/site/');
    const key = 'thumb/2024/my photo é+1.jpg';
    await sink.write(key, Buffer.from('jpeg bytes'), { contentType: 'image/jpeg', metadata: { [OUTPUT_MARKER]: 'true', 'img-pipeline-source': encodeURI(entry.uri) } });
    expect(sink.uriOf(key)).toBe('s3://other/site/thumb/2024/my photo é+1.jpg');
    expect((await getObject(direct, 'other', `site/${key}`)).toString()).toBe('jpeg bytes');
    const head = await headObject(direct, 'other', `site/${key}`);
    expect(head.ContentType).toBe('image/jpeg');
    expect(head.CacheControl).toBe('public, max-age=60');
    expect(head.Metadata).toEqual({ [OUTPUT_MARKER]: 'true', 'img-pipeline-source': 's3://unit/in/a.jpg' });
    expect(sink.bytesTransferred).toBe(10);
    expect(proxy.successfulPuts()).toHaveLength(1);
  });

  it('takes a create with If-None-Match as atomic on AWS S3 only, never on a custom endpoint', async () => {
    const aws = testClient('https://s3.us-east-1.amazonaws.com');
    const awsDefault = new (await import('@aws-sdk/client-s3')).S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'B' } });
    try {
      // s3rver ignores If-None-Match on PUT and overwrites: it must never be trusted to refuse a second lock.
      expect(await new S3Sink({ client, bucket: 'other', prefix: 'x/', cacheControl: 'x' }).createIsAtomic()).toBe(false);
      expect(await new S3Sink({ client: awsDefault, bucket: 'other', prefix: 'x/', cacheControl: 'x', endpoint: { url: 'http://127.0.0.1:9000', origin: 'AWS_ENDPOINT_URL_S3' } }).createIsAtomic()).toBe(false);
      // An endpoint set on the client counts as custom even when it names AWS: the store is not known.
      expect(await new S3Sink({ client: aws, bucket: 'other', prefix: 'x/', cacheControl: 'x' }).createIsAtomic()).toBe(false);
      expect(await new S3Sink({ client: awsDefault, bucket: 'other', prefix: 'x/', cacheControl: 'x' }).createIsAtomic()).toBe(true);
    } finally {
      aws.destroy();
      awsDefault.destroy();
    }
    expect(proxy.requests).toEqual([]);
  });

  it('marks the state file no-cache, and reads it back; a missing one is undefined', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'state/', cacheControl: 'immutable' });
    expect(await sink.readText(STATE_KEY)).toBeUndefined();
    await sink.write(STATE_KEY, Buffer.from('{"fingerprint":"x"}'), { contentType: 'application/json', metadata: {} });
    expect(await sink.readText(STATE_KEY)).toBe('{"fingerprint":"x"}');
    expect((await headObject(direct, 'other', `state/${STATE_KEY}`)).CacheControl).toBe('no-cache');
  });

  it('lists what is under its folder in one paged listing, never a sibling prefix', async () => {
    await putObject(direct, 'other', 'list/thumb/a.jpg', 'a');
    await putObject(direct, 'other', 'list/medium/a.jpg', 'aa');
    await putObject(direct, 'other', 'list2/thumb/a.jpg', 'x');
    const before = Date.now();
    const entries = await collect(new S3Sink({ client, bucket: 'other', prefix: 'list', cacheControl: 'x' }).list());
    expect(entries.map((e) => e.key).sort()).toEqual(['medium/a.jpg', 'thumb/a.jpg']);
    const stored = await listKeys(direct, 'other', 'list/');
    // S3 times are whole seconds; an output counts as written at the start of its second (sources and the
    // state at the end of theirs), so a same-second ambiguity means a redo, never a wrong skip.
    expect(entries.find((e) => e.key === 'thumb/a.jpg')!.mtimeMs).toBe(stored.find((s) => s.key === 'list/thumb/a.jpg')!.lastModified);
    expect(entries.every((e) => e.mtimeMs >= before - 2000)).toBe(true);
    expect(proxy.requests.map((r) => r.op)).toEqual(['list']);
  });

  it('lists one folder, in byte order, a page at a time as it is consumed', async () => {
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => putObject(direct, 'other', `paged/thumb/${k}.jpg`, k)));
    await putObject(direct, 'other', 'paged/medium/a.jpg', 'a');
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'paged', cacheControl: 'x', pageSize: 2 });
    const keys: string[] = [];
    for await (const entry of sink.list({ under: 'thumb/' })) {
      keys.push(entry.key);
      // Lazily: the first page and at most one prefetched, however long the folder.
      if (keys.length === 1) expect(proxy.requests.filter((r) => r.op === 'list').length).toBeLessThanOrEqual(2);
    }
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => `thumb/${k}.jpg`));
    const lists = proxy.requests.filter((r) => r.op === 'list');
    expect(lists).toHaveLength(4);
    expect(lists.every((r) => r.query.get('prefix') === 'paged/thumb/' && r.query.get('max-keys') === '2')).toBe(true);
  });

  it('reads the state with the end of its second as its time', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'timed/', cacheControl: 'x' });
    await sink.write(STATE_KEY, Buffer.from('{}'), { contentType: 'application/json', metadata: {} });
    const stored = (await listKeys(direct, 'other', 'timed/'))[0]!;
    const { ETag } = await headObject(direct, 'other', `timed/${STATE_KEY}`);
    expect(await sink.readTextEntry(STATE_KEY)).toEqual({ text: '{}', mtimeMs: stored.lastModified + 999, etag: ETag });
    expect(await sink.readTextEntry('missing.json')).toBeUndefined();
  });

  it('uploads an output over 5 MB as one PutObject, never a multipart upload', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'big/', cacheControl: 'x' });
    const data = randomBytes(6 * 1024 * 1024 + 123);
    await sink.write('big/noise.png', data, { contentType: 'image/png', metadata: { [OUTPUT_MARKER]: 'true' } });
    expect(proxy.requests.map((r) => `${r.method} ${r.key}${r.query.size > 0 ? `?${r.query}` : ''}`)).toEqual(['PUT big/big/noise.png?x-id=PutObject']);
    expect((await getObject(direct, 'other', 'big/big/noise.png')).equals(data)).toBe(true);
    expect((await headObject(direct, 'other', 'big/big/noise.png')).Metadata).toEqual({ [OUTPUT_MARKER]: 'true' });
  });

  it('retries a 503 SlowDown and a connection cut mid-upload; exactly one PUT lands', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'retry/', cacheControl: 'x' });
    let n = 0;
    proxy.rule = (r) => (r.op === 'put' ? [{ kind: 'error', status: 503, code: 'SlowDown' } as const, { kind: 'cut-request' } as const][n++] : undefined);
    await sink.write('thumb/a.jpg', Buffer.alloc(2048, 1), { contentType: 'image/jpeg', metadata: {} });
    expect(proxy.successfulPuts('other').map((r) => r.key)).toEqual(['retry/thumb/a.jpg']);
    expect((await getObject(direct, 'other', 'retry/thumb/a.jpg')).length).toBe(2048);
  });

  it('fails a write with "AccessDenied: s3:PutObject on" the output URI', async () => {
    const sink = new S3Sink({ client, bucket: 'other', prefix: 'denied/', cacheControl: 'x' });
    proxy.rule = () => ({ kind: 'error', status: 403, code: 'AccessDenied' });
    const error = await caught(sink.write('thumb/a.jpg', Buffer.from('x'), { contentType: 'image/jpeg', metadata: {} }));
    expect(error.message).toBe('AccessDenied: s3:PutObject on s3://other/denied/thumb/a.jpg');
  });

  it('is what openSink returns for an s3:// destination', () => {
    expect(openSink('s3://other/site/', { s3: { client, cacheControl: 'x' } })).toBeInstanceOf(S3Sink);
    expect(() => openSink('s3://other/site/')).toThrow(ConfigError);
  });
});

describe('the S3 client\'s connections', () => {
  it('keeps connections alive, and opens no more than s3.connections + 4 however many requests wait', async () => {
    const limited = testClient(proxy.endpoint, { connections: 2 });
    const source = new S3Source({ client: limited, bucket: 'unit', prefix: 'in/' });
    const entry = (key: string, size: number): SourceEntry => ({ key, uri: `s3://unit/in/${key}`, size, mtimeMs: 0 });
    proxy.latencyMs = 20;
    const before = proxy.connections;
    await Promise.all(Array.from({ length: 24 }, () => source.read(entry('a.jpg', 4))));
    const opened = proxy.connections - before;
    expect(opened).toBeGreaterThan(1);
    expect(opened).toBeLessThanOrEqual(6);
    // One after another, the same kept-alive sockets carry them all.
    for (let i = 0; i < 5; i += 1) await source.read(entry('a.jpg', 4));
    expect(proxy.connections - before).toBe(opened);
    limited.destroy();
  });
});

describe('outputMetadata', () => {
  it('names an S3 source by bucket and key, a local one by its key under the input folder, never an absolute path', () => {
    expect(outputMetadata({ key: '2024/cat é+1.PNG', uri: 's3://my-uploads/uploads/2024/cat é+1.PNG', etag: '"abc"' })).toEqual({
      [OUTPUT_MARKER]: 'true',
      [SOURCE_KEY_METADATA]: encodeURI('s3://my-uploads/uploads/2024/cat é+1.PNG'),
      [SOURCE_ETAG_METADATA]: 'abc',
    });
    expect(outputMetadata({ key: '2024/cat.PNG', uri: '/home/alice/private/photos/2024/cat.PNG' })).toEqual({ [OUTPUT_MARKER]: 'true', [SOURCE_KEY_METADATA]: '2024/cat.PNG' });
  });

  it('records a sha256 of the source instead when its encoded name would not fit S3\'s 2 KB of metadata', () => {
    const key = `${'é'.repeat(500)}.jpg`; // 1004 bytes of UTF-8, three times that percent-encoded
    const metadata = outputMetadata({ key, uri: `s3://b/${key}`, etag: '"abc"' });
    expect(metadata[SOURCE_KEY_METADATA]).toBe(`sha256:${createHash('sha256').update(`s3://b/${key}`).digest('hex')}`);
    const size = Object.entries(metadata).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(size).toBeLessThan(2048);
    expect(outputMetadata({ key: 'a'.repeat(MAX_SOURCE_METADATA), uri: '/x' })[SOURCE_KEY_METADATA]).toBe('a'.repeat(MAX_SOURCE_METADATA));
  });
});

describe('toStorageError', () => {
  it('maps the SDK\'s connect and socket timeouts to S3_UNREACHABLE, naming the endpoint with its scheme', () => {
    const timeout = Object.assign(new Error('Socket timed out without establishing a connection within 10000 ms'), { name: 'TimeoutError' });
    const mapped = toStorageError(timeout, 's3:ListBucket', 's3://b/in/', { url: 'https://10.0.0.5:9000', origin: '--endpoint' });
    expect(mapped.code).toBe('S3_UNREACHABLE');
    expect(mapped.message).toBe('cannot reach the S3 endpoint https://10.0.0.5:9000 (timed out: Socket timed out without establishing a connection within 10000 ms); check --endpoint and the network');
  });

  it('blames the setting the endpoint came from, and AWS itself gets its https:// URL', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 9000 });
    expect(toStorageError(refused, 's3:ListBucket', 's3://b/', { url: 'http://127.0.0.1:9000', origin: 'AWS_ENDPOINT_URL_S3' }).message).toBe('cannot reach the S3 endpoint http://127.0.0.1:9000 (ECONNREFUSED); check AWS_ENDPOINT_URL_S3 and the network');
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND b.s3.us-east-1.amazonaws.com'), { code: 'ENOTFOUND', hostname: 'b.s3.us-east-1.amazonaws.com' });
    const aws = toStorageError(dns, 's3:ListBucket', 's3://b/');
    expect(aws.message).toBe('cannot reach the S3 endpoint https://b.s3.us-east-1.amazonaws.com (ENOTFOUND); check the network (and --region)');
    expect(aws.message).not.toContain('--endpoint');
  });

  it('maps a 404 to NoSuchKey only for s3:GetObject', () => {
    const notFound = Object.assign(new Error('UnknownError'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
    expect(toStorageError(notFound, 's3:GetObject', 's3://b/k.jpg').code).toBe('S3_NO_SUCH_KEY');
    expect(toStorageError(notFound, 's3:ListBucket', 's3://b/').code).toBe('S3_NOT_S3_API');
    expect(toStorageError(notFound, 's3:PutObject', 's3://b/k.jpg').code).toBe('S3_NOT_S3_API');
    const noBucket = Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    expect(toStorageError(noBucket, 's3:GetObject', 's3://b/k.jpg').code).toBe('S3_NO_SUCH_BUCKET');
  });

  it('keeps our own errors and the SDK error as cause', () => {
    const ours = new ConfigError('X', 'x');
    expect(toStorageError(ours, 's3:GetObject', 's3://b/k')).toBe(ours);
    const credentials = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    const mapped = toStorageError(credentials, 's3:ListBucket', 's3://b/');
    expect(mapped.code).toBe('S3_NO_CREDENTIALS');
    expect(mapped.message).toContain('--profile');
    expect(mapped.cause).toBe(credentials);
  });
});

describe('the run signal across many requests', () => {
  it('holds one abort listener per source however many requests are in flight, and none once done', async () => {
    const controller = new AbortController();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const source = new S3Source({ client, bucket: 'unit', prefix: 'in/', pageSize: 1 });
      const entries: SourceEntry[] = [];
      for await (const entry of source.list(controller.signal)) entries.push(entry);
      const image = entries.find((e) => e.key === 'a.jpg')!;
      // Slow answers keep many downloads in flight at once, as a run with S3 read-ahead does.
      proxy.rule = (r) => (r.op === 'get' ? { kind: 'delay', ms: 200 } : undefined);
      let most = 0;
      const reads = Array.from({ length: 24 }, () => source.read(image, controller.signal));
      const sampling = setInterval(() => (most = Math.max(most, getEventListeners(controller.signal, 'abort').length)), 5);
      await Promise.all(reads);
      clearInterval(sampling);
      expect(most).toBeLessThanOrEqual(1);
      expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('still stops requests in flight when the run signal fires', async () => {
    const controller = new AbortController();
    const source = new S3Source({ client, bucket: 'unit', prefix: 'in/' });
    const entry = { key: 'a.jpg', uri: 's3://unit/in/a.jpg', size: 4, mtimeMs: 0 };
    proxy.rule = (r) => (r.op === 'get' ? { kind: 'delay', ms: 3000 } : undefined);
    const started = Date.now();
    const read = source.read(entry, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await expect(read).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('S3Sink on AWS S3: the run lock\'s conditional writes and deletes (If-Match)', () => {
  // As the SDK surfaces S3's answers. https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html:
  // 412 PreconditionFailed when the ETag does not match, 409 ConditionalRequestConflict when a conflicting
  // operation won meanwhile. https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html:
  // DeleteObject takes If-Match on general purpose buckets, with the same 412 and 409.
  const refused = (name: string, status: number, message: string) => new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message });
  const preconditionFailed = refused('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  const aws = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'B' } });
  const s3 = mockClient(aws);
  const sink = new S3Sink({ client: aws, bucket: 'out', prefix: 'site/', cacheControl: 'x' });
  const key = `site/${LOCK_KEY}`;
  afterEach(() => s3.reset());
  afterAll(() => aws.destroy());

  it('creates with If-None-Match, replaces only the version read with If-Match, and returns the ETag written', async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"new"' });
    expect(await sink.createExclusive(LOCK_KEY, Buffer.from('{}'))).toEqual({ etag: '"new"' });
    expect(await sink.createExclusive(LOCK_KEY, Buffer.from('{}'), { ifMatch: '"stale"' })).toEqual({ etag: '"new"' });
    const sent = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(sent).toEqual([
      { Bucket: 'out', Key: key, Body: Buffer.from('{}'), ContentType: 'application/json', CacheControl: 'no-cache', IfNoneMatch: '*' },
      { Bucket: 'out', Key: key, Body: Buffer.from('{}'), ContentType: 'application/json', CacheControl: 'no-cache', IfMatch: '"stale"' },
    ]);
  });

  it('answers false to a replace refused by 412, 409 or 404 NoSuchKey (changed, in contention, gone), and fails on anything else', async () => {
    for (const error of [preconditionFailed, refused('ConditionalRequestConflict', 409, 'The conditional request cannot succeed due to a conflicting operation against this resource.'), refused('NoSuchKey', 404, 'The specified key does not exist.')]) {
      s3.reset();
      s3.on(PutObjectCommand).rejects(error);
      expect(await sink.createExclusive(LOCK_KEY, Buffer.from('{}'), { ifMatch: '"stale"' })).toBe(false);
    }
    s3.reset();
    s3.on(PutObjectCommand).rejects(refused('NoSuchBucket', 404, 'The specified bucket does not exist'));
    await expect(sink.createExclusive(LOCK_KEY, Buffer.from('{}'))).rejects.toMatchObject({ code: 'S3_NO_SUCH_BUCKET' });
  });

  it('reads the lock with its ETag', async () => {
    s3.on(GetObjectCommand).resolves({ Body: { transformToString: async () => '{"token":"t"}' } as never, ETag: '"read"', LastModified: new Date(5_000) });
    expect(await sink.readTextEntry(LOCK_KEY)).toEqual({ text: '{"token":"t"}', mtimeMs: 5_999, etag: '"read"' });
  });

  it('takes over a stale lock with If-Match on the ETag read, and releases with If-Match on the ETag it wrote', async () => {
    const stale = JSON.stringify({ tool: 'img-pipeline', pid: 1, hostname: 'this-host', startedAt: 'then', command: 'killed', token: 'old' });
    let lock = stale;
    s3.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(preconditionFailed);
    s3.on(PutObjectCommand, { IfMatch: '"stale"' }).callsFake((input: { Body: Buffer }) => {
      lock = input.Body.toString();
      return { ETag: '"taken"' };
    });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: { transformToString: async () => lock } as never, ETag: lock === stale ? '"stale"' : '"taken"', LastModified: new Date(0) }));
    s3.on(DeleteObjectCommand).resolves({});
    // No custom endpoint: the AWS path.
    expect(await sink.createIsAtomic()).toBe(true);
    const taken = await acquireRunLock(sink, { command: 'new', hostname: 'this-host', isAlive: () => false });
    await taken!.confirmed;
    await taken!.release();
    expect(s3.calls().map((call) => [call.args[0].constructor.name, (call.args[0].input as { IfMatch?: string; IfNoneMatch?: string }).IfMatch ?? (call.args[0].input as { IfNoneMatch?: string }).IfNoneMatch])).toEqual([
      ['PutObjectCommand', '*'],
      ['GetObjectCommand', undefined],
      ['PutObjectCommand', '"stale"'],
      ['GetObjectCommand', undefined],
      ['DeleteObjectCommand', '"taken"'],
    ]);
  });

  it('deletes with If-Match only when asked, and leaves the lock quietly when S3 refuses it (412, 409), but not on AccessDenied', async () => {
    s3.on(DeleteObjectCommand).resolves({});
    await sink.remove(LOCK_KEY, { ifMatch: '"mine"' });
    await sink.remove(LOCK_KEY);
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input)).toEqual([{ Bucket: 'out', Key: key, IfMatch: '"mine"' }, { Bucket: 'out', Key: key }]);
    for (const error of [preconditionFailed, refused('ConditionalRequestConflict', 409, 'The conditional request cannot succeed due to a conflicting operation against this resource.')]) {
      s3.reset();
      s3.on(DeleteObjectCommand).rejects(error);
      await expect(sink.remove(LOCK_KEY, { ifMatch: '"mine"' })).resolves.toBeUndefined();
    }
    s3.reset();
    s3.on(DeleteObjectCommand).rejects(refused('AccessDenied', 403, 'Access Denied'));
    await expect(sink.remove(LOCK_KEY, { ifMatch: '"mine"' })).rejects.toMatchObject({ code: 'S3_ACCESS_DENIED' });
  });
});
