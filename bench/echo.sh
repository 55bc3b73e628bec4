#!/usr/bin/env bash
# Echo round trips and MB/s through rtwistd against a plain tokio echo server, in the same run
# on this machine, with 1, 16 and 64 connections and 64 B and 4 KiB messages.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rtwisted-cli --bins --examples
RTWISTED_BIN_DIR="$PWD/target/release" cargo bench -q -p rtwisted-tests --bench echo
