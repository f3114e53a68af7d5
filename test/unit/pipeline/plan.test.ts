import { describe, expect, it } from 'vitest';
import { configSchema, type ConfigInput } from '../../../src/config/schema.js';
import { planJobs, pipelineFingerprint, plannedOutputs, type DestinationIndex, type PlanOptions } from '../../../src/pipeline/plan.js';
import type { SourceEntry } from '../../../src/storage/types.js';

const config = (input: ConfigInput = {}) => configSchema.parse({ concurrency: 1, ...input });
const entry = (key: string, over: Partial<SourceEntry> = {}): SourceEntry => ({ key, uri: `/in/${key}`, size: 100, mtimeMs: 1_000, ...over });
const nothing: DestinationIndex = { outputs: new Map(), freshSince: undefined };
const options: PlanOptions = { force: false, skipEmpty: false, maxFileSize: 1_000_000 };

describe('plannedOutputs', () => {
  it('lists every variant in every format, variants first, in config order', () => {
    const outputs = plannedOutputs('2024/cat.PNG', config({ sizes: { small: { width: 10, height: 10 }, big: { width: 20, height: 20 } }, formats: ['webp', 'jpeg'] }));
    expect(outputs).toEqual([
      { variant: 'small', format: 'webp', key: 'small/2024/cat.webp' },
      { variant: 'small', format: 'jpeg', key: 'small/2024/cat.jpg' },
      { variant: 'big', format: 'webp', key: 'big/2024/cat.webp' },
      { variant: 'big', format: 'jpeg', key: 'big/2024/cat.jpg' },
    ]);
  });
});

describe('planJobs (pure: config + listing -> jobs)', () => {
  it('processes images, ignores other files, and names every destination', () => {
    const jobs = planJobs(config(), [entry('a.jpg'), entry('notes.txt'), entry('2024/cat.PNG')], nothing, options);
    expect(jobs.map((j) => j.action)).toEqual(['process', 'ignore', 'process']);
    expect(jobs[2]).toMatchObject({ action: 'process', outputs: [{ key: 'thumb/2024/cat.jpg' }, { key: 'medium/2024/cat.jpg' }] });
  });

  it('fails the second of two inputs that would write the same output, instead of overwriting', () => {
    const jobs = planJobs(config(), [entry('cat.jpg'), entry('cat.png')], nothing, options);
    expect(jobs[0]!.action).toBe('process');
    expect(jobs[1]).toMatchObject({ action: 'fail', code: 'OUTPUT_COLLISION' });
    expect(jobs[1]!.action === 'fail' && jobs[1]!.reason).toMatch(/thumb\/cat\.jpg.*cat\.jpg/);
  });

  it('fails a file over the size limit without reading it', () => {
    const [job] = planJobs(config(), [entry('big.jpg', { size: 2_000_000 })], nothing, options);
    expect(job).toMatchObject({ action: 'fail', code: 'INPUT_TOO_LARGE' });
  });

  it('fails an empty local file later (when read) but skips an empty S3 placeholder', () => {
    expect(planJobs(config(), [entry('e.jpg', { size: 0 })], nothing, options)[0]!.action).toBe('process');
    expect(planJobs(config(), [entry('e.jpg', { size: 0 })], nothing, { ...options, skipEmpty: true })[0]!.action).toBe('skip');
  });

  it('skips an input whose outputs all exist, are newer than it and made with this config', () => {
    const fresh: DestinationIndex = { outputs: new Map([['thumb/a.jpg', 2_000], ['medium/a.jpg', 2_000]]), freshSince: 1_500 };
    expect(planJobs(config(), [entry('a.jpg')], fresh, options)[0]).toMatchObject({ action: 'skip', reason: 'up to date' });
  });

  it('reprocesses when an output is missing, older than the input, or from another config, or with force', () => {
    const outputs = new Map([['thumb/a.jpg', 2_000], ['medium/a.jpg', 2_000]]);
    const plan = (destination: DestinationIndex, source = entry('a.jpg'), force = false) => planJobs(config(), [source], destination, { ...options, force })[0]!.action;
    expect(plan({ outputs: new Map([['thumb/a.jpg', 2_000]]), freshSince: 1_500 })).toBe('process');
    expect(plan({ outputs, freshSince: 1_500 }, entry('a.jpg', { mtimeMs: 3_000 }))).toBe('process');
    expect(plan({ outputs, freshSince: undefined })).toBe('process');
    expect(plan({ outputs, freshSince: 2_500 })).toBe('process');
    expect(plan({ outputs, freshSince: 1_500 }, entry('a.jpg'), true)).toBe('process');
  });

  it('does not touch the filesystem or mutate its inputs', () => {
    const listing = [entry('a.jpg')];
    const copy = structuredClone(listing);
    planJobs(config(), listing, nothing, options);
    expect(listing).toEqual(copy);
  });
});

describe('pipelineFingerprint', () => {
  const base = pipelineFingerprint(config());
  it('is stable for the same config', () => {
    expect(pipelineFingerprint(config())).toBe(base);
  });

  it.each<[string, ConfigInput]>([
    ['quality', { quality: 70 }],
    ['formats', { formats: ['jpeg', 'webp'] }],
    ['sizes', { sizes: { thumb: { width: 100, height: 100 } } }],
    ['fit', { sizes: { thumb: { width: 128, height: 128, fit: 'cover' }, medium: { width: 512, height: 512 } } }],
    ['background', { background: '#000000' }],
    ['metadata', { keepMetadata: 'icc' }],
    ['watermark text', { watermark: { text: 'x' } }],
    ['animation', { animated: true }],
  ])('changes with %s', (_what, input) => {
    expect(pipelineFingerprint(config(input))).not.toBe(base);
  });

  it('changes with the watermark opacity and with the watermark image bytes', () => {
    expect(pipelineFingerprint(config({ watermark: { text: 'x', opacity: 0.5 } }))).not.toBe(pipelineFingerprint(config({ watermark: { text: 'x', opacity: 0.6 } })));
    const mark = config({ watermark: { image: '/logo.png' } });
    expect(pipelineFingerprint(mark, Buffer.from('one'))).not.toBe(pipelineFingerprint(mark, Buffer.from('two')));
  });

  it('ignores settings that do not change output pixels (concurrency, limits)', () => {
    expect(pipelineFingerprint(config({ concurrency: 7, limits: { maxPixels: 10 } }))).toBe(base);
  });
});
