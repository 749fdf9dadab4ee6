"""Indexing throughput of PyTorch on the same files as `cargo xtask index`: PIL decode,
torchvision's evaluation transform, a torchvision ResNet-50 (random weights: speed only) with
its classifier removed, global average pooling, L2 normalisation. Prints one JSON line.

    python3 scripts/index_peer_torch.py <image folder> [--threads 2] [--batch-size 32]
        [--size 224] [--arch resnet50]

`--arch triplet-resnet10` is the network of the `triplet` recipe instead (ResNet-10 with widths
16-32-64-128, the CIFAR stem, one input channel, a 128-d linear head), on grayscale images at
their own size (28 px Fashion-MNIST PNGs), normalised with Fashion-MNIST's mean and deviation:
the peer of `cargo xtask index --run runs/<triplet run>`.

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


class Block(torch.nn.Module):
    """torchvision's BasicBlock with any input and output width."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def triplet_resnet10():
    """The `triplet` recipe's network: CIFAR stem, one block per stage, widths 16..128."""
    widths = [16, 32, 64, 128]
    layers = [torch.nn.Conv2d(1, 16, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(16),
              torch.nn.ReLU()]
    cin = 16
    for i, w in enumerate(widths):
        layers.append(Block(cin, w, 1 if i == 0 else 2))
        cin = w
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, 128)]
    return torch.nn.Sequential(*layers)


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, transform, mode="RGB"):
        self.paths = paths
        self.transform = transform
        self.mode = mode

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert(self.mode))


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
    triplet = args.arch == "triplet-resnet10"
    if triplet:
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize([0.2860406], [0.35302424])]
        )
    else:
        transform = transforms.Compose(
            [
                transforms.Resize(args.size * 256 // 224),
                transforms.CenterCrop(args.size),
                transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        )
    loader = torch.utils.data.DataLoader(
        Files(paths, transform, "L" if triplet else "RGB"),
        batch_size=args.batch_size,
        num_workers=args.threads,
    )
    torch.manual_seed(0)
    if triplet:
        model = triplet_resnet10()
    else:
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
                "size": 28 if triplet else args.size,
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
