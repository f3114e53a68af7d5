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
 * when its images cannot be linked (S3 outputs): a WebP at quality 50 is about a third of the bytes of
 * the JPEG thumbnail it is made from, so three times as many fit in the page's budget.
 */
export async function makePreview(output: Buffer, side: number): Promise<Preview> {
  // Our own output, already within the limits; the cap only guards against being handed something else.
  const { data, info } = await sharp(output, { limitInputPixels: 16_384 * 16_384, failOn: 'error' })
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 50, effort: 2 })
    .toBuffer({ resolveWithObject: true });
  return { mime: 'image/webp', data, width: info.width, height: info.height };
}
