#!/usr/bin/env bash
# Peak memory of `rtap inspect` on a kv snapshot of 1,000,000 items and on hostile snapshots of
# 1,000,000 nils, and the time to open a default-encrypted snapshot, with a one-service snapshot
# as the reference in the same run. Builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p rtwisted-cli --bins
RTWISTED_BIN_DIR="$target/release" cargo bench -q -p rtwisted-tests --bench inspect_memory
