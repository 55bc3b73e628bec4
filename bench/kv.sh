#!/usr/bin/env bash
# kv against Debian's memcached, side by side as ratios: memcslap set/get/mget and memcaslap
# throughput, RSS per item for 100,000 items of 100 B, and the checkpoint stall with 1,000,000
# items of 100 B and --checkpoint-every 1s. Needs memcached and libmemcached-tools.
# ROUNDS=N alternating rounds (the median kept, default 5); OPS=N operations per memcslap test.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in memcached memcslap memcaslap; do
    command -v "$tool" >/dev/null || { echo "bench/kv.sh: $tool is missing: apt-get install -y memcached libmemcached-tools" >&2; exit 2; }
done
cargo build --release -q -p rtwisted-cli --bins
python3 bench/kv_bench.py "${CARGO_TARGET_DIR:-$PWD/target}/release"
