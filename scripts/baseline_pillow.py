"""The original Python/Pillow Lambda's work, as a baseline: decode, two LANCZOS thumbnails (128, 512),
a text watermark, JPEG quality 85. Usage: baseline_pillow.py SRC_DIR OUT_DIR WORKERS FONT_FILE"""
import io
import os
import sys
from multiprocessing import Pool

from PIL import Image, ImageDraw, ImageFont, ImageOps

SIZES = [("thumb", (128, 128)), ("medium", (512, 512))]
TEXT = "\u00a9 img-pipeline"


def process(args):
    path, out_dir, font_file = args
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        for name, size in SIZES:
            thumb = img.copy()
            thumb.thumbnail(size, Image.LANCZOS)
            thumb = thumb.convert("RGB")
            font = ImageFont.truetype(font_file, max(11, thumb.width // 20))
            draw = ImageDraw.Draw(thumb)
            box = draw.textbbox((0, 0), TEXT, font=font)
            x = thumb.width - (box[2] - box[0]) - 4
            y = thumb.height - (box[3] - box[1]) - 8
            draw.text((x, y), TEXT, font=font, fill=(255, 255, 255))
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=85)
            with open(os.path.join(out_dir, f"{name}-{os.path.basename(path)}.jpg"), "wb") as f:
                f.write(buf.getvalue())


if __name__ == "__main__":
    src, out, workers, font_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    os.makedirs(out, exist_ok=True)
    exts = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif")
    files = [os.path.join(r, f) for r, _, fs in os.walk(src) for f in sorted(fs) if f.lower().endswith(exts)]
    with Pool(workers) as pool:
        pool.map(process, [(f, out, font_file) for f in files], chunksize=1)
