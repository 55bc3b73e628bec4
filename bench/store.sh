#!/usr/bin/env bash
# The snapshot store: save, load, log and gc times and disk bytes per snapshot for 10, 1,000
# and 10,000 snapshots; the folder against the kept bytes with 3 MB snapshots and gc --keep 10;
# and `rtap store log` on 1,000 snapshots (the release rtap). Prints JSON lines and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p rtwisted-cli --bin rtap
RTAP="$target/release/rtap" cargo bench -q -p rtwisted-persist --bench store
