import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, ImgPipelineError } from '../errors.js';
import { isImageKey } from '../pipeline/layout.js';
import { LocalSink } from '../storage/local.js';
import { isS3Uri } from '../storage/s3.js';

/**
 * Resolves `--report`'s path against `cwd` and checks, before the run starts, that a page can be written
 * there: a local file (not a folder, not an image an input could be) in a folder that exists or can be made.
 */
export async function checkReportPath(path: string, cwd: string): Promise<string> {
  if (isS3Uri(path)) {
    throw new ConfigError('REPORT_PATH_INVALID', `--report: expected a local file such as report.html, received "${path}"; the page embeds thumbnails of S3 outputs, so it can be kept anywhere`);
  }
  if (isImageKey(path.replaceAll('\\', '/'))) {
    throw new ConfigError('REPORT_PATH_INVALID', `--report: "${path}" names an image; the report is an HTML page, such as report.html`);
  }
  const target = resolve(cwd, path);
  try {
    // The folder's checks, as for --out: it exists or can be made, and can be written to.
    await new LocalSink(dirname(target)).prepare({ create: false });
  } catch (error) {
    // Its messages speak of --out; here the folder is the report's.
    const reason = error instanceof ImgPipelineError ? error.message.replace('the output folder ', 'the folder ').replace(/; choose another --out$/, '') : String(error);
    throw new ConfigError('REPORT_PATH_INVALID', `--report: cannot write ${target}: ${reason}`, { cause: error });
  }
  if ((await stat(target).catch(() => undefined))?.isDirectory()) {
    throw new ConfigError('REPORT_PATH_INVALID', `--report: ${target} is a folder; name a file in it, such as ${resolve(target, 'report.html')}`);
  }
  return target;
}

/** Writes the page atomically (a temporary file beside it, renamed over it): never a half-written report. */
export async function writeReport(path: string, html: string): Promise<void> {
  await new LocalSink(dirname(path)).write(basename(path), Buffer.from(html, 'utf8'), { contentType: 'text/html; charset=utf-8', metadata: {} });
}
