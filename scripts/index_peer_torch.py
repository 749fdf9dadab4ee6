"""Indexing throughput of PyTorch on the same files as `cargo xtask index`: PIL decode,
torchvision's evaluation transform, a torchvision ResNet-50 (random weights: speed only) with
its classifier removed, global average pooling, L2 normalisation. Prints one JSON line.

    python3 scripts/index_peer_torch.py <image folder> [--threads 2] [--batch-size 32]
        [--size 224] [--arch resnet50]

The same threads as the Rust side: torch's intra-op threads and the loader's workers share
`--threads` cores (workers decode while the network runs, as `xtask index` does with rayon).
"""

import argparse
import json
import os
import pathlib
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms

EXTENSIONS = {".png", ".jpg", ".jpeg"}


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="resnet50")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    paths = sorted(
        p for p in pathlib.Path(args.folder).rglob("*") if p.suffix.lower() in EXTENSIONS
    )
    transform = transforms.Compose(
        [
            transforms.Resize(args.size * 256 // 224),
            transforms.CenterCrop(args.size),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    loader = torch.utils.data.DataLoader(
        Files(paths, transform),
        batch_size=args.batch_size,
        num_workers=args.threads,
    )
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)()
    model.fc = torch.nn.Identity()
    model.eval()
    started = time.perf_counter()
    count = 0
    with torch.inference_mode():
        for batch in loader:
            vectors = torch.nn.functional.normalize(model(batch), dim=1)
            count += vectors.shape[0]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "peer": f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}",
                "arch": args.arch,
                "size": args.size,
                "threads": args.threads,
                "images": count,
                "seconds": round(seconds, 3),
                "images_per_second": round(count / seconds, 2),
                "cpu": os.uname().machine,
            }
        )
    )


if __name__ == "__main__":
    main()
