#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) from the committed seed corpus.
# New inputs go to fuzz/corpus-new/<target> (not committed); a crash leaves its input in
# fuzz/artifacts/<target>/ and fails this script. Needs nightly Rust and cargo-fuzz.
#   fuzz/run.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(idx cifar image_folder image_header weights checkpoint)
for t in "${targets[@]}"; do
  mkdir -p "corpus-new/$t"
  echo "fuzz: $t for ${secs} s"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run --debug-assertions "$t" "corpus-new/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
  grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || tail -5 "$log"
  runs="$(grep -oE "^Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" || echo "?")"
  echo "fuzz: $t: no crash in $runs executions"
  rm -f "$log"
done
