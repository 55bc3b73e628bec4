//! Elections for singleton services: one leader at a time, the next takes over when the
//! leader's lease goes, and a write under a lost leadership is refused.

use std::time::{Duration, Instant};

use rtwisted_fleet::{Election, FleetError, Parent, Save};
use rtwisted_persist::store::StoreAddress;

use crate::{MEMBER_TTL, fleet_member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_candidate_leads_once_the_first_resigns() {
    let cluster = cluster_or_skip!("a_second_candidate_leads");
    let etcd = cluster.connect("fleet").await;
    let election = Election::new(&etcd, "kv").unwrap();
    let ttl = Duration::from_secs(3);
    let first = election.campaign("first", ttl).await.unwrap();
    let waiting = tokio::spawn({
        let election = election.clone();
        async move { election.campaign("second", ttl).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "two leaders at once");
    assert_eq!(election.leader().await.unwrap().unwrap().value, "first");
    assert!(first.is_current());

    let first_revision = first.fence().revision;
    let resigned = Instant::now();
    first.resign().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the second candidate leads soon after the first resigns")
        .unwrap()
        .unwrap();
    eprintln!(
        "second leader {:?} after the first resigned",
        resigned.elapsed()
    );
    assert!(resigned.elapsed() < Duration::from_secs(1));
    assert!(second.fence().revision > first_revision, "a later epoch");
    let shown = election.leader().await.unwrap().unwrap();
    assert_eq!(
        (shown.value.as_str(), shown.revision),
        ("second", second.fence().revision)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_process_is_killed() {
    let cluster = cluster_or_skip!("a_standby_takes_over");
    let (etcd, mut process) = fleet_member(&cluster, "kv", Some("--campaign")).await;
    let ttl = MEMBER_TTL;
    process.expect("leader", Duration::from_secs(20));

    let election = Election::new(&etcd, "kv").unwrap();
    let standby = tokio::spawn({
        let election = election.clone();
        async move { election.campaign("standby", Duration::from_secs(ttl)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !standby.is_finished(),
        "the standby waits while the leader lives"
    );

    process.kill();
    let killed = Instant::now();
    let leader = tokio::time::timeout(Duration::from_secs(ttl + 3), standby)
        .await
        .expect("the standby leads within the TTL after the leader is killed")
        .unwrap()
        .unwrap();
    let took = killed.elapsed();
    eprintln!("standby led {took:?} after kill -9 of the leader (lease TTL {ttl} s)");
    // The goal is under TTL + 1 s (measured ~2 s for TTL 2 s); a loaded CI machine gets one
    // second more before this fails.
    assert!(took < Duration::from_secs(ttl + 2), "took {took:?}");
    assert!(leader.is_current());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_a_leader_whose_lease_is_lost_is_refused() {
    let cluster = cluster_or_skip!("a_fenced_write_is_refused");
    let etcd = cluster.connect("fleet").await;
    let store = cluster.store("fleet").await;
    let election = Election::new(&etcd, "kv").unwrap();
    let ttl = Duration::from_secs(2);
    let old = election.campaign("old", ttl).await.unwrap();
    let fenced = |leader: &rtwisted_fleet::Leader| leader.fence().clone();
    let old_fence = fenced(&old);
    let save = Save {
        fence: Some(&old_fence),
        ..Save::default()
    };
    let first = store.save("kv", b"checkpoint 1", &save).await.unwrap();
    assert_eq!(first.number, 1);

    // The old leader stops refreshing (a pause, a partition); a standby takes over.
    old.abandon();
    let new = tokio::time::timeout(Duration::from_secs(6), election.campaign("new", ttl))
        .await
        .expect("a new leader once the old lease expires")
        .unwrap();
    assert!(!old.is_current(), "the old leader knows its lease is lost");

    let refused = store
        .save("kv", b"checkpoint from the old leader", &save)
        .await
        .unwrap_err();
    assert!(matches!(refused, FleetError::Fenced { .. }), "{refused:?}");
    assert!(
        refused.to_string().contains("no longer the leader"),
        "{refused}"
    );
    // Even on the right parent, the old fence is refused; the new one is taken.
    let on_latest = Save {
        parent: Parent::Expect(Some(1)),
        fence: Some(&old_fence),
        ..Save::default()
    };
    assert!(matches!(
        store.save("kv", b"again", &on_latest).await,
        Err(FleetError::Fenced { .. })
    ));
    let new_fence = new.fence().clone();
    let by_new = Save {
        fence: Some(&new_fence),
        ..Save::default()
    };
    let second = store.save("kv", b"checkpoint 2", &by_new).await.unwrap();
    assert_eq!((second.number, second.parent), (2, Some(1)));
    let (_, bytes) = store.get(&StoreAddress::latest("kv")).await.unwrap();
    assert_eq!(bytes, b"checkpoint 2");
    assert_eq!(
        store.log("kv").await.unwrap().len(),
        2,
        "the refused writes left nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_does_not_write_after_it_resumes() {
    let cluster = cluster_or_skip!("a_paused_leader_does_not_write");
    let (etcd, process) = fleet_member(&cluster, "kv", Some("--checkpoint")).await;
    let store = cluster.store("fleet").await;
    let ttl = MEMBER_TTL;
    process.expect("saved", Duration::from_secs(20));

    process.signal(nix::sys::signal::Signal::SIGSTOP);
    let paused = Instant::now();
    let election = Election::new(&etcd, "kv").unwrap();
    let new = tokio::time::timeout(
        Duration::from_secs(ttl + 4),
        election.campaign("new", Duration::from_secs(ttl)),
    )
    .await
    .expect("a standby leads once the paused leader's lease expires")
    .unwrap();
    eprintln!(
        "standby led {:?} after SIGSTOP of the leader (TTL {ttl} s)",
        paused.elapsed()
    );
    let fence = new.fence().clone();
    let save = Save {
        fence: Some(&fence),
        ..Save::default()
    };
    let taken_over = store.save("kv", b"the new leader", &save).await.unwrap();
    process.drain();

    process.signal(nix::sys::signal::Signal::SIGCONT);
    let said = process.rest(Duration::from_secs(10));
    assert!(
        !said.iter().any(|l| l.starts_with("saved")),
        "wrote after resuming: {said:?}"
    );
    assert_eq!(said, ["lost", "fenced"], "it knew, and etcd refused");
    let (latest, bytes) = store.get(&StoreAddress::latest("kv")).await.unwrap();
    assert_eq!(
        latest.number, taken_over.number,
        "nothing after the new leader's write"
    );
    assert_eq!(bytes, b"the new leader");
}
