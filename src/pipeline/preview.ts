import sharp from 'sharp';

/** A small image to embed in a page as a data URI. */
export interface Preview {
  mime: string;
  data: Buffer;
  width: number;
  height: number;
}

/**
 * Re-encodes one of our own outputs as a small WebP that fits `side`×`side`. The HTML report embeds these
 * when its images cannot be linked (S3 outputs). WebP at quality 45 is enough for a glance at a grid:
 * a textured 160 px preview is about 3.3 KB, less than the default 128 px JPEG thumbnail (about 4 KB)
 * at 1.6 times its pixels.
 */
export async function makePreview(output: Buffer, side: number): Promise<Preview> {
  // Our own output, already within the limits; the cap only guards against being handed something else.
  const { data, info } = await sharp(output, { limitInputPixels: 16_384 * 16_384, failOn: 'error' })
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 45, effort: 2 })
    .toBuffer({ resolveWithObject: true });
  return { mime: 'image/webp', data, width: info.width, height: info.height };
}
