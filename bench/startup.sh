#!/usr/bin/env bash
# Launch-to-accept time of `rtwistd -n -f echo.tap` against a plain tokio echo server, measured
# in the same run on this machine. Builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rtwisted-cli --bins --examples
RTWISTED_BIN_DIR="$PWD/target/release" cargo bench -q -p rtwisted-tests --bench startup
