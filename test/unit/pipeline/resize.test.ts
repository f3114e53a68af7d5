import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { decodeTarget, variantScale } from '../../../src/pipeline/resize.js';

const size = (width: number, height: number, fit: 'inside' | 'cover' | 'contain' = 'inside') => ({ width, height, fit, position: 'center' as const });

describe('variantScale', () => {
  it('fits inside the box keeping the aspect ratio', () => {
    expect(variantScale(1200, 800, size(128, 128))).toBeCloseTo(128 / 1200);
    expect(variantScale(800, 1200, size(128, 128))).toBeCloseTo(128 / 1200);
  });

  it('covers the box for cover', () => {
    expect(variantScale(1200, 800, size(128, 128, 'cover'))).toBeCloseTo(128 / 800);
  });

  it('never enlarges', () => {
    expect(variantScale(50, 40, size(128, 128))).toBe(1);
    expect(variantScale(50, 40, size(128, 128, 'cover'))).toBe(1);
  });
});

describe('decodeTarget (shrink-on-load size)', () => {
  const { sizes } = configSchema.parse({});
  it('decodes at the size the largest variant needs', () => {
    expect(decodeTarget(1200, 800, Object.values(sizes))).toEqual({ width: 512, height: 341 });
    expect(decodeTarget(3000, 6000, Object.values(sizes))).toEqual({ width: 256, height: 512 });
  });

  it('keeps full size when no variant is smaller than the input', () => {
    expect(decodeTarget(300, 200, Object.values(sizes))).toBeUndefined();
  });

  it('leaves enough pixels for a cover crop', () => {
    const target = decodeTarget(1200, 800, [size(128, 128), size(400, 400, 'cover')])!;
    expect(target.height).toBe(400);
    expect(target.width).toBe(600);
  });
});
