import { describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { inspectInput } from '../../../src/pipeline/decode.js';

// Whatever libvips reads as SVG must be refused, even input the byte sniff in decode.ts does not recognise
// (plain text after a BOM or whitespace, gzip). Such input is hard to build by hand, so here sharp's header
// reader reports `svg` for bytes that look like nothing in particular.
vi.mock('sharp', async (importOriginal) => {
  const actual = await importOriginal<typeof import('sharp')>();
  // sharp's statics (strategy, gravity...) stay, for the modules that read them when loaded.
  const fake = Object.assign(() => ({ metadata: async () => ({ format: 'svg', width: 4, height: 4 }) }), actual.default);
  return { ...actual, default: fake };
});

const limits = configSchema.parse({}).limits;

describe('inspectInput after the header is read', () => {
  it('refuses what sharp reads as SVG unless SVG is allowed', async () => {
    const input = Buffer.from('not obviously markup');
    await expect(inspectInput(input, limits)).rejects.toMatchObject({ code: 'INPUT_REFUSED', message: expect.stringMatching(/SVG.*untrusted.*--allow-svg/) });
    await expect(inspectInput(input, { ...limits, allowSvg: true })).resolves.toMatchObject({ format: 'svg' });
  });
});
