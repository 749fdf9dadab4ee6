#!/usr/bin/env bash
# GPU check: runs a prebuilt release `xtask` on an NVIDIA machine through wgpu (Vulkan), then
# copies what it printed and wrote under $OUT.
#
#   cargo build --release -p xtask --features wgpu      # on a machine with the toolchain
#   mkdir -p .gpu && strip -o .gpu/xtask target/release/xtask && xz -T0 -6 .gpu/xtask
#   OUT=runs/gpu SIMCLR_SECONDS=300 scripts/gpu-check.sh  # on the GPU machine, repo root
#
# Steps: GPU facts; the augmentation bench's device path on wgpu; the model benchmarks on wgpu (when
# the binary has them); data parallel over two GPUs in one process (`--devices wgpu:0,wgpu:1`,
# the one GPU twice on a one-GPU machine) against one, DP_STEPS steps of `simclr-short` each;
# the full `simclr` recipe on wgpu for SIMCLR_SECONDS (killed then: its
# metrics and last checkpoint stay, and `cargo xtask train --resume --name simclr` continues it).
# CUDA is not in the binary: cubecl-cuda 0.11.3 downloads an LLVM bundle at build time, which
# an offline build machine cannot reach (docs/benchmarks.md).
set -uo pipefail
OUT=${OUT:-runs/gpu}
SIMCLR_SECONDS=${SIMCLR_SECONDS:-300}
SIMCLR_EPOCHS=${SIMCLR_EPOCHS:-100}
DP_STEPS=${DP_STEPS:-60}
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p "$XDG_RUNTIME_DIR"

BIN=${BIN:-}
if [ -z "$BIN" ]; then
  if [ -f .gpu/xtask.xz ]; then xz -dc .gpu/xtask.xz > /tmp/xtask && chmod +x /tmp/xtask; BIN=/tmp/xtask
  else BIN=target/release/xtask; fi
fi

# Vulkan loader and the NVIDIA ICD (a bare CUDA image has neither registered).
if ! ldconfig -p | grep -q 'libvulkan.so.1' && ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

{
  echo "== machine"; date -u; nproc; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  echo "== augmentation bench (device path on wgpu)"
  timeout 120 "$BIN" bench augment --devices wgpu --iters 7 --out-dir "$OUT/bench"
  if "$BIN" bench --help 2>/dev/null | grep -q models; then
    echo "== model benchmarks on wgpu"
    timeout 150 "$BIN" bench models --devices wgpu --out-dir "$OUT/bench"
  fi
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  if [ "${gpus:-0}" -ge 2 ]; then pair=wgpu:0,wgpu:1; else pair=wgpu:0,wgpu:0; fi
  echo "== data parallel: simclr-short for $DP_STEPS steps on wgpu:0, then on $pair ($gpus GPUs)"
  timeout 150 "$BIN" train --recipe simclr-short --device wgpu:0 --max-steps "$DP_STEPS" \
    --runs-dir "$OUT/runs" --name one-device --overwrite
  echo "one-device exit status: $?"
  timeout 150 "$BIN" train --recipe simclr-short --devices "$pair" --max-steps "$DP_STEPS" \
    --runs-dir "$OUT/runs" --name two-devices --overwrite
  echo "two-devices exit status: $?"
  echo "== simclr recipe on wgpu: ${SIMCLR_EPOCHS} epochs, at most ${SIMCLR_SECONDS}s"
  timeout "$SIMCLR_SECONDS" "$BIN" train --recipe simclr --device wgpu --epochs "$SIMCLR_EPOCHS" \
    --runs-dir "$OUT/runs" --name simclr --overwrite
  echo "simclr exit status: $?"
} 2>&1 | tee "$OUT/gpu-check.log"
cp "$OUT/runs/simclr/metrics.csv" "$OUT/simclr-metrics.csv" 2>/dev/null
for run in one-device two-devices; do
  cp "$OUT/runs/$run/summary.json" "$OUT/$run-summary.json" 2>/dev/null
done
for f in summary.json eval.md curves.png embedding.png retrieval.png; do
  cp "$OUT/runs/simclr/$f" "$OUT/simclr-$f" 2>/dev/null
done
rm -f "$OUT"/bench/*.json
rm -rf "$OUT/runs"   # checkpoints stay on the machine; $OUT returns files two folders deep at most
exit 0
