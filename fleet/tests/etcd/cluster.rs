//! The harness itself: the cluster it starts is one cluster of three healthy members that a
//! client reaches through an `etcd://` address.

use rtwisted_fleet::{Etcd, EtcdAddress};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_starts_one_cluster_of_three_members() {
    let cluster = cluster_or_skip!("the_harness_starts_one_cluster_of_three_members");
    let address: EtcdAddress = cluster.address("harness").parse().unwrap();
    assert_eq!(address.endpoints.len(), 3);
    let mut client = etcd_client::Client::connect(address.urls(), None)
        .await
        .unwrap();
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 3, "{}", cluster.logs());
    // Our own connection reaches it too.
    Etcd::connect(&address).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_where_no_etcd_listens_fails_within_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address: EtcdAddress = format!("etcd://127.0.0.1:{port}/nothing").parse().unwrap();
    let started = std::time::Instant::now();
    let deadline = std::time::Duration::from_millis(500);
    let result = Etcd::connect_with_deadline(&address, deadline).await;
    // The client connects lazily; the first request is what must fail, within the deadline.
    let error = match result {
        Err(error) => error,
        Ok(etcd) => rtwisted_fleet::EtcdStore::new(etcd)
            .list()
            .await
            .expect_err("a store with no etcd behind it cannot list"),
    };
    assert!(
        started.elapsed() < deadline * 4,
        "took {:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(
        message.contains("timed out")
            || message.contains("cannot connect")
            || message.contains("etcd"),
        "{message}"
    );
}
