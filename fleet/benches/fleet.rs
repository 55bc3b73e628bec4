//! The fleet foundation on a real three-member etcd cluster on loopback: 5 MiB save and load,
//! a tag move seen by a watcher, a member's disappearance after its process stops, a
//! standby's takeover after the leader stops, and saves across a kill of the etcd leader.
//! Run with `bash bench/fleet.sh`; prints a table against the goals.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{EtcdCluster, noise};
use rtwisted_fleet::{Election, MemberInfo, TagConflict, members};
use rtwisted_persist::store::StoreAddress;

const ROUNDS: usize = 5;
const TTL: Duration = Duration::from_secs(2);

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(mut cluster) = EtcdCluster::start("bench") else {
        std::process::exit(1);
    };
    let store = cluster.store("bench").await;
    let etcd = cluster.connect("bench").await;
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 5 MiB save and load.
    let (mut saves, mut loads) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let bytes = noise(5 * 1024 * 1024, round as u64 + 1);
        let started = Instant::now();
        let entry = store.put("big", &bytes, None).await.unwrap();
        saves.push(started.elapsed());
        let started = Instant::now();
        let (_, read) = store
            .get(&StoreAddress::number("big", entry.number))
            .await
            .unwrap();
        loads.push(started.elapsed());
        assert!(read == bytes);
    }
    rows.push((
        "save a 5 MiB snapshot (median)".into(),
        ms(median(saves)),
        "-".into(),
    ));
    rows.push((
        "load a 5 MiB snapshot (median)".into(),
        ms(median(loads)),
        "-".into(),
    ));

    // Tag move -> seen by a watcher.
    store.put("echo", b"1", Some("prod")).await.unwrap();
    store.put("echo", b"2", None).await.unwrap();
    let follower = cluster.store("bench").await;
    let mut watch = follower.watch_tags("echo").await.unwrap();
    let mut seen = Vec::new();
    for round in 0..20u64 {
        let number = 1 + (round + 1) % 2;
        let moved = Instant::now();
        store
            .tag(
                &StoreAddress::number("echo", number),
                "prod",
                TagConflict::Move,
            )
            .await
            .unwrap();
        let change = watch.next().await.unwrap();
        seen.push(moved.elapsed());
        assert_eq!(change.number, Some(number));
    }
    let worst = *seen.iter().max().unwrap();
    rows.push((
        "tag move -> seen by a watcher (median / max of 20)".into(),
        format!("{} / {}", ms(median(seen)), ms(worst)),
        "< 1 s".into(),
    ));

    // A member whose process stops refreshing -> gone from the list.
    let info = MemberInfo {
        host: "bench".into(),
        pid: std::process::id(),
        snapshot: None,
        state: "running".into(),
        last_checkpoint: None,
    };
    let mut vanished = Vec::new();
    for _ in 0..3 {
        let member = members::register(&etcd, "echo", &info, TTL).await.unwrap();
        tokio::time::sleep(TTL).await;
        drop(member);
        let stopped = Instant::now();
        while !members::list(&etcd, "echo").await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        vanished.push(stopped.elapsed());
    }
    rows.push((
        format!(
            "member stops -> gone from the list (TTL {} s, median of 3)",
            TTL.as_secs()
        ),
        ms(median(vanished)),
        format!("<= TTL ({} s)", TTL.as_secs()),
    ));

    // The leader stops refreshing -> a waiting standby leads.
    let election = Election::new(&etcd, "kv").unwrap();
    let mut takeovers = Vec::new();
    for _ in 0..3 {
        let leader = election.campaign("old", TTL).await.unwrap();
        let standby = tokio::spawn({
            let election = election.clone();
            async move { election.campaign("new", TTL).await }
        });
        tokio::time::sleep(TTL).await;
        leader.abandon();
        let stopped = Instant::now();
        let new = standby.await.unwrap().unwrap();
        takeovers.push(stopped.elapsed());
        new.resign().await.unwrap();
        drop(leader);
    }
    rows.push((
        format!(
            "leader stops -> standby leads (TTL {} s, median of 3)",
            TTL.as_secs()
        ),
        ms(median(takeovers)),
        format!("< TTL + 1 s ({} s)", TTL.as_secs() + 1),
    ));

    // Saves across a kill of the etcd Raft leader.
    let load = tokio::spawn({
        let store = store.clone();
        async move {
            let (mut slowest, mut errors) = (Duration::ZERO, 0);
            for i in 0..40u64 {
                let started = Instant::now();
                if store.put("load", &noise(100_000, i), None).await.is_err() {
                    errors += 1;
                }
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (slowest, errors)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = cluster.leader_index().await;
    cluster.kill(leader);
    let (slowest, errors) = load.await.unwrap();
    rows.push((
        "40 saves across a kill of the etcd leader: errors, slowest".into(),
        format!("{errors}, {}", ms(slowest)),
        "0 errors".into(),
    ));

    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("{:width$}  {:>16}  goal", "what", "measured");
    for (what, measured, goal) in &rows {
        println!("{what:width$}  {measured:>16}  {goal}");
    }
}
