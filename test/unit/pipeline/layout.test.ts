import { describe, expect, it } from 'vitest';
import { extensionOf, FORMAT_EXTENSIONS, isImageKey, joinKey, outputKey, outputStem, relativeTo } from '../../../src/pipeline/layout.js';

describe('output layout', () => {
  it('maps photos/2024/cat.PNG to thumb/2024/cat.jpg and medium/2024/cat.jpg', () => {
    expect(outputKey('2024/cat.PNG', 'thumb', 'jpeg')).toBe('thumb/2024/cat.jpg');
    expect(outputKey('2024/cat.PNG', 'medium', 'jpeg')).toBe('medium/2024/cat.jpg');
  });

  it('gives each format its own extension', () => {
    expect(FORMAT_EXTENSIONS).toEqual({ jpeg: 'jpg', png: 'png', webp: 'webp', avif: 'avif' });
    expect(['jpeg', 'png', 'webp', 'avif'].map((f) => outputKey('a/b.tiff', 'large', f as 'jpeg'))).toEqual(['large/a/b.jpg', 'large/a/b.png', 'large/a/b.webp', 'large/a/b.avif']);
  });

  it('maps a single file (key = its name) to <variant>/<name>.<ext>', () => {
    expect(outputKey('photo.jpeg', 'thumb', 'webp')).toBe('thumb/photo.webp');
  });

  it('replaces only the last extension, and keeps dots in folder names', () => {
    expect(outputKey('v1.2/cat.final.png', 'thumb', 'jpeg')).toBe('thumb/v1.2/cat.final.jpg');
    expect(outputKey('v1.2/README', 'thumb', 'jpeg')).toBe('thumb/v1.2/README.jpg');
    expect(outputKey('.hidden', 'thumb', 'jpeg')).toBe('thumb/.hidden.jpg');
  });

  it('picks images by extension, case-insensitively', () => {
    for (const key of ['a.jpg', 'a.JPG', 'a.Jpeg', 'b/c.PNG', 'x.webp', 'x.GIF', 'x.tif', 'x.TIFF', 'x.avif', 'x.heic', 'x.svg']) expect(isImageKey(key), key).toBe(true);
    for (const key of ['notes.txt', 'jpg', 'a.jpg.bak', '.a.jpg.0a1b2c.tmp', 'folder.jpg/readme', '.jpg']) expect(isImageKey(key), key).toBe(false);
  });

  it('reads extensions from the last path segment only', () => {
    expect(extensionOf('a.b/c')).toBe('');
    expect(extensionOf('a/c.JPG')).toBe('.jpg');
  });

  it('splits every key the same way for picking inputs and naming outputs: stem + extension is the key', () => {
    for (const key of ['2024/cat.PNG', 'v1.2/cat.final.png', 'v1.2/README', '.hidden', 'a/.hidden', 'a/.env.local', 'a.b/c', 'x.', 'photo.jpeg']) {
      const stem = outputStem(key);
      expect(stem + extensionOf(key), key).toBe(stem + key.slice(stem.length).toLowerCase());
      expect(key.startsWith(stem), key).toBe(true);
      expect(outputKey(key, 'thumb', 'png'), key).toBe(`thumb/${stem}.png`);
    }
    expect(outputStem('a/.hidden')).toBe('a/.hidden');
    expect(extensionOf('a/.hidden')).toBe('');
  });

  it('joins and strips prefixes with exactly one slash', () => {
    expect(joinKey('', 'k')).toBe('k');
    expect(joinKey('p', 'k')).toBe('p/k');
    expect(joinKey('p/', 'k')).toBe('p/k');
    expect(relativeTo('in/', 'in/a.jpg')).toBe('a.jpg');
    expect(relativeTo('in/', 'out/a.jpg')).toBeUndefined();
    expect(relativeTo('in/', 'in/')).toBeUndefined();
  });
});
