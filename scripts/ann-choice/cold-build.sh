#!/bin/bash
# Cold release builds, one per crate, each in its own target dir; the baseline is the project without any ANN crate.
cd /work/ann-choice
for f in none usearch hannoy hnsw_rs; do
  rm -rf target-$f
  feat=""; [ $f != none ] && feat="--features $f"
  load=$(cut -d' ' -f1 /proc/loadavg)
  s=$(date +%s.%N)
  CARGO_TARGET_DIR=target-$f nice -n 10 cargo build --release --offline $feat > build-$f.log 2>&1
  rc=$?
  e=$(date +%s.%N)
  echo "$f rc=$rc $(echo "$e - $s" | bc) s (load at start $load, at end $(cut -d' ' -f1 /proc/loadavg))" >> cold-build.txt
done
