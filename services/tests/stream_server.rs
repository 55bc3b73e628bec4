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

/// An ephemeral port on the loopback.
const LOCAL: &str = "tcp:0:interface=127.0.0.1";

fn echo_server(endpoint: &str) -> Child {
    StreamServer::new(endpoint.parse().unwrap(), Arc::new(Echo::default()))
        .named("echo")
        .unwrap()
}

/// A tree of one echo server, named `echo`, on `endpoint`.
fn echo_tree(endpoint: &str) -> MultiService {
    let mut tree = MultiService::new();
    tree.insert(echo_server(endpoint)).unwrap();
    tree
}

/// Stops `tree` for `reason`, which must succeed.
async fn stop(lifecycle: &Lifecycle, tree: &mut MultiService, reason: StopReason) {
    lifecycle.stop(tree, reason).await.unwrap();
}

/// Sends `bytes` on `client`, closes its writing half, and reads until the server closes.
async fn echoed_to_the_end(client: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    client.write_all(bytes).await.unwrap();
    client.shutdown().await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();
    received
}

/// Sends `bytes` on `stream` and reads them back.
async fn echoes<S: AsyncReadExt + AsyncWriteExt + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    let mut echoed = vec![0u8; bytes.len()];
    stream.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, bytes);
}

/// The address the `echo` server of `tree` listens on (over TCP).
fn bound(tree: &MultiService) -> SocketAddr {
    let json = serde_json::to_value(tree.get("echo").unwrap()).unwrap();
    assert!(json["endpoint"].as_str().unwrap().starts_with("tcp:"));
    address_of(tree, "echo")
}

/// A new tree of one echo server on the loopback, started by a lifecycle that gives each
/// stop `seconds`.
async fn started_echo(seconds: u64) -> (Lifecycle, MultiService) {
    let mut tree = echo_tree(LOCAL);
    let lifecycle = Lifecycle::new(Duration::from_secs(seconds));
    lifecycle.start(&mut tree).await.unwrap();
    (lifecycle, tree)
}

#[tokio::test]
async fn echo_sends_back_every_byte_and_stop_closes_the_port() {
    let (lifecycle, mut tree) = started_echo(5).await;
    let addr = bound(&tree);
    assert_ne!(addr.port(), 0);

    let mut client = TcpStream::connect(addr).await.unwrap();
    let message = b"hello, echo\x00\xff".repeat(1000);
    assert_eq!(echoed_to_the_end(&mut client, &message).await, message);

    stop(&lifecycle, &mut tree, StopReason::Shutdown).await;
    assert!(TcpStream::connect(addr).await.is_err(), "port still open");
}

/// The server named `name` in `tree`.
fn server<'t>(tree: &'t MultiService, name: &str) -> &'t StreamServer {
    let service = tree.get(name).unwrap().service();
    service.downcast_ref::<StreamServer>().unwrap()
}

#[tokio::test]
async fn stop_cuts_connections_still_open_near_the_deadline_and_counts_them() {
    let (lifecycle, mut tree) = started_echo(1).await;
    let mut client = TcpStream::connect(bound(&tree)).await.unwrap();
    echoes(&mut client, b"ping").await;

    let began = std::time::Instant::now();
    stop(&lifecycle, &mut tree, StopReason::Shutdown).await;
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "the stop overran its deadline"
    );
    assert_eq!(server(&tree, "echo").last_cut(), 1);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "connection not closed: {read:?}"
    );
}

#[tokio::test]
async fn stop_refuses_new_connections_at_once_and_lets_open_ones_finish() {
    let (lifecycle, mut tree) = started_echo(10).await;
    let address = bound(&tree);
    let mut client = TcpStream::connect(address).await.unwrap();

    let stopping = tokio::spawn(async move {
        stop(&lifecycle, &mut tree, StopReason::Shutdown).await;
        tree
    });
    // Accepting stops at once (poll with a deadline: the stop runs concurrently).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(address).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The open connection still works, and ends when the client is done.
    assert_eq!(
        echoed_to_the_end(&mut client, b"last words").await,
        b"last words"
    );
    let tree = stopping.await.unwrap();
    assert_eq!(server(&tree, "echo").last_cut(), 0);
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
    let mut tree = echo_tree(LOCAL);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    stop(&lifecycle, &mut tree, StopReason::Shutdown).await;
    lifecycle.start(&mut tree).await.unwrap();
    let mut client = TcpStream::connect(bound(&tree)).await.unwrap();
    echoes(&mut client, b"again").await;
    drop(client);
    stop(&lifecycle, &mut tree, StopReason::Shutdown).await;
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
    let (lifecycle, mut old) = started_echo(5).await;
    let addr = bound(&old);
    let inherited = handed_over(&lifecycle, &old);
    assert_eq!(inherited.keys(), ["echo tcp:0:interface=127.0.0.1"]);

    let successor = Lifecycle::new(Duration::from_secs(5)).with_inherited(inherited.clone());
    let mut new = echo_tree(LOCAL);
    successor.start(&mut new).await.unwrap();
    assert_eq!(bound(&new), addr, "the same socket, not a new port");
    assert!(inherited.keys().is_empty(), "the successor took it");
    stop(&lifecycle, &mut old, StopReason::HandedOver).await;
    // The old process let go; the socket never closed.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    echoes(&mut stream, b"still here").await;
    stop(&successor, &mut new, StopReason::Shutdown).await;
}

/// The address the server named `name` in `tree` listens on (over TCP).
fn address_of(tree: &MultiService, name: &str) -> SocketAddr {
    let Some(Address::Inet(addr)) = server(tree, name).local_address() else {
        panic!("{name} is not bound");
    };
    addr
}

fn two_servers_on(endpoint: &str) -> MultiService {
    let mut tree = MultiService::new();
    for name in ["first", "second"] {
        let server = StreamServer::new(endpoint.parse().unwrap(), Arc::new(Echo::default()));
        tree.insert(server.named(name).unwrap()).unwrap();
    }
    tree
}

#[tokio::test]
async fn two_servers_with_the_same_endpoint_each_take_their_own_socket_over() {
    let lifecycle = Lifecycle::new(Duration::from_secs(5));
    let mut old = two_servers_on(LOCAL);
    lifecycle.start(&mut old).await.unwrap();
    let successor =
        Lifecycle::new(Duration::from_secs(5)).with_inherited(handed_over(&lifecycle, &old));
    let mut new = two_servers_on(LOCAL);
    successor.start(&mut new).await.unwrap();
    for name in ["first", "second"] {
        assert_eq!(address_of(&new, name), address_of(&old, name), "{name}");
    }
    assert_ne!(address_of(&new, "first"), address_of(&new, "second"));
    stop(&lifecycle, &mut old, StopReason::HandedOver).await;
    stop(&successor, &mut new, StopReason::Shutdown).await;
}

#[tokio::test]
async fn a_unix_socket_handed_over_keeps_its_file_until_the_successor_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let endpoint = format!("unix:{}", path.display());
    let lifecycle = Lifecycle::new(Duration::from_secs(5));
    let mut old = echo_tree(&endpoint);
    lifecycle.start(&mut old).await.unwrap();
    let successor =
        Lifecycle::new(Duration::from_secs(5)).with_inherited(handed_over(&lifecycle, &old));
    let mut new = echo_tree(&endpoint);
    successor.start(&mut new).await.unwrap();
    stop(&lifecycle, &mut old, StopReason::HandedOver).await;
    assert!(path.exists(), "the file is the successor's now");
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    echoes(&mut stream, b"x").await;
    drop(stream);
    stop(&successor, &mut new, StopReason::Shutdown).await;
    assert!(!path.exists(), "removed by the last owner's stop");
}
