#!/bin/bash
# One process per crate, on the same seeded vectors (100k x 128, 1000 queries).
cd /work/ann-choice
for f in usearch hannoy hnsw_rs; do
  echo "== $(date -Is) load $(cut -d' ' -f1 /proc/loadavg)" >> measure.txt
  /usr/bin/time -v ./target-$f/release/ann-choice $f 100000 128 1000 >> measure.txt 2> time-$f.txt
  grep -E "Maximum resident|Elapsed" time-$f.txt >> measure.txt
done
