import { describe, expect, it } from 'vitest';
import { buildSidecar, buildSrcset, type SidecarOutput } from '../../../src/report/sidecar.js';

const out = (variant: string, format: SidecarOutput['format'], key: string, width: number): SidecarOutput => ({ variant, format, key, width, height: Math.round(width / 2), bytes: width * 10 });

describe('buildSrcset', () => {
  it('lists each format by width, narrowest first, one candidate per width', () => {
    const srcset = buildSrcset([out('large', 'jpeg', 'large/a.jpg', 1024), out('thumb', 'jpeg', 'thumb/a.jpg', 128), out('thumb', 'webp', 'thumb/a.webp', 128), out('medium', 'jpeg', 'medium/a.jpg', 128)]);
    // medium came out as wide as thumb (a small source is never enlarged): listed once.
    expect(srcset).toEqual({ jpeg: 'thumb/a.jpg 128w, large/a.jpg 1024w', webp: 'thumb/a.webp 128w' });
  });

  it('percent-encodes each key segment, so a space, comma, # or ? cannot split or cut a candidate', () => {
    expect(buildSrcset([out('thumb', 'jpeg', 'thumb/My Photos/a,b#1?.jpg', 128)]).jpeg).toBe('thumb/My%20Photos/a%2Cb%231%3F.jpg 128w');
  });
});

describe('buildSidecar', () => {
  it('holds the oriented source size and aspect ratio, the colour, both placeholders, the outputs and the srcset', () => {
    const placeholder = { thumbhash: 'AAAA', dataURL: 'data:image/png;base64,xx', color: '#102030' };
    const outputs = [out('thumb', 'jpeg', 'thumb/2024/a.jpg', 128)];
    const sidecar = buildSidecar({ key: '2024/a.heic', bytes: 5000, info: { format: 'heic', width: 3024, height: 4032, pages: 1 } }, placeholder, outputs);
    expect(sidecar).toEqual({
      tool: 'img-pipeline',
      version: 1,
      source: { key: '2024/a.heic', format: 'heic', width: 3024, height: 4032, aspectRatio: 0.75, bytes: 5000 },
      color: '#102030',
      placeholder: { thumbhash: 'AAAA', dataURL: 'data:image/png;base64,xx' },
      outputs,
      srcset: { jpeg: 'thumb/2024/a.jpg 128w' },
    });
  });
});
