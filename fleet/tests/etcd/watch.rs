//! The tag watch `--follow` will use: every tag move, seen within a second.

use std::time::{Duration, Instant};

use rtwisted_fleet::{EtcdStore, TagChange, TagConflict, TagWatch};
use rtwisted_persist::store::StoreAddress;

/// Moves echo's `prod` tag to echo@`number`.
async fn move_prod(store: &EtcdStore, number: u64) {
    let address = StoreAddress::number("echo", number);
    store
        .tag(&address, "prod", TagConflict::Move)
        .await
        .unwrap();
}

async fn next(watch: &mut TagWatch) -> TagChange {
    tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a tag change within 5 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_is_seen_by_a_watcher_within_a_second() {
    let cluster = cluster_or_skip!("a_moved_tag_is_seen");
    let writer = cluster.store("fleet").await;
    let follower = cluster.store("fleet").await;
    writer.put("echo", b"1", Some("prod")).await.unwrap();
    writer.put("echo", b"2", None).await.unwrap();
    writer.put("web", b"w", Some("prod")).await.unwrap();

    let mut watch = follower.watch_tags("echo").await.unwrap();
    assert_eq!(watch.tags().get("prod"), Some(&1));

    let mut slowest = Duration::ZERO;
    for (number, round) in [(2u64, 0), (1, 1), (2, 2)] {
        let moved = Instant::now();
        move_prod(&writer, number).await;
        let change = next(&mut watch).await;
        let seen = moved.elapsed();
        slowest = slowest.max(seen);
        assert_eq!(
            (change.tag.as_str(), change.number),
            ("prod", Some(number)),
            "round {round}"
        );
        assert!(seen < Duration::from_secs(1), "seen after {seen:?}");
    }
    eprintln!("tag move seen by the watcher after at most {slowest:?}");
    assert_eq!(watch.tags().get("prod"), Some(&2));

    // A new tagged save, and a tag taken off, are changes too; other apps' tags are not.
    writer.put("web", b"w2", Some("beta")).await.unwrap();
    writer.put("echo", b"3", Some("canary")).await.unwrap();
    let change = next(&mut watch).await;
    assert_eq!((change.tag.as_str(), change.number), ("canary", Some(3)));
    writer
        .untag(&StoreAddress::number("echo", 2))
        .await
        .unwrap();
    let change = next(&mut watch).await;
    assert_eq!((change.tag.as_str(), change.number), ("prod", None));
    assert!(watch.tags().get("prod").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_goes_on_when_etcd_members_are_killed() {
    let mut cluster = cluster_or_skip!("the_watch_goes_on");
    let writer = cluster.store("fleet").await;
    let follower = cluster.store("fleet").await;
    writer.put("echo", b"1", Some("prod")).await.unwrap();
    writer.put("echo", b"2", None).await.unwrap();
    let mut watch = follower.watch_tags("echo").await.unwrap();

    // The Raft leader goes; whichever member the stream was on, the next move is seen.
    let leader = cluster.leader_index().await;
    cluster.kill(leader);
    let moved = Instant::now();
    move_prod(&writer, 2).await;
    let change = next(&mut watch).await;
    eprintln!(
        "tag move seen {:?} after it was asked for, with the etcd leader just killed",
        moved.elapsed()
    );
    assert_eq!((change.tag.as_str(), change.number), ("prod", Some(2)));
}
