#!/usr/bin/env bash
# Peak memory of `xtask train --data-dir` on hostile and huge image folders:
#   1. PNGs whose headers declare 60,000 x 60,000 pixels (1x1 of data): refused from the header;
#   2. the same under --on-bad-image skip (refused from the header, listed, training goes on);
#   3. real 12,000 x 12,000 JPEG photos (noise): refused by the default 64 MP limit;
#   4. the same with --max-image-pixels 200000000: decoded and resized to 32 x 32.
# Prints exit code, peak RSS and wall time of each. Needs Python 3 with Pillow (for the JPEGs)
# and a built xtask (cargo build -p xtask, or pass its path as $1).
#   scripts/image-limits.sh [path/to/xtask]
set -euo pipefail
cd "$(dirname "$0")/.."
xtask="${1:-target/debug/xtask}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'EOF'
import os, struct, sys, zlib
from PIL import Image

root = sys.argv[1]

def png_declaring(width, height):
    # A valid 1x1 RGB PNG whose IHDR then claims width x height.
    raw = b"\x00\x09\x09\x09"
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

for name, size in [("small", 16), ("hostile", 16), ("photos", 12000)]:
    for split, count in [("train", 2), ("test", 1)]:
        for cls in ["a", "b"]:
            d = os.path.join(root, name, split, cls)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
                if name == "photos":
                    image.save(os.path.join(d, f"{i}.jpg"), quality=90)
                else:
                    image.save(os.path.join(d, f"{i}.png"))
    if name == "hostile":
        # Four forged files next to the good ones.
        for i in range(4):
            with open(os.path.join(root, name, "train", "a", f"huge{i}.png"), "wb") as f:
                f.write(png_declaring(60000, 60000))
EOF

config="$work/tiny.toml"
cat > "$config" <<'EOF'
epochs = 1
batch_size = 2
[data]
image_size = [32, 32]
[backbone]
kind = "resnet"
layers = [1, 1, 1, 1]
stem = "cifar"
width = 4
in_channels = 3
num_classes = 2
[eval]
plots = false
linear_probe = false
baselines = false
knn_k = 1
EOF

measure() {
  local label="$1"; shift
  local log="$work/time.log" out="$work/out.log"
  set +e
  /usr/bin/time -v "$xtask" train --recipe supervised --quiet --runs-dir "$work/runs" \
    --config "$config" "$@" >"$out" 2>"$log"
  local code=$?
  set -e
  local rss wall
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  printf '%-58s exit %s  peak RSS %6.1f MB  wall %s\n' "$label" "$code" "$(echo "$rss / 1024" | bc -l)" "$wall"
  grep -m1 "^error" "$log" | cut -c1-220 || true
}

echo "xtask: $xtask ($(git rev-parse --short HEAD), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F))"
measure "4 PNGs declaring 60000x60000 (default limit)" --data-dir "$work/hostile" --name h1
measure "the same, --on-bad-image skip" --data-dir "$work/hostile" --name h2 --on-bad-image skip
measure "6 JPEG photos 12000x12000 (default limit 64 MP)" --data-dir "$work/photos" --name p1
measure "the same, --max-image-pixels 200000000" --data-dir "$work/photos" --name p2 \
  --max-image-pixels 200000000
measure "baseline: 6 PNGs 16x16" --data-dir "$work/small" --name s1
