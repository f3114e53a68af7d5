import { describe, expect, it } from 'vitest';
import { escapeHtml, renderReport, REPORT_CSP, type ReportData, type ReportImage } from '../../../src/report/html.js';

const data = (over: Partial<ReportData> = {}): ReportData => ({
  startedAt: '2026-01-02T03:04:05.678Z',
  inputs: ['/in'],
  out: '/out',
  dryRun: false,
  totals: { processed: 0, skipped: 0, failed: 0, planned: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 1500, interrupted: false },
  processed: [],
  failed: [],
  skipped: [],
  planned: [],
  omitted: { processed: 0, failed: 0, skipped: 0, planned: 0 },
  thumbnailsDropped: 0,
  embedBudgetBytes: 4 * 1024 * 1024,
  ...over,
});

const image = (i: number, over: Partial<ReportImage> = {}): ReportImage => ({
  input: `/in/p${i}.jpg`, name: `p${i}.jpg`, width: 1200, height: 800, bytesIn: 150_000, bytesOut: 24_000, outputs: 2,
  thumb: { src: `../out/medium/p${i}.jpg`, width: 512, height: 341 }, ...over,
});

const HOSTILE = '<script>alert("x")</script> \'q\' & \u001b[31m \u0000 \u202egpj.jpg \ud800';

describe('escapeHtml', () => {
  it('leaves no markup, quote or invisible character of an untrusted name', () => {
    const escaped = escapeHtml(HOSTILE);
    expect(escaped).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#39;q&#39; &amp; \\u001b[31m \\u0000 \\u202egpj.jpg \\ud800');
    expect(escaped).not.toMatch(/[<>"'\u0000-\u001f\u202e\ud800]/);
  });

  it('keeps ordinary text as it is, non-Latin scripts and emoji included', () => {
    expect(escapeHtml('Фото 写真 🐱.jpg')).toBe('Фото 写真 🐱.jpg');
  });
});

describe('renderReport', () => {
  it('declares a CSP that allows no script and no network, and contains no script or external reference', () => {
    const html = renderReport(data({ processed: [image(1)] }));
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">`);
    expect(REPORT_CSP).toMatch(/^default-src 'none';/);
    expect(REPORT_CSP).not.toMatch(/script-src|https?:/);
    expect(html).not.toMatch(/<script|<link|@import|url\(|https?:\/\//i);
  });

  it('escapes every untrusted string: names, paths, reasons and codes', () => {
    const html = renderReport(data({
      inputs: [`/in/${HOSTILE}`],
      out: `s3://b/${HOSTILE}/`,
      error: HOSTILE,
      processed: [image(1, { input: `/in/${HOSTILE}`, name: HOSTILE, thumb: { src: `x" onerror="alert(1)`, width: 1, height: 1 }, href: `javascript:"><script>` })],
      failed: [{ input: `/in/${HOSTILE}`, name: HOSTILE, reason: HOSTILE, code: '<b>' }],
      skipped: [{ input: HOSTILE, name: HOSTILE, reason: HOSTILE }],
    }));
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('" onerror="');
    expect(html).not.toMatch(/[\u0000-\u0008\u001b\u202e]/);
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
  });

  it('reserves each thumbnail\'s box and loads it lazily', () => {
    const html = renderReport(data({ processed: [image(1, { href: '../out/large/p1.jpg' })] }));
    expect(html).toContain('<a href="../out/large/p1.jpg"><img src="../out/medium/p1.jpg" width="512" height="341" loading="lazy" decoding="async" alt="p1.jpg"></a>');
  });

  it('says how the run ended', () => {
    const status = (over: Partial<ReportData>) => /<p class="status[^"]*" id="status">([^<]*)<\/p>/.exec(renderReport(data(over)))![1];
    expect(status({})).toBe('Finished: every file processed or up to date.');
    expect(status({ totals: { ...data().totals, failed: 1 } })).toBe('Finished with 1 failed file.');
    expect(status({ totals: { ...data().totals, interrupted: true } })).toMatch(/^Interrupted \(Ctrl-C\)/);
    expect(status({ dryRun: true })).toBe('Dry run: nothing was written.');
    expect(status({ error: 'listing s3://b/ failed' })).toBe('Stopped: listing s3://b/ failed');
  });

  it('shows totals and timing', () => {
    const html = renderReport(data({ totals: { processed: 40, skipped: 2, failed: 1, planned: 0, bytesIn: 4 * 1024 * 1024, bytesOut: 1024 * 1024, bytesTransferred: 5 * 1024 * 1024, elapsedMs: 8000, interrupted: false } }));
    for (const [label, value] of [['Processed', '40'], ['Skipped', '2'], ['Failed', '1'], ['Bytes in', '4.0 MB'], ['Bytes out', '1.0 MB'], ['Saving', '75% smaller'], ['Transferred', '5.0 MB'], ['Elapsed', '8.0 s'], ['Throughput', '5.0 images/s']]) {
      expect(html).toContain(`<dt>${label}</dt><dd>${value}</dd>`);
    }
    expect(html).toContain('started 2026-01-02 03:04:05 UTC');
  });

  it('counts the entries it does not list, and explains missing thumbnails', () => {
    const html = renderReport(data({
      processed: [image(1, { thumb: undefined })],
      failed: [{ input: '/in/a.jpg', name: 'a.jpg', reason: 'empty file (0 bytes)', code: 'INPUT_EMPTY' }],
      omitted: { processed: 4, failed: 9, skipped: 0, planned: 0 },
      thumbnailsDropped: 1,
    }));
    expect(html).toContain('<h2>Failed (10)</h2>');
    expect(html).toContain('… and 9 more files, not listed');
    expect(html).toContain('<h2>Processed (5)</h2>');
    expect(html).toContain('1 image is shown without a thumbnail: this page embeds at most 4.0 MB of thumbnails');
    expect(html).toContain('<span class="none">no thumbnail</span>');
  });

  it('renders 5,000 images in about 400 bytes each, every thumbnail lazy', () => {
    const processed = Array.from({ length: 5000 }, (_, i) => image(i, { href: `../out/large/p${i}.jpg` }));
    const html = renderReport(data({ processed, totals: { ...data().totals, processed: 5000 } }));
    expect(Buffer.byteLength(html)).toBeLessThan(5000 * 500);
    expect(html.match(/<img /g)).toHaveLength(5000);
    expect(html.match(/loading="lazy"/g)).toHaveLength(5000);
  });
});
