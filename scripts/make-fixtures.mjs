// Regenerates the tiny committed fixtures: `node scripts/make-fixtures.mjs`. Deterministic, no downloads.
import { mkdir, writeFile } from 'node:fs/promises';
import { deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';

const root = new URL('../fixtures/', import.meta.url);
const at = (p) => new URL(p, root).pathname;
await mkdir(at('images/2024'), { recursive: true });
await mkdir(at('bad'), { recursive: true });
await mkdir(at('cases'), { recursive: true });

/** A smooth, photo-like gradient with some texture, so JPEG sizes are realistic. */
function photo(width, height, seed) {
  const data = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const n = (s >> 16) % 24;
      const i = (y * width + x) * 3;
      data[i] = Math.min(255, Math.round((x / width) * 200 + 30 + n));
      data[i + 1] = Math.min(255, Math.round((y / height) * 160 + 60 + n));
      data[i + 2] = Math.min(255, Math.round(((x + y) / (width + height)) * 120 + 90 + n));
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

// Sample images for the quick start.
await photo(1200, 800, 1).jpeg({ quality: 80 }).toFile(at('images/landscape.jpg'));
await photo(900, 1200, 2).jpeg({ quality: 80 }).toFile(at('images/2024/portrait.jpg'));
await photo(320, 240, 3).png().toFile(at('images/2024/cat.PNG'));
await photo(800, 600, 4).webp({ quality: 80 }).toFile(at('images/meadow.webp'));

// Correctness cases: each isolates one property a test checks on the output's pixels or metadata.
// Stored 300x150 with a red left half and blue right half; EXIF orientation 6 (rotate 90° clockwise to display),
// so upright it is 150x300 with red on top and blue at the bottom.
const halves = Buffer.alloc(300 * 150 * 3);
for (let y = 0; y < 150; y++) for (let x = 0; x < 300; x++) halves.set(x < 150 ? [220, 20, 20] : [20, 20, 220], (y * 300 + x) * 3);
await sharp(halves, { raw: { width: 300, height: 150, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(at('cases/rotated-exif6.jpg'));
// GPS and camera EXIF that must not survive by default.
await photo(320, 240, 5)
  .jpeg({ quality: 90 })
  .withExif({ IFD0: { Make: 'FixtureCam', Model: 'GPS-1' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 0/1' } })
  .toFile(at('cases/gps.jpg'));
// Left half fully transparent, right half opaque green.
const rgba = Buffer.alloc(200 * 100 * 4);
for (let y = 0; y < 100; y++) for (let x = 0; x < 200; x++) rgba.set(x < 100 ? [0, 0, 0, 0] : [0, 200, 0, 255], (y * 200 + x) * 4);
await sharp(rgba, { raw: { width: 200, height: 100, channels: 4 } }).png().toFile(at('cases/transparent.png'));
// A uniform mid-grey, so a watermark is the only bright/dark detail.
await sharp({ create: { width: 600, height: 400, channels: 3, background: '#808080' } }).jpeg({ quality: 95 }).toFile(at('cases/grey.jpg'));
await sharp({ create: { width: 300, height: 200, channels: 3, background: '#cc2020' } }).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(at('cases/cmyk.jpg'));
await photo(300, 200, 6).toColourspace('rgb16').png().toFile(at('cases/sixteen-bit.png'));
await photo(300, 200, 7).greyscale().png().toFile(at('cases/greyscale.png'));
await photo(300, 200, 8).tiff().toFile(at('cases/tiff-photo.tiff'));
await photo(300, 200, 9).avif({ quality: 50 }).toFile(at('cases/avif-photo.avif'));
const frames = await Promise.all(['#ff0000', '#00ff00', '#0000ff'].map((c) => sharp({ create: { width: 120, height: 80, channels: 3, background: c } }).png().toBuffer()));
await sharp(frames, { join: { animated: true } }).gif({ delay: [100, 100, 100] }).toFile(at('cases/animated.gif'));

// Bad inputs: each must fail alone with a one-line reason.
await writeFile(at('bad/empty.jpg'), Buffer.alloc(0));
await writeFile(at('bad/not-an-image.jpg'), 'This is a text file with a .jpg name.\n');
const full = await photo(400, 300, 10).jpeg({ quality: 90 }).toBuffer();
await writeFile(at('bad/truncated.jpg'), full.subarray(0, Math.floor(full.length / 2)));
const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="red"/></svg>\n';
await writeFile(at('bad/vector.svg'), svg);
// The same SVG gzipped (SVGZ, which librsvg reads) under a .jpg name: it must be refused like plain SVG.
// gzipSync writes no timestamp, so the bytes are the same on every run.
await writeFile(at('bad/gzipped-svg.jpg'), gzipSync(svg));

// cases/tiny.heic (16x16, HEVC-compressed HEIF) is committed, not generated here: sharp's prebuilt libheif
// has no HEVC encoder (nor decoder). It was made with the libvips CLI (Debian's libvips-tools 8.14):
//   node -e "require('sharp')({create:{width:16,height:16,channels:3,background:'#3060c0'}}).png().toFile('in.png')"
//   vips heifsave in.png fixtures/cases/tiny.heic --compression hevc

/** A PNG that declares 30000x30000 but carries almost no data: decoding it naively would allocate 3.6 GB. */
function pixelBomb() {
  const chunk = (type, body) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const td = Buffer.concat([Buffer.from(type), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30000, 0);
  ihdr.writeUInt32BE(30000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const idat = deflateSync(Buffer.alloc(30001 * 4));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
await writeFile(at('bad/pixel-bomb.png'), pixelBomb());
console.log('fixtures written');
