// Regenerates the committed HEIC fixtures: `node scripts/make-heic-fixtures.mjs`. Needs Debian's
// `libheif-examples` (heif-enc, with its x265 HEVC encoder) and `libvips-tools` (vips heifsave): sharp's
// prebuilt libheif can neither encode nor decode HEVC. The tests only read the committed files.
//
// heif-enc 1.15 cannot write rotation (irot), mirroring (imir) or pick a primary image, so those are added
// here by editing the boxes of a file it wrote (ISO/IEC 23008-12: meta > iprp > ipco/ipma, pitm, iloc).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const root = new URL('../fixtures/', import.meta.url);
const at = (p) => new URL(p, root).pathname;
const work = await mkdtemp(join(tmpdir(), 'heic-fixtures-'));
// Loading sharp sets VIPSHOME to its own prebuilt libvips; the system vips would then look for its
// modules (heifsave among them) there and not find them.
const { VIPSHOME: _vipsHome, ...toolEnv } = process.env;
const run = (tool, args) => execFileSync(tool, args, { stdio: 'ignore', env: toolEnv });

/** Encodes PNG files into one HEIC with heif-enc (x265), the first file as the primary image. */
async function heifEnc(pngs, options = []) {
  const out = join(work, 'out.heic');
  run('heif-enc', ['-q', '90', ...options, '-o', out, ...pngs]);
  return readFile(out);
}

async function png(name, image) {
  const path = join(work, name);
  await image.png().toFile(path);
  return path;
}

/** Top-level boxes of `buf` between `start` and `end`: [{ type, start, end, header }]. */
function boxes(buf, start, end) {
  const found = [];
  for (let at = start; at + 8 <= end; ) {
    const size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    found.push({ type, start: at, end: at + size, header: 8 });
    at += size;
  }
  return found;
}

function child(buf, parent, type) {
  // meta and the full boxes inside it have 4 bytes of version and flags after the header.
  const skip = parent.type === 'meta' ? 12 : 8;
  return boxes(buf, parent.start + skip, parent.end).find((b) => b.type === type);
}

/** Adds `extra` bytes at `offset` inside `box` path (outer first), growing every box on the path. */
function insert(buf, path, offset, extra) {
  const out = Buffer.concat([buf.subarray(0, offset), extra, buf.subarray(offset)]);
  for (const box of path) out.writeUInt32BE(out.readUInt32BE(box.start) + extra.length, box.start);
  return out;
}

/** Moves every iloc extent offset that points past `after` by `delta` (the media data moved). */
function shiftIloc(buf, meta, after, delta) {
  const iloc = child(buf, meta, 'iloc');
  let p = iloc.start + 8;
  const version = buf[p];
  p += 4;
  const offsetSize = buf[p] >> 4;
  const lengthSize = buf[p] & 15;
  const baseSize = buf[p + 1] >> 4;
  const indexSize = version >= 1 ? buf[p + 1] & 15 : 0;
  p += 2;
  const read = (n, q) => (n === 0 ? 0 : n === 4 ? buf.readUInt32BE(q) : Number(buf.readBigUInt64BE(q)));
  const write = (n, q, v) => (n === 4 ? buf.writeUInt32BE(v, q) : buf.writeBigUInt64BE(BigInt(v), q));
  const count = version < 2 ? buf.readUInt16BE(p) : buf.readUInt32BE(p);
  p += version < 2 ? 2 : 4;
  for (let i = 0; i < count; i++) {
    p += version < 2 ? 2 : 4; // item ID
    if (version >= 1) p += 2; // construction method
    p += 2; // data reference index
    const base = read(baseSize, p);
    if (baseSize && base > after) write(baseSize, p, base + delta);
    p += baseSize;
    const extents = buf.readUInt16BE(p);
    p += 2;
    for (let e = 0; e < extents; e++) {
      p += indexSize;
      const offset = read(offsetSize, p);
      if (!baseSize && offset > after) write(offsetSize, p, offset + delta);
      p += offsetSize + lengthSize;
    }
  }
}

function primaryId(buf, meta) {
  const pitm = child(buf, meta, 'pitm');
  return buf[pitm.start + 8] === 0 ? buf.readUInt16BE(pitm.start + 12) : buf.readUInt32BE(pitm.start + 12);
}

/** Adds a property box to ipco and associates it (essential) with the primary item in ipma. */
function addProperty(input, property) {
  let buf = input;
  const topMeta = () => boxes(buf, 0, buf.length).find((b) => b.type === 'meta');
  let meta = topMeta();
  let iprp = child(buf, meta, 'iprp');
  let ipco = child(buf, iprp, 'ipco');
  const index = boxes(buf, ipco.start + 8, ipco.end).length + 1;
  const at1 = ipco.end;
  buf = insert(buf, [meta, iprp, ipco], at1, property);
  shiftIloc(buf, topMeta(), at1, property.length);
  meta = topMeta();
  iprp = child(buf, meta, 'iprp');
  const ipma = child(buf, iprp, 'ipma');
  const version = buf[ipma.start + 8];
  const wide = (buf.readUInt32BE(ipma.start + 8) & 1) === 1;
  const id = primaryId(buf, meta);
  let p = ipma.start + 12;
  const entries = buf.readUInt32BE(p);
  p += 4;
  for (let i = 0; i < entries; i++) {
    const item = version < 1 ? buf.readUInt16BE(p) : buf.readUInt32BE(p);
    const countAt = p + (version < 1 ? 2 : 4);
    const count = buf[countAt];
    const end = countAt + 1 + count * (wide ? 2 : 1);
    if (item === id) {
      const association = wide ? Buffer.from([0x80 | (index >> 8), index & 0xff]) : Buffer.from([0x80 | index]);
      buf = insert(buf, [meta, iprp, ipma], end, association);
      buf[countAt] = count + 1;
      shiftIloc(buf, topMeta(), end, association.length);
      return buf;
    }
    p = end;
  }
  throw new Error(`no ipma entry for item ${id}`);
}

const box = (type, body) => {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
};

/** Red left half, blue right half: any rotation or mirroring shows in where the colours end up. */
const halves = (width, height) => {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(x < width / 2 ? [220, 20, 20] : [20, 20, 220], (y * width + x) * 3);
  return sharp(data, { raw: { width, height, channels: 3 } });
};

try {
  // Stored 64x32, red left and blue right, with irot 3 (3 × 90° anticlockwise = 90° clockwise): upright
  // it is 32x64, red on top. The EXIF also says orientation 6 (rotate 90° clockwise), as iPhone files do;
  // HEIF readers must ignore it (the transform boxes win), so applying both would turn it 180°.
  const rotatedSource = join(work, 'rotated.jpg');
  await halves(64, 32).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(rotatedSource);
  run('vips', ['heifsave', rotatedSource, join(work, 'rotated.heic'), '--compression', 'hevc', '--Q', '90']);
  await writeFile(at('cases/rotated-irot.heic'), addProperty(await readFile(join(work, 'rotated.heic')), box('irot', Buffer.from([3]))));

  // Stored 64x32, red left; imir axis 1 (mirror left-right): upright 64x32 with blue on the left.
  const mirrorSource = await png('mirror.png', halves(64, 32));
  await writeFile(at('cases/mirrored-imir.heic'), addProperty(await heifEnc([mirrorSource]), box('imir', Buffer.from([1]))));

  // A Display P3 image (ICC profile, as iPhones write it): sRGB #c86432 converted into P3 and tagged so.
  // Read correctly it comes back as #c86432; with the profile ignored it would not.
  const p3Source = join(work, 'p3.png');
  await sharp({ create: { width: 32, height: 24, channels: 3, background: '#c86432' } }).withIccProfile('p3').png().toFile(p3Source);
  run('vips', ['heifsave', p3Source, at('cases/p3.heic'), '--compression', 'hevc', '--Q', '95']);

  // Two images, green (item 1) then magenta (item 2), with the second made primary: a reader that takes
  // the first image instead of the primary one gets green.
  const green = await png('green.png', sharp({ create: { width: 40, height: 30, channels: 3, background: '#20c020' } }));
  const magenta = await png('magenta.png', sharp({ create: { width: 48, height: 36, channels: 3, background: '#c020c0' } }));
  const multi = await heifEnc([green, magenta]);
  const multiMeta = boxes(multi, 0, multi.length).find((b) => b.type === 'meta');
  const pitm = child(multi, multiMeta, 'pitm');
  const ids = [];
  const iinf = child(multi, multiMeta, 'iinf');
  for (const infe of boxes(multi, iinf.start + 14, iinf.end)) ids.push(multi.readUInt16BE(infe.start + 12));
  multi.writeUInt16BE(Math.max(...ids), pitm.start + 12);
  await writeFile(at('cases/multi-primary-second.heic'), multi);

  // 2048x2048 flat grey (a few hundred bytes): decoding it grows the WASM memory, which detaches the pixel
  // views of a decode in progress; two at once show whether decodes are kept apart.
  await writeFile(at('cases/grey-2048.heic'), await heifEnc([await png('grey-2048.png', sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#808080' } }))], ['-q', '30']));

  // A sound header whose HEVC data is cut off after 40 bytes: parses, then fails to decode.
  const whole = await heifEnc([await png('photo.png', halves(64, 48))]);
  const mdat = boxes(whole, 0, whole.length).find((b) => b.type === 'mdat');
  await writeFile(at('bad/truncated.heic'), whole.subarray(0, mdat.start + 48));
  // The same file declaring 30000x30000 in its ispe box: refused on the declared size, never decoded.
  const bomb = Buffer.from(whole);
  const ipco = child(bomb, child(bomb, boxes(bomb, 0, bomb.length).find((b) => b.type === 'meta'), 'iprp'), 'ipco');
  for (const ispe of boxes(bomb, ipco.start + 8, ipco.end).filter((b) => b.type === 'ispe')) {
    bomb.writeUInt32BE(30000, ispe.start + 12);
    bomb.writeUInt32BE(30000, ispe.start + 16);
  }
  await writeFile(at('bad/pixel-bomb.heic'), bomb);
} finally {
  await rm(work, { recursive: true, force: true });
}
console.log('HEIC fixtures written');
