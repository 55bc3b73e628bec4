//! Black-box tests of the fleet crate against a real three-member etcd cluster on loopback
//! (started per test by [`harness::EtcdCluster`]; skipped with a message when etcd is not
//! installed, failed when `RTWISTED_REQUIRE_ETCD=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

/// The test's etcd cluster from [`harness::EtcdCluster::start`], or a return from the test when
/// etcd is not installed (the harness has said why). A macro, because a function cannot return
/// from the test that calls it.
macro_rules! cluster_or_skip {
    ($test:expr) => {
        match crate::harness::EtcdCluster::start($test) {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

/// The lease TTL, in seconds, of the `fleet-member` processes the tests kill or pause.
const MEMBER_TTL: u64 = 2;

/// A connection to the cluster's `fleet` prefix, and a `fleet-member` process of `app` under
/// that prefix with a lease of [`MEMBER_TTL`], started with `mode` (`--campaign`,
/// `--checkpoint` or none).
async fn fleet_member(
    cluster: &harness::EtcdCluster,
    app: &str,
    mode: Option<&str>,
) -> (rtwisted_fleet::Etcd, harness::MemberProcess) {
    let etcd = cluster.connect("fleet").await;
    let address = cluster.address("fleet");
    let process = harness::MemberProcess::start_with(&address, app, MEMBER_TTL, mode);
    (etcd, process)
}

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
