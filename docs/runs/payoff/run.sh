#!/usr/bin/env bash
# The pre-training payoff of docs/results.md: the same network fine-tuned from a self-supervised
# run and trained from scratch, on 1% and 10% of the Fashion-MNIST training labels
# (class-balanced), evaluated on the 10,000 test images.
#
#   bash docs/runs/payoff/run.sh vit      # needs runs/mp:   cargo xtask train --recipe masked-patch --name mp
#   bash docs/runs/payoff/run.sh resnet   # needs runs/byol: cargo xtask train --recipe byol --name byol
#
# 1% of the labels (600 images) trains for 30 epochs, 10% (6,000 images) for 5: about the same
# number of steps. Each run's summary.json holds its accuracy and wall time.
set -euo pipefail
cd "$(dirname "$0")/../../.."
arch=${1:?usage: run.sh vit|resnet}
case "$arch" in
  vit) source=runs/mp ;;
  resnet) source=runs/byol ;;
  *) echo "usage: run.sh vit|resnet" >&2; exit 2 ;;
esac
train() { cargo xtask train --quiet --config "docs/runs/payoff/$arch.toml" "$@"; }
for labels in 1 10; do
  fraction=$(awk "BEGIN { print $labels / 100 }")
  epochs=$([ "$labels" = 1 ] && echo 30 || echo 5)
  train --labels-fraction "$fraction" --epochs "$epochs" --name "payoff-$arch-scratch-$labels" --overwrite
  train --recipe finetune --from "$source" --labels-fraction "$fraction" --epochs "$epochs" \
    --name "payoff-$arch-pretrained-$labels" --overwrite
done
