//! The blocking store, for synchronous callers (rtap, the folder store's trait): the same
//! store, from a plain thread and from inside a tokio runtime.

use std::time::Duration;

use rtwisted_fleet::{BlockingEtcdStore, EtcdAddress, FleetError};
use rtwisted_persist::store::StoreAddress;

use crate::harness::noise;

#[test]
fn the_blocking_store_saves_and_loads_from_plain_code() {
    let cluster = cluster_or_skip!("the_blocking_store");
    let address: EtcdAddress = cluster.address("sync").parse().unwrap();
    let store = BlockingEtcdStore::connect(&address, Duration::from_secs(10)).unwrap();
    let bytes = noise(1_500_000, 3);
    let entry = store.put("echo", &bytes, Some("prod")).unwrap();
    assert_eq!((entry.number, entry.chunks), (1, 2));
    let (read_entry, read) = store.get(&StoreAddress::tagged("echo", "prod")).unwrap();
    assert_eq!(read_entry, entry);
    assert!(read == bytes);
    assert_eq!(store.log("echo").unwrap().len(), 1);
    assert!(matches!(store.gc("echo", 0), Err(FleetError::KeepNothing)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_store_works_inside_a_tokio_runtime() {
    let cluster = cluster_or_skip!("the_blocking_store_in_a_runtime");
    let address: EtcdAddress = cluster.address("sync").parse().unwrap();
    // Straight on a runtime thread (no block_on panic), and dropped there too.
    let store = BlockingEtcdStore::connect(&address, Duration::from_secs(10)).unwrap();
    store.put("echo", b"one", None).unwrap();
    let log = store.store().log("echo").await.unwrap();
    assert_eq!(log.len(), 1);
    drop(store);
}
