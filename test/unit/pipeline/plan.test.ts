import { describe, expect, it } from 'vitest';
import { configSchema, type ConfigInput } from '../../../src/config/schema.js';
import { createPlanner, destinationKeys, planJobs, pipelineFingerprint, plannedOutputs, type DestinationIndex, type PlanOptions } from '../../../src/pipeline/plan.js';
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

  it('names the other input by its full path or URI: with several inputs, a key alone is ambiguous', () => {
    const jobs = planJobs(config(), [entry('cat.jpg', { uri: '/photos/a/cat.jpg' }), entry('cat.png', { uri: 's3://b/in/cat.png' })], nothing, options);
    expect(jobs[1]).toMatchObject({ action: 'fail', code: 'OUTPUT_COLLISION', reason: 'its output thumb/cat.jpg is already produced from /photos/a/cat.jpg; rename one of them' });
  });

  it('fails an entry its listing could not read (an unreadable folder) with the listing\'s code and reason', () => {
    const error = { code: 'LOCAL_UNREADABLE', message: 'cannot read the folder /in/b, so nothing under it was processed: EACCES' };
    expect(planJobs(config(), [entry('b/', { error })], nothing, options)[0]).toEqual({ action: 'fail', entry: entry('b/', { error }), outputs: [], code: 'LOCAL_UNREADABLE', reason: error.message });
  });

  it('fails keys with "..", "." or empty segments as UNSAFE_KEY, naming no output', () => {
    const keys = ['../../escaped.jpg', 'a/../../../x.jpg', 'a/./b.jpg', '/abs.jpg', 'a//b.jpg', '..'];
    const jobs = planJobs(config(), [...keys.map((k) => entry(k)), entry('..hidden.jpg'), entry('a..b/c.jpg')], nothing, options);
    expect(jobs.slice(0, 5)).toEqual(keys.slice(0, 5).map((k) => ({ action: 'fail', entry: entry(k), outputs: [], code: 'UNSAFE_KEY', reason: expect.stringMatching(/segment/) })));
    expect(jobs[0]!.action === 'fail' && jobs[0]!.reason).toContain('outside the destination');
    expect(jobs[5]!.action).toBe('ignore'); // not an image key at all
    expect(jobs.slice(6).map((j) => j.action)).toEqual(['process', 'process']);
  });

  it('catches a collision among recent stems only: memory stays bounded however long the listing', () => {
    const between = (n: number) => Array.from({ length: n }, (_, i) => entry(`cat.k${i}.jpg`));
    const plan = (n: number) => planJobs(config(), [entry('cat.jpg'), ...between(n), entry('cat.png')], nothing, { ...options, collisionWindow: 4 }).at(-1)!;
    // Keys that would collide sort next to each other; within the window they are caught...
    expect(plan(3)).toMatchObject({ action: 'fail', code: 'OUTPUT_COLLISION' });
    // ...and past it, the older stem has been forgotten (a documented limit, not a map of every key).
    expect(plan(4).action).toBe('process');
  });

  it('skips zero-byte entries of sources whose empty objects are placeholders, whatever the default', () => {
    const plan = createPlanner(config(), nothing, options);
    expect(plan(entry('e.jpg', { size: 0 }), { emptyObjectsArePlaceholders: true })).toMatchObject({ action: 'skip', reason: 'empty object' });
    expect(plan(entry('f.jpg', { size: 0 }), { emptyObjectsArePlaceholders: false }).action).toBe('process');
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

  it('redoes a source from the same second as its outputs (S3 times are whole seconds), rather than skip it', () => {
    // An S3 source listed at 10 s counts as modified up to 10.999 s; an output listed at 10 s was written
    // at 10.000 s at the earliest: it may be older than the source, so the source is processed again.
    const sameSecond = { outputs: new Map([['thumb/a.jpg', 10_000], ['medium/a.jpg', 10_000]]), freshSince: 5_999 };
    expect(planJobs(config(), [entry('a.jpg', { mtimeMs: 10_999 })], sameSecond, options)[0]!.action).toBe('process');
    expect(planJobs(config(), [entry('a.jpg', { mtimeMs: 9_999 })], sameSecond, options)[0]!.action).toBe('skip');
    // Likewise the state file: outputs from its second may predate it.
    expect(planJobs(config(), [entry('a.jpg', { mtimeMs: 9_999 })], { ...sameSecond, freshSince: 10_999 }, options)[0]!.action).toBe('process');
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

describe('sidecars in the plan', () => {
  const withSidecar = config({ sidecar: true });
  const outputs = (sidecarAt?: number) => new Map([['thumb/a.jpg', 2_000], ['medium/a.jpg', 2_100], ...(sidecarAt === undefined ? [] : [['meta/a.jpg.json', sidecarAt] as [string, number]])]);

  it('names the sidecar meta/<key>.json, extension kept, after the outputs', () => {
    const [job] = planJobs(withSidecar, [entry('2024/cat.PNG')], nothing, options);
    expect(job).toMatchObject({ action: 'process', sidecar: 'meta/2024/cat.PNG.json' });
    expect(destinationKeys('2024/cat.PNG', withSidecar)).toEqual(['thumb/2024/cat.jpg', 'medium/2024/cat.jpg', 'meta/2024/cat.PNG.json']);
    expect(planJobs(config(), [entry('a.jpg')], nothing, options)[0]).not.toHaveProperty('sidecar');
  });

  it('redoes an image whose sidecar is missing, older than the source or the state, or older than its outputs', () => {
    const action = (sidecarAt: number | undefined, over: Partial<DestinationIndex> = {}) => planJobs(withSidecar, [entry('a.jpg')], { outputs: outputs(sidecarAt), freshSince: 1_500, ...over }, options)[0]!.action;
    expect(action(2_200)).toBe('skip');
    expect(action(undefined)).toBe('process');
    expect(action(900)).toBe('process');
    expect(action(2_200, { freshSince: 2_150 })).toBe('process');
    // Written before the medium output (2_100): it may describe other bytes.
    expect(action(2_050)).toBe('process');
    // Without sidecars, the same destination is up to date.
    expect(planJobs(config(), [entry('a.jpg')], { outputs: outputs(undefined), freshSince: 1_500 }, options)[0]!.action).toBe('skip');
  });

  it('refuses a size named "meta" while sidecars are on, naming the field', () => {
    const result = configSchema.safeParse({ sidecar: true, sizes: { meta: { width: 10, height: 10 } } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ path: ['sizes', 'meta'] });
    expect(configSchema.safeParse({ sizes: { meta: { width: 10, height: 10 } } }).success).toBe(true);
  });
});
