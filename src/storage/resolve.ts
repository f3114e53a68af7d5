import { resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../errors.js';
import { LocalSink, LocalSource } from './local.js';
import { folderPrefix, formatS3Uri, isS3Uri, parseS3Uri, S3Sink, S3Source } from './s3.js';
import type { CustomEndpoint } from './s3-client.js';
import type { Sink, Source } from './types.js';

/** What S3 inputs and outputs need: the run's one client, built at the edge, and the `s3` settings. */
export interface S3Access {
  client: S3Client;
  cacheControl: string;
  /** Keys per listing page, sources and destination alike; S3's default of 1000 unless a test asks for less. */
  pageSize?: number;
  /** The run's custom endpoint (`--endpoint` or `AWS_ENDPOINT_URL_S3`), named in "cannot reach" messages. */
  endpoint?: CustomEndpoint;
}

export interface OpenOptions {
  /** Required as soon as an input or the output is an `s3://` URI. */
  s3?: S3Access;
  /** Variant names, so a loop through `<out>/<variant>/` is caught too. */
  variants?: readonly string[];
  signal?: AbortSignal;
}

function s3Access(options: OpenOptions, uri: string): S3Access {
  if (!options.s3) throw new ConfigError('S3_NOT_CONFIGURED', `${uri} is an S3 location, but no S3 client was set up for this run`);
  return options.s3;
}

/**
 * Refuses a destination whose outputs would land under an S3 source prefix (same bucket): each run would
 * find its own outputs as new inputs. Checked before any request, so nothing has been written.
 */
export function refuseLoop(input: string, out: string, variants: readonly string[] = []): void {
  if (!isS3Uri(input) || !isS3Uri(out)) return;
  const source = parseS3Uri(input);
  const destination = parseS3Uri(out);
  if (source.bucket !== destination.bucket) return;
  const sourceFolder = folderPrefix(source.prefix);
  const destinationFolder = folderPrefix(destination.prefix);
  const written = [destinationFolder, ...variants.map((v) => `${destinationFolder}${v}/`)];
  const inside = written.find((prefix) => prefix.startsWith(sourceFolder));
  if (inside === undefined) return;
  const where = inside === destinationFolder ? `the destination ${out}` : `the outputs under ${formatS3Uri(destination.bucket, inside)}`;
  throw new ConfigError(
    'S3_LOOP',
    `refusing to run: ${where} would lie inside the source ${input}, so every output would be listed as a new input and processed again, run after run. Choose a destination outside ${formatS3Uri(source.bucket, sourceFolder)}, such as another bucket or a sibling prefix.`,
  );
}

/**
 * Opens each input, local or `s3://`; a local `out` is excluded from folder scans so a run never processes
 * its own outputs, and an S3 `out` inside an S3 input is refused. Each S3 input answers one small listing
 * request here, so missing buckets, credentials or permissions fail before anything is written.
 */
export async function openSources(inputs: readonly string[], out: string, options: OpenOptions = {}): Promise<Source[]> {
  for (const input of inputs) refuseLoop(input, out, options.variants);
  const exclude = isS3Uri(out) ? [] : [resolve(out)];
  return Promise.all(
    inputs.map(async (input) => {
      if (!isS3Uri(input)) return LocalSource.open(input, exclude);
      const { bucket, prefix } = parseS3Uri(input);
      const { client, pageSize, endpoint } = s3Access(options, input);
      const source = new S3Source({ client, bucket, prefix, ...(pageSize ? { pageSize } : {}), ...(endpoint ? { endpoint } : {}) });
      await source.check(options.signal);
      return source;
    }),
  );
}

/** The destination named by `--out`: a local folder or an `s3://` prefix. */
export function openSink(out: string, options: OpenOptions = {}): Sink {
  if (!isS3Uri(out)) return new LocalSink(out);
  const { bucket, prefix } = parseS3Uri(out);
  const { client, cacheControl, pageSize, endpoint } = s3Access(options, out);
  return new S3Sink({ client, bucket, prefix, cacheControl, ...(pageSize ? { pageSize } : {}), ...(endpoint ? { endpoint } : {}) });
}
