#!/usr/bin/env bash
# A live apply replacing one of 100 services while clients stream through the other 99:
# apply time, the replaced service's gap, and the others' longest round trip before and during.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rtwisted-cli --bins
RTWISTED_BIN_DIR="$PWD/target/release" cargo bench -q -p rtwisted-tests --bench apply
