//! Members under leases: listed while alive, gone one TTL after their process is killed.

use std::time::{Duration, Instant};

use rtwisted_fleet::{MemberInfo, members};

use crate::{MEMBER_TTL, fleet_member};

fn info(state: &str) -> MemberInfo {
    MemberInfo {
        host: "here".to_owned(),
        pid: std::process::id(),
        snapshot: Some("echo@3".to_owned()),
        state: state.to_owned(),
        last_checkpoint: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_vanishes_after_its_lease_ttl() {
    let cluster = cluster_or_skip!("a_killed_member_vanishes");
    let (etcd, mut process) = fleet_member(&cluster, "echo", None).await;
    let ttl = MEMBER_TTL;
    let id = process.expect("member", Duration::from_secs(20));

    let listed = members::list(&etcd, "echo").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].info.pid, process.pid());
    assert_eq!(listed[0].info.state, "running");
    // Alive past its TTL: the lease is being refreshed.
    tokio::time::sleep(Duration::from_secs(ttl + 1)).await;
    assert_eq!(members::list(&etcd, "echo").await.unwrap().len(), 1);

    process.kill();
    let killed = Instant::now();
    let deadline = Duration::from_secs(ttl + 3);
    loop {
        let listed = members::list(&etcd, "echo").await.unwrap();
        if listed.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < deadline,
            "the killed member is still listed {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "member vanished {:?} after kill -9 (lease TTL {ttl} s)",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_updated_and_leave_at_once() {
    let cluster = cluster_or_skip!("members_are_listed");
    let etcd = cluster.connect("fleet").await;
    let ttl = Duration::from_secs(5);
    let first = members::register(&etcd, "echo", &info("starting"), ttl)
        .await
        .unwrap();
    let second = members::register(&etcd, "echo", &info("standby"), ttl)
        .await
        .unwrap();
    members::register(&etcd, "web", &info("running"), ttl)
        .await
        .unwrap();
    assert_ne!(first.id(), second.id());

    let mut running = info("running");
    running.last_checkpoint = Some("echo@4".to_owned());
    first.update(&running).await.unwrap();
    let listed = members::list(&etcd, "echo").await.unwrap();
    assert_eq!(listed.len(), 2);
    let shown = listed.iter().find(|m| m.id == first.id()).unwrap();
    assert_eq!(shown.info, running);

    let second_id = second.id().to_owned();
    second.leave().await.unwrap();
    let listed = members::list(&etcd, "echo").await.unwrap();
    assert!(listed.iter().all(|m| m.id != second_id), "left at once");
    assert_eq!(listed.len(), 1);
    assert!(members::list(&etcd, "bad/app").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_member_whose_lease_is_lost_registers_again_with_the_same_id() {
    let cluster = cluster_or_skip!("a_live_member_registers_again");
    let etcd = cluster.connect("fleet").await;
    let member = members::register(&etcd, "echo", &info("running"), Duration::from_secs(2))
        .await
        .unwrap();
    let id = member.id().to_owned();

    // Its lease goes (as after a partition longer than the TTL): its key goes with it.
    let mut client = cluster.raw_client().await;
    let leases = client.leases().await.unwrap();
    for lease in leases.leases() {
        client.lease_revoke(lease.id()).await.unwrap();
    }
    let revoked = Instant::now();
    let mut seen_gone = false;
    let back = loop {
        let listed = members::list(&etcd, "echo").await.unwrap();
        match listed.first() {
            None => seen_gone = true,
            Some(shown) if seen_gone => break shown.clone(),
            Some(_) => {}
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "not registered again within 5 s (gone: {seen_gone})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "member registered again {:?} after its lease was revoked",
        revoked.elapsed()
    );
    assert_eq!(back.id, id, "the same id");
    assert_eq!(back.info.state, "running", "the same record");
    assert_eq!(member.renewals(), 1);
    assert!(member.is_current());

    // What it says after that lands under the new lease.
    member.update(&info("leader")).await.unwrap();
    let listed = members::list(&etcd, "echo").await.unwrap();
    assert_eq!(listed[0].info.state, "leader");
}
