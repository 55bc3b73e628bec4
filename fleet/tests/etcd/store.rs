//! The store on etcd: round trips, concurrent writers, tags, gc, damage, and the loss of an
//! etcd member.

use std::time::Instant;

use etcd_client::GetOptions;
use rtwisted_fleet::{EtcdStore, FleetError, Parent, Save, TagConflict};
use rtwisted_persist::store::StoreAddress;
use sha2::Digest;

use crate::harness::{EtcdCluster, noise};

fn at(text: &str) -> StoreAddress {
    text.parse().unwrap()
}

/// Every chunk key under `prefix` and its value's size.
/// A store under `prefix` into which echo's `snapshots` were put, in order and untagged.
async fn store_holding(cluster: &EtcdCluster, prefix: &str, snapshots: &[&[u8]]) -> EtcdStore {
    let store = cluster.store(prefix).await;
    for snapshot in snapshots {
        store.put("echo", snapshot, None).await.unwrap();
    }
    store
}

async fn chunk_sizes(cluster: &EtcdCluster, prefix: &str) -> Vec<usize> {
    let mut client = cluster.raw_client().await;
    let keys = client
        .get(
            format!("/{prefix}/chunks/"),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for kv in keys.kvs() {
        let value = client.get(kv.key(), None).await.unwrap();
        sizes.push(value.kvs()[0].value().len());
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mb_snapshot_round_trips_in_chunks_under_a_mebibyte() {
    let cluster = cluster_or_skip!("a_5_mb_snapshot_round_trips");
    let store = cluster.store("rt").await;
    let bytes = noise(5 * 1024 * 1024, 7);

    let started = Instant::now();
    let entry = store.put("echo", &bytes, Some("prod")).await.unwrap();
    let saved_in = started.elapsed();
    let started = Instant::now();
    let (by_tag, read) = store.get(&at("echo@prod")).await.unwrap();
    let loaded_in = started.elapsed();
    eprintln!("5 MiB snapshot: save {saved_in:?}, load {loaded_in:?}");

    assert_eq!(entry.address(), "echo@1");
    assert_eq!(entry.parent, None);
    assert_eq!(by_tag, entry);
    assert!(read == bytes, "the bytes read back differ");
    let (latest, _) = store.get(&at("echo")).await.unwrap();
    assert_eq!(latest.number, 1);
    let sizes = chunk_sizes(&cluster, "rt").await;
    assert_eq!(sizes.len(), entry.chunks);
    assert!(sizes.len() >= 6, "{sizes:?}");
    assert!(sizes.iter().all(|size| *size < 1024 * 1024), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), bytes.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_parents_log_and_list_follow_the_saves() {
    let cluster = cluster_or_skip!("numbers_parents_log_and_list");
    let store = cluster.store("log").await;
    for i in 0..3u8 {
        store.put("echo", &[i; 10], None).await.unwrap();
    }
    store.put("web", b"w", None).await.unwrap();

    let log = store.log("echo").await.unwrap();
    let numbers: Vec<(u64, Option<u64>)> = log.iter().map(|e| (e.number, e.parent)).collect();
    assert_eq!(numbers, [(1, None), (2, Some(1)), (3, Some(2))]);
    let (_, second) = store.get(&at("echo@2")).await.unwrap();
    assert_eq!(second, [1u8; 10]);
    let apps: Vec<(String, usize, u64)> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.app, s.count, s.latest.number))
        .collect();
    assert_eq!(apps, [("echo".into(), 3, 3), ("web".into(), 1, 1)]);

    let missing = store.get(&at("echo@9")).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "no snapshot 'echo@9' in the store (echo has 1..3)"
    );
    let no_app = store.log("mail").await.unwrap_err();
    assert_eq!(no_app.to_string(), "no application 'mail' in the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_on_a_parent_that_is_no_longer_the_latest_is_refused_and_writes_nothing() {
    let cluster = cluster_or_skip!("a_save_on_a_stale_parent");
    let store = store_holding(&cluster, "cas", &[b"one", b"two"]).await;

    let stale = Save {
        parent: Parent::Expect(Some(1)),
        ..Save::default()
    };
    let error = store.save("echo", b"from one", &stale).await.unwrap_err();
    assert!(
        matches!(
            error,
            FleetError::NotLatest {
                parent: Some(1),
                latest: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "echo: the parent #1 is no longer the latest (#2 is); nothing was written: load the latest and save again"
    );
    assert_eq!(store.log("echo").await.unwrap().len(), 2);
    let (latest, bytes) = store.get(&at("echo")).await.unwrap();
    assert_eq!((latest.number, bytes.as_slice()), (2, &b"two"[..]));

    let fresh = Save {
        parent: Parent::Expect(Some(2)),
        ..Save::default()
    };
    let third = store.save("echo", b"from two", &fresh).await.unwrap();
    assert_eq!((third.number, third.parent), (3, Some(2)));
}

/// One writer: `saves` snapshots, each on the latest it read, retrying on `NotLatest`.
async fn writer(
    store: EtcdStore,
    name: &'static str,
    saves: usize,
) -> (Vec<(u64, Vec<u8>)>, usize) {
    let mut done = Vec::new();
    let mut refused = 0;
    while done.len() < saves {
        let latest = match store.resolve(&at("shared")).await {
            Ok(entry) => Some(entry.number),
            Err(FleetError::NoApp { .. }) => None,
            Err(error) => panic!("{error}"),
        };
        let bytes = format!("{name} save {}", done.len()).into_bytes();
        let save = Save {
            parent: Parent::Expect(latest),
            ..Save::default()
        };
        match store.save("shared", &bytes, &save).await {
            Ok(entry) => {
                assert_eq!(
                    entry.parent, latest,
                    "a success names the parent it was made on"
                );
                done.push((entry.number, bytes));
            }
            Err(FleetError::NotLatest { .. }) => refused += 1,
            Err(error) => panic!("{name}: {error}"),
        }
    }
    (done, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_writers_never_lose_a_save() {
    let cluster = cluster_or_skip!("two_concurrent_writers");
    let first = cluster.store("race").await;
    let second = cluster.store("race").await;
    let a = tokio::spawn(writer(first.clone(), "a", 12));
    let b = tokio::spawn(writer(second, "b", 12));
    let (a, a_refused) = a.await.unwrap();
    let (b, b_refused) = b.await.unwrap();
    eprintln!(
        "concurrent writers: {a_refused} + {b_refused} saves refused as not on the latest, then retried"
    );

    let log = first.log("shared").await.unwrap();
    assert_eq!(log.len(), 24, "every reported success is in the log");
    for (index, entry) in log.iter().enumerate() {
        assert_eq!(entry.number, index as u64 + 1);
        assert_eq!(
            entry.parent,
            (index > 0).then_some(index as u64),
            "a true parent"
        );
    }
    for (number, bytes) in a.iter().chain(b.iter()) {
        let (_, read) = first
            .get(&StoreAddress::number("shared", *number))
            .await
            .unwrap();
        assert_eq!(&read, bytes, "shared@{number} holds what its writer saved");
    }

    // Appends (Parent::Latest) from both at once: all land, none refused.
    let (x, y) = tokio::join!(
        async {
            for i in 0..6u8 {
                first.put("appends", &[b'x', i], None).await.unwrap();
            }
        },
        async {
            for i in 0..6u8 {
                second_store(&cluster)
                    .await
                    .put("appends", &[b'y', i], None)
                    .await
                    .unwrap();
            }
        }
    );
    let ((), ()) = (x, y);
    let appends = first.log("appends").await.unwrap();
    assert_eq!(appends.len(), 12);
    assert!(appends.windows(2).all(|w| w[1].parent == Some(w[0].number)));
}

async fn second_store(cluster: &EtcdCluster) -> EtcdStore {
    cluster.store("race").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_unique_move_on_request_and_address_snapshots() {
    let cluster = cluster_or_skip!("tags_are_unique");
    let store = cluster.store("tags").await;
    store.put("echo", b"1", Some("prod")).await.unwrap();
    store.put("echo", b"2", None).await.unwrap();

    let taken = store
        .tag(&at("echo@2"), "prod", TagConflict::Refuse)
        .await
        .unwrap_err();
    assert!(
        matches!(taken, FleetError::TagTaken { number: 1, .. }),
        "{taken:?}"
    );
    let taken = store.put("echo", b"3", Some("prod")).await.unwrap_err();
    assert!(
        matches!(taken, FleetError::TagTaken { number: 1, .. }),
        "{taken:?}"
    );
    assert_eq!(
        store.log("echo").await.unwrap().len(),
        2,
        "a refused save writes nothing"
    );

    let moved = store
        .tag(&at("echo@2"), "prod", TagConflict::Move)
        .await
        .unwrap();
    assert_eq!((moved.entry.number, moved.moved_from), (2, Some(1)));
    let (entry, bytes) = store.get(&at("echo@prod")).await.unwrap();
    assert_eq!((entry.number, bytes.as_slice()), (2, &b"2"[..]));
    let retagged = store
        .tag(&at("echo@2"), "stable", TagConflict::Refuse)
        .await
        .unwrap();
    assert_eq!(retagged.replaced.as_deref(), Some("prod"));

    let (untagged, tag) = store.untag(&at("echo@stable")).await.unwrap();
    assert_eq!((untagged.number, tag.as_str()), (2, "stable"));
    let gone = store.get(&at("echo@stable")).await.unwrap_err();
    assert_eq!(
        gone.to_string(),
        "no snapshot 'echo@stable' in the store (echo has no tags)"
    );
    let bad = store.put("echo", b"4", Some("12")).await.unwrap_err();
    assert!(matches!(bad, FleetError::InvalidTag { .. }), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_old_snapshots_and_their_chunks_but_keeps_tagged_and_shared_ones() {
    let cluster = cluster_or_skip!("gc_removes_chunks");
    let store = cluster.store("gc").await;
    let shared = noise(1024 * 1024, 1);
    let snapshot = |seed: u64| {
        let mut bytes = shared.clone();
        bytes.extend(noise(100_000, seed));
        bytes
    };
    // Each snapshot: 2 chunks, the first (960 KiB of `shared`) common to all.
    store.put("echo", &snapshot(2), Some("keep")).await.unwrap();
    store.put("echo", &snapshot(3), None).await.unwrap();
    store.put("echo", &snapshot(4), None).await.unwrap();
    store.put("echo", &snapshot(5), None).await.unwrap();
    // A writer that died between its chunks and its commit leaves a chunk nothing names.
    let orphan = noise(1000, 6);
    let digest = format!("{:x}", sha2::Sha256::digest(&orphan));
    let mut client = cluster.raw_client().await;
    client
        .put(format!("/gc/chunks/{digest}"), orphan, None)
        .await
        .unwrap();
    assert_eq!(chunk_sizes(&cluster, "gc").await.len(), 1 + 5);

    let report = store.gc("echo", 2).await.unwrap();
    let removed: Vec<u64> = report.removed.iter().map(|e| e.number).collect();
    assert_eq!(removed, [2]);
    assert_eq!(report.chunks_removed, 2, "#2's own chunk and the orphan");
    assert_eq!(chunk_sizes(&cluster, "gc").await.len(), 1 + 3);
    let left: Vec<u64> = store
        .log("echo")
        .await
        .unwrap()
        .iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(left, [1, 3, 4]);
    for (number, seed) in [(1, 2), (3, 4), (4, 5)] {
        let (_, bytes) = store
            .get(&StoreAddress::number("echo", number))
            .await
            .unwrap();
        assert!(bytes == snapshot(seed), "echo@{number} still reads whole");
    }
    let next = store.put("echo", b"new", None).await.unwrap();
    assert_eq!(next.number, 5, "numbers are never reused");
    assert!(matches!(
        store.gc("echo", 0).await,
        Err(FleetError::KeepNothing)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_chunk_is_reported_not_returned() {
    let cluster = cluster_or_skip!("a_damaged_chunk_is_reported");
    let store = store_holding(&cluster, "damage", &[b"the real bytes"]).await;
    let mut client = cluster.raw_client().await;
    let chunks = client
        .get(
            "/damage/chunks/",
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .unwrap();
    let key = chunks.kvs()[0].key().to_vec();
    client.put(key, "other bytes!!!", None).await.unwrap();

    let error = store.get(&at("echo")).await.unwrap_err();
    assert!(matches!(error, FleetError::Damaged { .. }), "{error:?}");
    assert!(
        error.to_string().contains("does not match its digest"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_working_when_an_etcd_member_is_killed() {
    let mut cluster = cluster_or_skip!("the_store_keeps_working");
    let store = cluster.store("failover").await;
    let bytes = noise(2 * 1024 * 1024, 9);
    store.put("echo", &bytes, None).await.unwrap();

    // Saves and loads go on while the Raft leader is killed (the harder case: the cluster
    // must elect another); none of them may fail.
    let load = tokio::spawn({
        let store = store.clone();
        async move {
            let mut slowest = std::time::Duration::ZERO;
            for i in 0..20u64 {
                let started = Instant::now();
                let entry = store
                    .put("echo", &noise(300_000, 100 + i), None)
                    .await
                    .unwrap();
                store
                    .get(&StoreAddress::number("echo", entry.number))
                    .await
                    .unwrap();
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            slowest
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let leader = cluster.leader_index().await;
    cluster.kill(leader);
    let slowest = load.await.unwrap();
    eprintln!("slowest save+load across the kill of the etcd leader: {slowest:?}");

    let log = store.log("echo").await.unwrap();
    assert_eq!(log.len(), 21);
    assert!(log.windows(2).all(|w| w[1].parent == Some(w[0].number)));
    let (_, read) = store.get(&at("echo@1")).await.unwrap();
    assert!(read == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_running_beside_saves_never_damages_one() {
    let cluster = cluster_or_skip!("gc_beside_saves");
    let store = store_holding(&cluster, "gcrace", &[b"first"]).await;
    let saving = tokio::spawn({
        let store = store.clone();
        async move {
            let mut saved = Vec::new();
            for i in 0..15u64 {
                // Two chunks each; every other one repeats an earlier chunk, which gc may be
                // collecting just then.
                let mut bytes = noise(CHUNK, 1000 + i / 2);
                bytes.extend(noise(1000, 2000 + i));
                saved.push((store.put("echo", &bytes, None).await.unwrap().number, bytes));
            }
            saved
        }
    });
    let mut collections = 0;
    while !saving.is_finished() {
        store.gc("echo", 1).await.unwrap();
        collections += 1;
    }
    let saved = saving.await.unwrap();
    store.gc("echo", 1).await.unwrap();
    eprintln!("{collections} gc runs beside 15 saves");
    assert!(collections > 1, "gc ran while saves were made");

    // Every snapshot that is left reads whole, and the last one saved is the latest.
    let log = store.log("echo").await.unwrap();
    for entry in &log {
        store
            .get(&StoreAddress::number("echo", entry.number))
            .await
            .unwrap();
    }
    let (latest, bytes) = store.get(&at("echo")).await.unwrap();
    let (last_number, last_bytes) = saved.last().unwrap();
    assert_eq!(latest.number, *last_number);
    assert!(&bytes == last_bytes);
    assert_eq!(
        chunk_sizes(&cluster, "gcrace").await.len(),
        2,
        "only the latest's chunks are left"
    );
}

/// One full chunk.
const CHUNK: usize = rtwisted_fleet::store::CHUNK_SIZE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_and_removes_more_orphans_than_one_page_holds() {
    let cluster = cluster_or_skip!("gc_finds_many_orphans");
    let store = store_holding(&cluster, "many", &[b"kept"]).await;
    // 1100 chunks nothing names (over two pages of a listing, eleven delete batches).
    let mut client = cluster.raw_client().await;
    for batch in 0..11u32 {
        let puts: Vec<etcd_client::TxnOp> = (0..100u32)
            .map(|i| {
                let digest = format!("{:064x}", batch * 100 + i);
                etcd_client::TxnOp::put(format!("/many/chunks/{digest}"), "x", None)
            })
            .collect();
        client
            .txn(etcd_client::Txn::new().and_then(puts))
            .await
            .unwrap();
    }
    let report = store.gc("echo", 1).await.unwrap();
    assert_eq!(report.chunks_removed, 1100);
    assert_eq!(
        chunk_sizes(&cluster, "many").await.len(),
        1,
        "the kept one's chunk"
    );
    let (_, bytes) = store.get(&at("echo")).await.unwrap();
    assert_eq!(bytes, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_from_an_older_snapshot_is_saved_and_marked_diverged() {
    let cluster = cluster_or_skip!("a_checkpoint_is_marked_diverged");
    // A daemon runs from echo@1; meanwhile an edit saves echo@2.
    let store = store_holding(&cluster, "diverge", &[b"1", b"2 (an edit)"]).await;
    let checkpoint = Save {
        parent: Parent::Diverge {
            made_from: Some(1),
            since: Some(1),
        },
        ..Save::default()
    };
    let entry = store
        .save("echo", b"3 (the daemon)", &checkpoint)
        .await
        .unwrap();
    assert_eq!(
        (entry.number, entry.parent, entry.diverged_from),
        (3, Some(1), Some(2))
    );
    // Its next checkpoint knows echo@3 is the newest: no fork.
    let next = Save {
        parent: Parent::Diverge {
            made_from: Some(3),
            since: Some(3),
        },
        ..Save::default()
    };
    let entry = store.save("echo", b"4", &next).await.unwrap();
    assert_eq!((entry.parent, entry.diverged_from), (Some(3), None));
    let log = store.log("echo").await.unwrap();
    let lineage: Vec<(u64, Option<u64>, Option<u64>)> = log
        .iter()
        .map(|e| (e.number, e.parent, e.diverged_from))
        .collect();
    assert_eq!(
        lineage,
        [
            (1, None, None),
            (2, Some(1), None),
            (3, Some(1), Some(2)),
            (4, Some(3), None)
        ]
    );
}
