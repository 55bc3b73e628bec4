#!/usr/bin/env bash
# The fleet foundation on a real three-member etcd cluster on loopback (needs etcd-server):
# 5 MiB save/load, tag move -> watcher, member and leader expiry, saves across an etcd kill.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -q -p rtwisted-fleet --bench fleet
