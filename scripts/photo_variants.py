"""A folder of photo-sized JPEGs made from the four photographs in datasets/photos: each
photo re-cropped, rescaled, mirrored, brightened and re-encoded `--per-photo` times (seeded),
as `<out>/<photo>/<n>.jpg`. Used to measure indexing at 224 px on photo-sized files and as a
gallery of near-duplicates (the variants of one photo) for `cargo xtask duplicates`.

    python3 scripts/photo_variants.py <out> [--per-photo 64] [--seed 0]
"""

import argparse
import pathlib
import random

from PIL import Image, ImageEnhance, ImageOps

PHOTOS = pathlib.Path(__file__).resolve().parent.parent / "datasets" / "photos"


def variant(photo, rng):
    width, height = photo.size
    area = rng.uniform(0.6, 1.0)
    w = int(width * area ** 0.5)
    h = int(height * area ** 0.5)
    x = rng.randint(0, width - w)
    y = rng.randint(0, height - h)
    out = photo.crop((x, y, x + w, y + h))
    longer = rng.randint(320, 640)
    scale = longer / max(w, h)
    out = out.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.85, 1.15))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--per-photo", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; give a new folder")
    rng = random.Random(args.seed)
    count = 0
    for path in sorted(PHOTOS.iterdir()):
        photo = Image.open(path).convert("RGB")
        folder = out / path.stem
        folder.mkdir(parents=True)
        for n in range(args.per_photo):
            variant(photo, rng).save(folder / f"{n:03}.jpg", quality=rng.randint(70, 95))
            count += 1
    print(f"{count} photos -> {out}")


if __name__ == "__main__":
    main()
