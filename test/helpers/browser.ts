/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// page.evaluate() callbacks run in the browser, where window and document exist.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './paths.js';

/** Screenshots the page tests keep for a person to look at (gitignored). */
export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

/**
 * Debian's chromium (the one .ci/run installs), or CHROMIUM_PATH. A missing browser fails the test with
 * the command that installs it, rather than skipping: a page nobody opened in a browser is not tested.
 */
export function chromiumPath(): string {
  const configured = process.env['CHROMIUM_PATH'];
  if (configured) return configured;
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is not installed; the HTML report is tested in a real browser. Install it with `apt-get update && apt-get install -y --no-install-recommends chromium` (as .ci/run does), or set CHROMIUM_PATH');
  }
}

/**
 * Headless chromium with nothing of its own that reaches the network (no updates, sync or QUIC probes),
 * through playwright-core, which drives a browser it did not download. Each launch gets a fresh profile.
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface OpenedPage {
  page: Page;
  /** Every URL the page asked for: a self-contained page asks only for file: and data: URLs. */
  requests: string[];
  /** Console messages, CSP violations included. */
  console: string[];
}

/** Opens a local HTML file in a new page of `browser`, recording what it requests and logs. */
export async function openFile(browser: Browser, file: string, viewport = { width: 1280, height: 900 }): Promise<OpenedPage> {
  const page = await browser.newPage({ viewport });
  const requests: string[] = [];
  const messages: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => messages.push(message.text()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, requests, console: messages };
}

/**
 * Scrolls to the end in viewport-sized steps, so that every lazy image has entered the viewport, then
 * waits until all images have loaded or failed.
 */
export async function scrollThrough(page: Page): Promise<void> {
  for (;;) {
    const atEnd = await page.evaluate(() => {
      window.scrollBy(0, window.innerHeight);
      return window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1;
    });
    if (atEnd) break;
    await page.waitForTimeout(50);
  }
  await page.waitForFunction(() => [...document.images].every((image) => image.complete), undefined, { timeout: 20_000 });
}

/** Saves a screenshot (of the whole page, or of the top screenful) under test-artifacts/ and returns its path. */
export async function keepScreenshot(page: Page, name: string, fullPage = true): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage });
  return path;
}
