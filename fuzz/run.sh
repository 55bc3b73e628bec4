#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each) and prints how many executions
# each made. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Usage: bash fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in tap_loader tas_loader strports; do
  mkdir -p "corpus/$target"
  echo "== $target ($seconds s)"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|INITED)|Done [0-9]+ runs|ERROR|panicked|SUMMARY" | tail -3
done
