#!/usr/bin/env bash
# Hot restarts under load (refused connections, failed requests, lost kv writes, pauses), and a
# kv of 100,000 items restarted hot against a stop and a start. RESTARTS=N (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rtwisted-cli --bins
RTWISTED_BIN_DIR="$PWD/target/release" cargo bench -q -p rtwisted-tests --bench restart
