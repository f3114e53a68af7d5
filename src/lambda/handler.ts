// The Lambda edge: the only place that reads the environment. Everything here runs once per cold start
// (module scope, top-level await), so each invocation only processes its records.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configureSharp, preparePipeline } from '../pipeline/process.js';
import { S3Sink } from '../storage/s3.js';
import { createS3Client } from '../storage/s3-client.js';
import type { BatchResponse } from './batch-result.js';
import { createLambdaHandler, type EventSummary } from './process-event.js';
import { BUNDLED_CONFIG, loadBundledConfig, readLambdaSettings } from './settings.js';
import { readStoredMarks } from './stored-marks.js';

const started = performance.now();
/** Files that travel next to index.mjs in the zip. */
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
/** The bundled font, passed to sharp as `fontfile`: the Lambda runtime has no system fonts. */
const FONT_FILE = here('./fonts/DejaVuSans-Bold.ttf');

// Without a fontconfig file, fontconfig complains on every cold start; ours knows only the bundled font.
// Fontconfig reads this when text is first rendered: below, unless the mark deploy stored is used.
const fontsConf = here('./fonts/fonts.conf');
if (!process.env['FONTCONFIG_FILE'] && existsSync(fontsConf)) process.env['FONTCONFIG_FILE'] = fontsConf;

const settings = readLambdaSettings(process.env);
const config = await loadBundledConfig(readFileSync(here(`./${BUNDLED_CONFIG}`), 'utf8'), { root: here('.'), watermarkText: settings.watermarkText });
// AWS_ENDPOINT_URL_S3 (a local S3 for tests) rarely resolves bucket subdomains: use path-style there.
const s3 = createS3Client(config.s3, { env: process.env });
// The SNS client is a chunk of its own (see publish.ts): without a topic it is never loaded.
const sns = settings.snsTopicArn ? (await import('./publish.js')).createSnsClient(settings.snsTopicArn) : undefined;
const sink = new S3Sink({ client: s3, bucket: settings.processedBucket, prefix: settings.processedPrefix, cacheControl: config.s3.cacheControl });
// One image at a time per invocation: libvips may use every vCPU the memory setting buys.
configureSharp(1);
// The text mark deploy rendered; used only when its key matches (not after WATERMARK_TEXT changed the text).
const textMarks = config.watermark?.text !== undefined ? readStoredMarks(here('.')) : undefined;
const pipeline = await preparePipeline(config, { ...(existsSync(FONT_FILE) ? { fontfile: FONT_FILE } : {}), textMarks });

process.stdout.write(`${JSON.stringify({ level: 'info', status: 'init', ms: Math.round(performance.now() - started), fingerprint: pipeline.fingerprint, watermark: pipeline.watermark?.source ?? 'none' })}\n`);

/** The Lambda entry point (`index.handler` in the zip). */
export const handler: (event: unknown) => Promise<EventSummary | BatchResponse> = createLambdaHandler({
  s3,
  sns,
  pipeline,
  settings,
  sink,
  log: (line) => process.stdout.write(`${line}\n`),
});
