#!/usr/bin/env bash
# The fleet on a real three-member etcd cluster on loopback (needs etcd-server):
# - the foundation (the fleet crate alone): 5 MiB save/load, tag move -> watcher, member and
#   leader expiry, saves across an etcd kill;
# - issue 19's benchmark with the real release rtap and rtwistd: a tag move rolled out to five
#   followers, a singleton leader killed and its standby taking over, an etcd member killed
#   under load on a checkpointing singleton.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p rtwisted-fleet --bench fleet
# The rollout bench drives the release binaries (found next to it, or in RTWISTED_BIN_DIR).
cargo build --release -q -p rtwisted-cli
cargo bench -q -p rtwisted-fleet --bench rollout
