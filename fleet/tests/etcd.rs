//! Black-box tests of the fleet crate against a real three-member etcd cluster on loopback
//! (started per test by [`harness::EtcdCluster`]; skipped with a message when etcd is not
//! installed, failed when `RTWISTED_REQUIRE_ETCD=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

#[path = "etcd/blocking.rs"]
mod blocking;
#[path = "etcd/cli.rs"]
mod cli;
#[path = "etcd/cluster.rs"]
mod cluster;
#[path = "etcd/election.rs"]
mod election;
#[path = "etcd/members.rs"]
mod members;
#[path = "etcd/store.rs"]
mod store;
#[path = "etcd/watch.rs"]
mod watch;
