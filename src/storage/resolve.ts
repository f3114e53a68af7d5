import { realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_SIZES } from '../config/default-sizes.js';
import { ConfigError } from '../errors.js';
import { STATE_KEY } from '../pipeline/layout.js';
import { isInside, LocalSink, LocalSource } from './local.js';
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
  /**
   * Variant names (default: those of DEFAULT_SIZES). Their `<out>/<variant>/` folders are left out of local
   * scans, and an S3 loop through them is caught too.
   */
  variants?: readonly string[];
  signal?: AbortSignal;
}

/**
 * Refuses a location that would name the wrong place: an empty one (it would mean the current folder) or
 * a URI of a scheme other than s3:// (`file:///tmp/x` would become a folder named `file:`).
 */
export function checkLocation(value: string, what: string): void {
  if (value.trim() === '') throw new ConfigError('LOCATION_INVALID', `${what}: expected a folder path or s3://bucket/prefix/, received an empty value`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme !== undefined && !isS3Uri(value)) {
    throw new ConfigError('LOCATION_INVALID', `${what}: expected a local path or an s3://bucket/prefix/ URI, received "${value}" (${scheme}:// is not supported${scheme.toLowerCase() === 'file' ? '; write the path itself' : ''})`);
  }
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

/** Where an input reads from, spelled one way: a real path (symlinks resolved), or bucket and folder. */
type InputPlace = { kind: 'local'; path: string; folder: boolean } | { kind: 's3'; bucket: string; prefix: string };

async function placeOf(input: string): Promise<InputPlace> {
  if (isS3Uri(input)) return { kind: 's3', ...parseS3Uri(input) };
  const path = await realpath(input).catch(() => resolve(input));
  return { kind: 'local', path, folder: await stat(path).then((info) => info.isDirectory(), () => false) };
}

/** Whether everything `inner` lists is also listed by `outer` (the same place included). */
function covers(outer: InputPlace, inner: InputPlace): boolean {
  if (outer.kind === 'local' && inner.kind === 'local') return outer.path === inner.path || (outer.folder && isInside(outer.path, inner.path));
  if (outer.kind === 's3' && inner.kind === 's3') return outer.bucket === inner.bucket && (outer.prefix === inner.prefix || inner.prefix.startsWith(folderPrefix(outer.prefix)));
  return false;
}

/**
 * Each image once, at one path: an input that another input already lists (`dir dir/sub dir/sub/a.png`, a
 * symlink to a folder given next to it, `s3://b/in/ s3://b/in/sub/`) is dropped, so its images take the key
 * they have under the outermost input. Of two inputs naming the same place, the first given stays.
 */
async function distinctInputs(inputs: readonly string[]): Promise<string[]> {
  const places = await Promise.all(inputs.map(placeOf));
  return inputs.filter((_, i) => !places.some((other, j) => j !== i && covers(other, places[i]!) && (!covers(places[i]!, other) || j < i)));
}

/**
 * Refuses a local input folder that lies inside one of the variant folders a run writes (`processed/thumb`
 * with `--out processed`): its outputs would be written among its own inputs, over them. (A single file
 * there is the runner's to fail, should an output of it land on an input: OUTPUT_IS_INPUT.)
 */
async function refuseLocalLoop(input: string, variantFolders: readonly string[]): Promise<void> {
  const path = resolve(input);
  const folder = variantFolders.find((f) => isInside(f, path));
  if (folder === undefined) return;
  // A missing input is reported by LocalSource.open, with its own message.
  if (!(await stat(path).then((info) => info.isDirectory(), () => false))) return;
  throw new ConfigError(
    'LOCAL_LOOP',
    `refusing to run: the input ${input} lies inside ${folder}, where this run writes its outputs, so they would be written among (and over) its inputs. Choose an --out whose variant folders do not hold the input.`,
  );
}

/**
 * Opens each input once (repeated and nested inputs are dropped: distinctInputs), local or `s3://`. Local scans leave out the folders
 * the run writes (`<out>/<variant>/` for each variant, and the state file), so a run never processes its
 * own outputs whatever `--out` is (`.` or the input folder itself included); a local input inside one of
 * those folders, and an S3 `out` inside an S3 input, are refused. Each S3 input asks for its first listing
 * page here without waiting for it (S3Source.open): its `ready` settles with it, and a failure there
 * (missing bucket, credentials or permissions) fails the run before anything is written (sourcesReady).
 */
export async function openSources(inputs: readonly string[], out: string, options: OpenOptions = {}): Promise<Source[]> {
  const variants = options.variants ?? Object.keys(DEFAULT_SIZES);
  checkLocation(out, '--out');
  for (const input of inputs) checkLocation(input, 'input');
  const unique = await distinctInputs(inputs);
  for (const input of unique) refuseLoop(input, out, variants);
  const outRoot = isS3Uri(out) ? undefined : resolve(out);
  const variantFolders = outRoot === undefined ? [] : variants.map((v) => join(outRoot, v));
  const exclude = outRoot === undefined ? [] : [...variantFolders, join(outRoot, STATE_KEY)];
  for (const input of unique) if (!isS3Uri(input)) await refuseLocalLoop(input, variantFolders);
  return Promise.all(
    unique.map(async (input) => {
      if (!isS3Uri(input)) return LocalSource.open(input, exclude);
      const { bucket, prefix } = parseS3Uri(input);
      const { client, pageSize, endpoint } = s3Access(options, input);
      return S3Source.open({ client, bucket, prefix, ...(pageSize ? { pageSize } : {}), ...(endpoint ? { endpoint } : {}) }, options.signal);
    }),
  );
}

/**
 * Resolves once every source is known to be listable (Source.ready); otherwise rejects with the failure of
 * the first input, in the order given, that cannot be listed, so the message does not depend on which
 * answered first.
 */
export async function sourcesReady(sources: readonly Source[]): Promise<void> {
  const settled = await Promise.allSettled(sources.map((s) => s.ready));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The destination named by `--out`: a local folder or an `s3://` prefix. */
export function openSink(out: string, options: OpenOptions = {}): Sink {
  checkLocation(out, '--out');
  if (!isS3Uri(out)) return new LocalSink(out);
  const { bucket, prefix } = parseS3Uri(out);
  const { client, cacheControl, pageSize, endpoint } = s3Access(options, out);
  return new S3Sink({ client, bucket, prefix, cacheControl, ...(pageSize ? { pageSize } : {}), ...(endpoint ? { endpoint } : {}) });
}
