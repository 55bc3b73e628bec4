//! Every transport, over real sockets: UNIX sockets with modes and lockfiles, TLS with a
//! certificate made here, UDP, stream and reconnecting clients, timers, and the classic
//! protocols.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtwisted_core::{Child, IntoChild, Lifecycle, MultiService, StopReason};
use rtwisted_services::net::{
    Address, Backoff, DatagramServer, ReconnectingClient, StreamClient, StreamServer, WaitError,
};
use rtwisted_services::protocols::{Chargen, Daytime, Discard, Echo, PortForward, Qotd, Time};
use rtwisted_services::timer::{TimerService, TouchFile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixStream};

const DEADLINE: Duration = Duration::from_secs(20);

/// A TCP endpoint on an ephemeral port of 127.0.0.1.
const LOCAL: &str = "tcp:0:interface=127.0.0.1";

fn tree(children: Vec<Child>) -> MultiService {
    let mut root = MultiService::new();
    for child in children {
        root.insert(child).unwrap();
    }
    root
}

fn stream_server(
    name: &str,
    endpoint: &str,
    factory: Arc<dyn rtwisted_services::ProtocolFactory>,
) -> Child {
    StreamServer::new(endpoint.parse().unwrap(), factory)
        .named(name)
        .unwrap()
}

/// The lifecycle the tests drive their trees with: two seconds for each stop.
fn lifecycle() -> Lifecycle {
    Lifecycle::new(Duration::from_secs(2))
}

/// A tree of `children`, started by `lifecycle`.
async fn started(lifecycle: &Lifecycle, children: Vec<Child>) -> MultiService {
    let mut root = tree(children);
    lifecycle.start(&mut root).await.unwrap();
    root
}

/// Why `lifecycle` could not start a tree of `children`.
async fn start_error(lifecycle: &Lifecycle, children: Vec<Child>) -> String {
    let mut root = tree(children);
    lifecycle.start(&mut root).await.unwrap_err().to_string()
}

/// Stops `root` for a shutdown, which must succeed.
async fn shut_down(lifecycle: &Lifecycle, root: &mut MultiService) {
    lifecycle.stop(root, StopReason::Shutdown).await.unwrap();
}

/// An echo server named `name` on `endpoint`.
fn echo_server(name: &str, endpoint: &str) -> Child {
    stream_server(name, endpoint, Arc::new(Echo::default()))
}

/// A server named `name` on an ephemeral port of 127.0.0.1.
fn local_server(name: &str, factory: Arc<dyn rtwisted_services::ProtocolFactory>) -> Child {
    stream_server(name, LOCAL, factory)
}

/// A datagram server named `name` on an ephemeral port of 127.0.0.1.
fn udp_server(
    name: &str,
    protocol: Arc<dyn rtwisted_services::protocols::DatagramProtocol>,
) -> Child {
    DatagramServer::new("udp:0:interface=127.0.0.1".parse().unwrap(), protocol)
        .named(name)
        .unwrap()
}

/// A timer service named `name` that runs `task` every `period` seconds.
fn timer(name: &str, period: f64, task: Arc<dyn rtwisted_services::timer::TimerTask>) -> Child {
    TimerService::new(period, task)
        .unwrap()
        .named(name)
        .unwrap()
}

fn inet(root: &MultiService, name: &str) -> std::net::SocketAddr {
    match root
        .get(name)
        .unwrap()
        .service()
        .downcast_ref::<StreamServer>()
        .unwrap()
        .local_address()
    {
        Some(Address::Inet(address)) => address,
        other => panic!("not inet: {other:?}"),
    }
}

async fn echo_over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    payload: &[u8],
) -> Vec<u8> {
    stream.write_all(payload).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    received
}

/// Connects to `address` and reads what the server sends until it closes.
async fn read_all(address: std::net::SocketAddr) -> String {
    let mut text = String::new();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

async fn eventually<F: FnMut() -> bool>(mut condition: F) {
    let end = Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            Instant::now() < end,
            "condition not met within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn unix_socket_applies_its_mode_serves_and_is_removed_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let endpoint = format!("unix:{}:mode=600", path.display());
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, vec![echo_server("echo", &endpoint)]).await;
    let metadata = std::fs::metadata(&path).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let stream = UnixStream::connect(&path).await.unwrap();
    assert_eq!(echo_over(stream, b"over unix").await, b"over unix");
    shut_down(&lifecycle, &mut root).await;
    assert!(!path.exists(), "the socket file is left behind");
    assert!(!dir.path().join("echo.sock.lock").exists());
}

#[tokio::test]
async fn a_stale_unix_socket_is_replaced_but_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    // A crashed owner leaves its socket file behind, with nobody holding the lock.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let endpoint = format!("unix:{}", path.display());
    let lifecycle = lifecycle();
    let mut first = started(&lifecycle, vec![echo_server("a", &endpoint)]).await;

    let err = start_error(&lifecycle, vec![echo_server("b", &endpoint)]).await;
    assert!(err.contains("another process holds"), "{err}");
    // The live socket still works.
    let stream = UnixStream::connect(&path).await.unwrap();
    assert_eq!(echo_over(stream, b"still here").await, b"still here");
    shut_down(&lifecycle, &mut first).await;

    // Without a lockfile an existing socket file is never removed.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = start_error(
        &lifecycle,
        vec![stream_server(
            "c",
            &format!("{endpoint}:lockfile=0"),
            Arc::new(Echo::default()),
        )],
    )
    .await;
    assert!(err.contains("cannot listen on unix:"), "{err}");
}

fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn tls_serves_a_verified_client_and_a_bad_key_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let ca = dir.path().join("ca");
    std::fs::create_dir(&ca).unwrap();
    std::fs::copy(&cert, ca.join("cert.pem")).unwrap();
    let endpoint = format!(
        "ssl:0:privateKey={}:certKey={}:interface=127.0.0.1",
        key.display(),
        cert.display()
    );
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, vec![echo_server("echo", &endpoint)]).await;
    let port = inet(&root, "echo").port();

    // A client service over TLS, verifying against the CA folder, speaking to the server.
    let client_endpoint = format!("tls:host=localhost:port={port}:caCertsDir={}", ca.display());
    let connection = rtwisted_services::net::connect::connect(
        &client_endpoint.parse().unwrap(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(echo_over(connection.stream, b"over tls").await, b"over tls");

    // A plain TCP client gets no echo: the server insists on a handshake.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(b"hello\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, plain.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"hello"));
    shut_down(&lifecycle, &mut root).await;

    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    let bad = format!(
        "ssl:0:privateKey={}:certKey={}",
        dir.path().join("bad.pem").display(),
        cert.display()
    );
    let err = start_error(&lifecycle, vec![echo_server("echo", &bad)]).await;
    assert!(
        err.contains("bad.pem") && err.contains("no PEM private key"),
        "{err}"
    );
}

#[tokio::test]
async fn udp_echo_time_and_qotd_answer_datagrams() {
    let servers = vec![
        udp_server("echo", Arc::new(Echo::default())),
        udp_server("time", Arc::new(Time::default())),
        udp_server("qotd", Arc::new(Qotd::new(vec!["Be brief.".into()]))),
    ];
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, servers).await;
    let address = |name: &str| {
        root.get(name)
            .unwrap()
            .service()
            .downcast_ref::<DatagramServer>()
            .unwrap()
            .local_address()
            .unwrap()
    };
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 2048];
    let mut ask = async |target, payload: &[u8]| {
        client.send_to(payload, target).await.unwrap();
        let (n, _) = tokio::time::timeout(DEADLINE, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        buf[..n].to_vec()
    };
    assert_eq!(ask(address("echo"), b"datagram").await, b"datagram");
    let time = ask(address("time"), b"").await;
    let seconds = u32::from_be_bytes(time.try_into().unwrap()) as u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((seconds as i64 - ((now + 2_208_988_800) as u32) as i64).abs() <= 2);
    assert_eq!(ask(address("qotd"), b"").await, b"Be brief.\r\n");
    shut_down(&lifecycle, &mut root).await;
}

#[tokio::test]
async fn classic_stream_protocols_behave_per_their_rfcs() {
    let lifecycle = lifecycle();
    let mut root = started(
        &lifecycle,
        vec![
            local_server("discard", Arc::new(Discard::default())),
            local_server("chargen", Arc::new(Chargen::default())),
            local_server("daytime", Arc::new(Daytime::default())),
            local_server(
                "qotd",
                Arc::new(Qotd::new(vec!["one".into(), "two".into()])),
            ),
        ],
    )
    .await;

    let discard = TcpStream::connect(inet(&root, "discard")).await.unwrap();
    assert!(echo_over(discard, b"into the void").await.is_empty());

    let mut chargen = TcpStream::connect(inet(&root, "chargen")).await.unwrap();
    let mut lines = vec![0u8; 74 * 3];
    chargen.read_exact(&mut lines).await.unwrap();
    assert_eq!(
        &lines[..74],
        rtwisted_services::protocols::classic::chargen_line(0).as_slice()
    );
    assert_eq!(
        &lines[74..148],
        rtwisted_services::protocols::classic::chargen_line(1).as_slice()
    );
    drop(chargen);

    let daytime = read_all(inet(&root, "daytime")).await;
    assert!(
        daytime.ends_with("\r\n") && daytime.len() == 26,
        "{daytime:?}"
    );

    let mut quotes = Vec::new();
    for _ in 0..3 {
        quotes.push(read_all(inet(&root, "qotd")).await);
    }
    assert_eq!(quotes, ["one\r\n", "two\r\n", "one\r\n"]);
    shut_down(&lifecycle, &mut root).await;
}

#[tokio::test]
async fn portforward_relays_and_counts_the_traffic() {
    let lifecycle = lifecycle();
    let mut backend = started(&lifecycle, vec![echo_server("echo", LOCAL)]).await;
    let dest = format!("tcp:host=127.0.0.1:port={}", inet(&backend, "echo").port());
    let forward = Arc::new(PortForward::new(dest.parse().unwrap()));
    let mut front = started(&lifecycle, vec![local_server("pf", forward)]).await;
    // A connection still open is counted as its bytes flow.
    let mut open = TcpStream::connect(inet(&front, "pf")).await.unwrap();
    open.write_all(b"live").await.unwrap();
    let mut echoed = [0u8; 4];
    open.read_exact(&mut echoed).await.unwrap();
    let live = serde_json::to_value(front.get("pf").unwrap()).unwrap();
    assert_eq!(live["factory"]["counters"]["bytes_in"], 4);
    assert_eq!(live["factory"]["counters"]["bytes_out"], 4);
    drop(open);
    let client = TcpStream::connect(inet(&front, "pf")).await.unwrap();
    assert_eq!(echo_over(client, b"relayed!").await, b"relayed!");
    let json = serde_json::to_value(front.get("pf").unwrap()).unwrap();
    let counters = json["factory"]["counters"].clone();
    assert_eq!(
        counters,
        serde_json::json!({"connections": 2, "bytes_in": 12, "bytes_out": 12})
    );
    shut_down(&lifecycle, &mut front).await;
    shut_down(&lifecycle, &mut backend).await;
}

#[tokio::test]
async fn a_stream_client_connects_on_start_and_a_refused_connection_fails_the_start() {
    let lifecycle = lifecycle();
    let discard = local_server("discard", Arc::new(Discard::default()));
    let mut server = started(&lifecycle, vec![discard]).await;
    let port = inet(&server, "discard").port();
    let client = StreamClient::new(
        format!("tcp:127.0.0.1:{port}").parse().unwrap(),
        Arc::new(Echo::default()),
    )
    .named("client")
    .unwrap();
    let mut root = started(&lifecycle, vec![client]).await;
    assert!(
        root.get("client")
            .unwrap()
            .service()
            .downcast_ref::<StreamClient>()
            .unwrap()
            .connected()
    );
    shut_down(&lifecycle, &mut root).await;
    shut_down(&lifecycle, &mut server).await;

    let refused = StreamClient::new(
        format!("tcp:127.0.0.1:{port}:timeout=2").parse().unwrap(),
        Arc::new(Echo::default()),
    )
    .named("client")
    .unwrap();
    let err = start_error(&lifecycle, vec![refused]).await;
    assert!(err.starts_with(&format!("service 'client' failed to start: cannot connect to tcp:host=127.0.0.1:port={port}:timeout=2:")), "{err}");
}

#[tokio::test]
async fn a_reconnecting_client_reconnects_after_the_server_restarts() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    drop(holder);
    let endpoint = format!("tcp:{port}:interface=127.0.0.1");
    let backoff = Backoff {
        initial: 0.02,
        factor: 1.5,
        max: 0.2,
        jitter: false,
    };
    let client = ReconnectingClient::new(
        format!("tcp:127.0.0.1:{port}").parse().unwrap(),
        Arc::new(Discard::default()),
    )
    .with_backoff(backoff);
    let mut handle = client.handle();
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, vec![client.named("client").unwrap()]).await;

    // Nothing listens yet: waiting with a limit fails after that many attempts.
    let err = tokio::time::timeout(DEADLINE, handle.wait_connected(Some(3)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, WaitError::Failed { failures: 3, .. }),
        "{err}"
    );

    let mut server = started(&lifecycle, vec![echo_server("echo", &endpoint)]).await;
    tokio::time::timeout(DEADLINE, handle.wait_connected(None))
        .await
        .unwrap()
        .unwrap();

    // The server goes away and comes back: the client notices and connects again.
    shut_down(&lifecycle, &mut server).await;
    eventually(|| !handle.state().connected).await;
    lifecycle.start(&mut server).await.unwrap();
    tokio::time::timeout(DEADLINE, handle.wait_connected(None))
        .await
        .unwrap()
        .unwrap();

    // Stop while connected is prompt, and ends every wait.
    shut_down(&lifecycle, &mut server).await;
    let began = Instant::now();
    shut_down(&lifecycle, &mut root).await;
    assert!(began.elapsed() < Duration::from_secs(1));
    assert_eq!(handle.wait_connected(None).await, Err(WaitError::Cancelled));
}

#[tokio::test]
async fn a_timer_runs_at_start_then_every_period_and_stop_waits() {
    let dir = tempfile::tempdir().unwrap();
    let beat = dir.path().join("heartbeat");
    let lifecycle = lifecycle();
    let mut root = started(
        &lifecycle,
        vec![timer(
            "beat",
            0.05,
            Arc::new(TouchFile { path: beat.clone() }),
        )],
    )
    .await;
    eventually(|| beat.exists()).await;
    let first = std::fs::metadata(&beat).unwrap().modified().unwrap();
    eventually(|| std::fs::metadata(&beat).unwrap().modified().unwrap() > first).await;
    shut_down(&lifecycle, &mut root).await;
    assert!(TimerService::new(0.0, Arc::new(TouchFile { path: beat })).is_err());
}

/// A task that counts its runs; one given a run time also records how many runs overlap.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Counted {
    #[serde(skip)]
    run_time: Duration,
    #[serde(skip)]
    running: Arc<std::sync::atomic::AtomicUsize>,
    #[serde(skip)]
    most: Arc<std::sync::atomic::AtomicUsize>,
    #[serde(skip)]
    runs: Arc<std::sync::atomic::AtomicUsize>,
}

#[typetag::serde(name = "test.Counted")]
#[async_trait::async_trait]
impl rtwisted_services::timer::TimerTask for Counted {
    async fn run(
        &self,
        _cx: &rtwisted_services::timer::TaskContext,
    ) -> Result<(), rtwisted_services::timer::TaskError> {
        use std::sync::atomic::Ordering;
        if self.run_time.is_zero() {
            self.runs.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.run_time).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

rtwisted_core::register_type!(task "test.Counted", version 1);

#[tokio::test(start_paused = true)]
async fn a_stopped_timer_never_runs_again() {
    use std::sync::atomic::Ordering;
    let count = Arc::new(Counted::default());
    let runs = Arc::clone(&count.runs);
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, vec![timer("count", 0.05, count)]).await;
    // Paused time: runs at 0, 50, 100 and 150 ms of virtual time, none at 175.
    tokio::time::sleep(Duration::from_millis(175)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    shut_down(&lifecycle, &mut root).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4, "ran after the stop");
}

#[tokio::test]
async fn a_timer_never_overlaps_itself_and_stop_waits_for_the_run_in_progress() {
    use std::sync::atomic::Ordering;
    let slow = Arc::new(Counted {
        run_time: Duration::from_millis(60),
        ..Counted::default()
    });
    let (running, most, runs) = (slow.running.clone(), slow.most.clone(), slow.runs.clone());
    let lifecycle = lifecycle();
    let mut root = started(&lifecycle, vec![timer("slow", 0.01, slow)]).await;
    eventually(|| runs.load(Ordering::SeqCst) >= 3).await;
    eventually(|| running.load(Ordering::SeqCst) == 1).await;
    shut_down(&lifecycle, &mut root).await;
    assert_eq!(
        running.load(Ordering::SeqCst),
        0,
        "stop returned during a run"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "runs overlapped");
}

#[tokio::test]
async fn tcp6_serves_on_the_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this machine has no IPv6 loopback");
        return;
    }
    let lifecycle = lifecycle();
    let mut root = started(
        &lifecycle,
        vec![echo_server("echo", "tcp6:0:interface=[::1]")],
    )
    .await;
    let address = inet(&root, "echo");
    assert!(address.is_ipv6());
    let stream = TcpStream::connect(address).await.unwrap();
    assert_eq!(echo_over(stream, b"over ipv6").await, b"over ipv6");
    shut_down(&lifecycle, &mut root).await;
}
