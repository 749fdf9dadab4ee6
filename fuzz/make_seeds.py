#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: small valid files and the usual ways they break.

Each seed is the fuzz input, whose first byte is target-specific (idx: odd = gzip the rest;
cifar: number of class-name lines, 0 = none; image_folder: no prefix). Run from fuzz/.
"""
import os
import shutil
import struct
import zlib

def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# IDX: images (magic 0x803, count, rows, cols) and labels (magic 0x801, count).
def images(count, rows, cols, data=None):
    head = struct.pack(">IIII", 0x803, count, rows, cols)
    return head + (bytes(range(count * rows * cols)) if data is None else data)

labels = struct.pack(">II", 0x801, 3) + bytes([7, 0, 9])
for mode, tag in ((0, "raw"), (1, "gz")):
    p = bytes([mode])
    put("idx", f"images-valid-{tag}", p + images(2, 3, 3))
    put("idx", f"labels-valid-{tag}", p + labels)
    put("idx", f"images-truncated-{tag}", p + images(2, 3, 3)[:-5])
    put("idx", f"images-trailing-{tag}", p + images(1, 2, 2) + b"xx")
    put("idx", f"images-huge-dims-{tag}", p + images(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, b"abc"))
    put("idx", f"images-big-count-{tag}", p + images(60000, 28, 28, b"\0" * 64))
    put("idx", f"images-zero-rows-{tag}", p + images(4, 0, 28, b""))
    put("idx", f"wrong-magic-{tag}", p + struct.pack(">IIII", 0x802, 1, 1, 1) + b"\0")
    put("idx", f"short-header-{tag}", p + struct.pack(">I", 0x803) + b"\0\0")
put("idx", "empty", b"\0")
put("idx", "gzip-magic-only", b"\0\x1f\x8b")

# CIFAR: records of label byte(s) + 3072 pixels.
rec10 = bytes([3]) + bytes(i % 251 for i in range(3072))
rec100 = bytes([4, 99]) + bytes(i % 13 for i in range(3072))
put("cifar", "cifar10-one-record-default-names", b"\0" + rec10)
put("cifar", "cifar10-two-records-10-names", b"\x0a" + rec10 + rec10)
put("cifar", "cifar100-two-records-100-names", b"\x64" + rec100 + rec100)
put("cifar", "cifar10-label-out-of-range", b"\0" + bytes([200]) + rec10[1:])
put("cifar", "wrong-length", b"\0" + rec10[:-1])
put("cifar", "wrong-name-count", b"\x03" + rec10)
put("cifar", "empty", b"\0")

# Image folder: PNG (built here), JPEG (copied), broken variants.
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

def png(w, h, color_type=2, rows=None):
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    raw = rows if rows is not None else b"".join(
        b"\0" + bytes((x * 40 + y * 7 + c) % 256 for x in range(w) for c in range(channels))
        for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))

good = png(5, 4)
put("image_folder", "valid-rgb.png", good)
put("image_folder", "valid-gray.png", png(3, 3, 0))
put("image_folder", "valid-rgba.png", png(2, 6, 6))
put("image_folder", "truncated.png", good[: len(good) // 2])
put("image_folder", "zero-bytes", b"")
put("image_folder", "huge-dims.png", png(0x7FFFFFFF, 0x7FFFFFFF, 2, rows=b"\0" * 16))
put("image_folder", "not-an-image.txt", b"hello, not an image\n")
jpeg = "jpeg-source/dot.jpg"
with open(jpeg, "rb") as f:
    j = f.read()
put("image_folder", "valid.jpg", j)
put("image_folder", "truncated.jpg", j[: len(j) // 2])

# image_header: byte 0 (bit 0: JPEG, bit 1: 3 channels), width, height (u32 BE), PNG colour type,
# bit depth (JPEG: SOF marker nibble), interlace, then PNG rows / JPEG scan data.
def header_seed(jpeg, channels3, w, h, ct=2, bd=8, interlace=0, rest=b""):
    return (bytes([int(jpeg) | (2 if channels3 else 0)]) + struct.pack(">II", w, h)
            + bytes([ct, bd, interlace]) + rest)

rows = b"".join(b"\0" + bytes((x * 40 + y * 7 + c) % 256 for x in range(4) for c in range(3))
                for y in range(3))
put("image_header", "png-rgb-4x3", header_seed(False, True, 4, 3, rest=rows))
put("image_header", "png-grey16-2x2", header_seed(False, False, 2, 2, 0, 16,
                                                  rest=b"\0\x12\x34\xfe\xdc" * 2))
put("image_header", "png-palette-4bit-4x2", header_seed(False, True, 4, 2, 3, 4,
                                                        rest=b"\0\x01\x23" * 2))
put("image_header", "png-rgba-interlaced-3x3", header_seed(False, True, 3, 3, 6, 8, 1,
                                                           rest=bytes(range(64))))
put("image_header", "png-60000x60000", header_seed(False, True, 60000, 60000, rest=b"\0" * 16))
put("image_header", "png-wide-row", header_seed(False, False, 0x7FFFFFFF, 1, rest=b"\0" * 16))
put("image_header", "png-64x64-at-limit", header_seed(False, True, 64, 64, rest=b"\0" * 32))
put("image_header", "jpeg-dot-1x1", header_seed(True, True, 1, 1))
put("image_header", "jpeg-65535x65535", header_seed(True, False, 65535, 65535))
put("image_header", "jpeg-progressive-2x2", header_seed(True, True, 2, 2, 0, 2))

# weights: first byte 0 = .safetensors, 1 = .bpk (burnpack), 2 = .pt (torch.save zip).
import io
import json
import struct


def safetensors(tensors):
    header, blob = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


st = safetensors({"w": ("F32", [2, 3], struct.pack("<6f", *range(6))),
                  "b": ("F16", [2], b"\x00\x3c\x00\x40")})
put("weights", "valid.safetensors", b"\x00" + st)
put("weights", "truncated.safetensors", b"\x00" + st[:-5])
put("weights", "huge-header.safetensors", b"\x00" + struct.pack("<Q", 1 << 62) + b"{}")
put("weights", "offsets-past-end.safetensors",
    b"\x00" + safetensors({"w": ("F32", [1 << 30, 4], b"\0" * 16)}))
# checkpoint: bytes 0-1 split the rest into the state, model and optimizer sections; bytes 2-5
# pick the byte to change, how, and where to cut (fuzz_targets/checkpoint.rs).
put("checkpoint", "empty-sections", bytes([0, 0, 0, 0, 1, 0]))
put("checkpoint", "three-sections",
    bytes([11, 100, 57, 3, 16, 40]) + b'{"epoch":1}' + bytes(range(100)) + bytes(50))
bpk = b"BURNPACK" + struct.pack("<I", 0) + b"\0" * 16
put("weights", "header-only.bpk", b"\x01" + bpk)
try:
    import torch  # the .pt seeds need PyTorch itself (pip install torch)

    buf = io.BytesIO()
    torch.save({"fc.weight": torch.arange(6.0).reshape(2, 3), "fc.bias": torch.zeros(2),
                "bn.num_batches_tracked": torch.tensor(3)}, buf)
    pt = buf.getvalue()
    put("weights", "valid.pt", b"\x02" + pt)
    put("weights", "truncated.pt", b"\x02" + pt[: len(pt) // 2])
except ImportError:
    print("torch not installed: .pt seeds left as they are")
