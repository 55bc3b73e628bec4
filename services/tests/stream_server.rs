//! The echo stream server on real loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtwisted_core::{Child, IntoChild, Lifecycle, MultiService, StopReason};
use rtwisted_services::net::{Address, StreamServer};
use rtwisted_services::protocols::Echo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn echo_server(endpoint: &str) -> Child {
    StreamServer::new(endpoint.parse().unwrap(), Arc::new(Echo::default()))
        .named("echo")
        .unwrap()
}

fn bound(tree: &MultiService) -> SocketAddr {
    let service = tree.get("echo").unwrap();
    let json = serde_json::to_value(service).unwrap();
    assert!(json["endpoint"].as_str().unwrap().starts_with("tcp:"));
    let server = service.service().downcast_ref::<StreamServer>().unwrap();
    let Some(Address::Inet(addr)) = server.local_address() else {
        panic!("not bound");
    };
    addr
}

#[tokio::test]
async fn echo_sends_back_every_byte_and_stop_closes_the_port() {
    let mut tree = MultiService::new();
    tree.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    let lifecycle = Lifecycle::new(Duration::from_secs(5));
    lifecycle.start(&mut tree).await.unwrap();
    let addr = bound(&tree);
    assert_ne!(addr.port(), 0);

    let mut client = TcpStream::connect(addr).await.unwrap();
    let message = b"hello, echo\x00\xff".repeat(1000);
    client.write_all(&message).await.unwrap();
    client.shutdown().await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();
    assert_eq!(received, message);

    lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "port still open");
}

fn server(tree: &MultiService) -> &StreamServer {
    tree.get("echo")
        .unwrap()
        .service()
        .downcast_ref::<StreamServer>()
        .unwrap()
}

#[tokio::test]
async fn stop_cuts_connections_still_open_near_the_deadline_and_counts_them() {
    let mut tree = MultiService::new();
    tree.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    let lifecycle = Lifecycle::new(Duration::from_secs(1));
    lifecycle.start(&mut tree).await.unwrap();
    let mut client = TcpStream::connect(bound(&tree)).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).await.unwrap();

    let began = std::time::Instant::now();
    lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "the stop overran its deadline"
    );
    assert_eq!(server(&tree).last_cut(), 1);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "connection not closed: {read:?}"
    );
}

#[tokio::test]
async fn stop_refuses_new_connections_at_once_and_lets_open_ones_finish() {
    let mut tree = MultiService::new();
    tree.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    let lifecycle = Lifecycle::new(Duration::from_secs(10));
    lifecycle.start(&mut tree).await.unwrap();
    let address = bound(&tree);
    let mut client = TcpStream::connect(address).await.unwrap();

    let stopping = tokio::spawn(async move {
        lifecycle
            .stop(&mut tree, StopReason::Shutdown)
            .await
            .unwrap();
        tree
    });
    // Accepting stops at once (poll with a deadline: the stop runs concurrently).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(address).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The open connection still works, and ends when the client is done.
    client.write_all(b"last words").await.unwrap();
    client.shutdown().await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();
    assert_eq!(received, b"last words");
    let tree = stopping.await.unwrap();
    assert_eq!(server(&tree).last_cut(), 0);
}

#[tokio::test]
async fn a_busy_port_is_a_start_error_naming_the_endpoint() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut tree = MultiService::new();
    let endpoint = format!("tcp:{port}:interface=127.0.0.1");
    tree.insert(
        StreamServer::new(endpoint.parse().unwrap(), Arc::new(Echo::default()))
            .named("echo")
            .unwrap(),
    )
    .unwrap();
    let err = Lifecycle::default().start(&mut tree).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "service 'echo' failed to start: cannot listen on {endpoint} (127.0.0.1:{port}): "
        )),
        "{text}"
    );
    assert!(!tree.get("echo").unwrap().running());
}

#[tokio::test]
async fn a_server_restarts_after_a_stop() {
    let mut tree = MultiService::new();
    tree.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap();
    lifecycle.start(&mut tree).await.unwrap();
    let mut client = TcpStream::connect(bound(&tree)).await.unwrap();
    client.write_all(b"again").await.unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again");
    drop(client);
    lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap();
}

/// The sockets of `tree`'s running services, duplicated, as a successor would receive them.
fn handed_over(lifecycle: &Lifecycle, tree: &MultiService) -> rtwisted_core::context::Inherited {
    let inherited = rtwisted_core::context::Inherited::default();
    for socket in lifecycle.handover_sockets(tree) {
        let fds = socket
            .fds
            .iter()
            .map(|fd| fd.try_clone_to_owned().unwrap())
            .collect();
        inherited.insert(socket.key, fds);
    }
    inherited
}

#[tokio::test]
async fn a_successor_takes_the_listening_socket_over_without_closing_it() {
    let mut old = MultiService::new();
    old.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    let lifecycle = Lifecycle::new(Duration::from_secs(5));
    lifecycle.start(&mut old).await.unwrap();
    let addr = bound(&old);
    let inherited = handed_over(&lifecycle, &old);
    assert_eq!(inherited.keys(), ["tcp:0:interface=127.0.0.1"]);

    let successor = Lifecycle::new(Duration::from_secs(5)).with_inherited(inherited.clone());
    let mut new = MultiService::new();
    new.insert(echo_server("tcp:0:interface=127.0.0.1"))
        .unwrap();
    successor.start(&mut new).await.unwrap();
    assert_eq!(bound(&new), addr, "the same socket, not a new port");
    assert!(inherited.keys().is_empty(), "the successor took it");
    lifecycle
        .stop(&mut old, StopReason::HandedOver)
        .await
        .unwrap();
    // The old process let go; the socket never closed.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"still here").await.unwrap();
    let mut echoed = [0u8; 10];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"still here");
    successor
        .stop(&mut new, StopReason::Shutdown)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_unix_socket_handed_over_keeps_its_file_until_the_successor_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let endpoint = format!("unix:{}", path.display());
    let lifecycle = Lifecycle::new(Duration::from_secs(5));
    let mut old = MultiService::new();
    old.insert(echo_server(&endpoint)).unwrap();
    lifecycle.start(&mut old).await.unwrap();
    let successor =
        Lifecycle::new(Duration::from_secs(5)).with_inherited(handed_over(&lifecycle, &old));
    let mut new = MultiService::new();
    new.insert(echo_server(&endpoint)).unwrap();
    successor.start(&mut new).await.unwrap();
    lifecycle
        .stop(&mut old, StopReason::HandedOver)
        .await
        .unwrap();
    assert!(path.exists(), "the file is the successor's now");
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream.write_all(b"x").await.unwrap();
    let mut echoed = [0u8; 1];
    stream.read_exact(&mut echoed).await.unwrap();
    drop(stream);
    successor
        .stop(&mut new, StopReason::Shutdown)
        .await
        .unwrap();
    assert!(!path.exists(), "removed by the last owner's stop");
}
