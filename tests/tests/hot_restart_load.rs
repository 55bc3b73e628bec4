//! `rtap restart` under load: echo clients connecting for every request and a kv writer run
//! through three restarts. No connection is refused, no echo request fails, and every write
//! the daemon acknowledged is in the kv afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use rtwisted_tests::load::{Load, missing_keys};
use rtwisted_tests::{
    Scratch, eventually, exited, read_pid, service_address, text, wait_for_log_line,
};

const APP: &str = r#"application = Application("app")
service("tcp:0:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
service("tcp:0:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
"#;

fn address(scratch: &Scratch, path: &str) -> SocketAddr {
    let output = scratch.rtap_ok(&["status", "app", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    service_address(&status, path)
}

/// Saves [`APP`] and starts it as a daemon in a new scratch folder.
fn start() -> Scratch {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("app.tac"), APP).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let started = scratch.rtwistd(&["-f", "app.tap", "--pidfile", "app.pid", "-l", "app.log"]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    wait_for_log_line(&scratch.join("app.log"), "waiting for SIGTERM");
    scratch
}

#[test]
fn an_echo_connection_open_across_a_restart_goes_on_with_the_old_process() {
    let scratch = start();
    let echo = address(&scratch, "echo");
    let mut open = TcpStream::connect(echo).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = [0u8; 6];
    open.write_all(b"before").unwrap();
    open.read_exact(&mut reply).unwrap();
    let old = read_pid(&scratch.join("app.pid"));
    let output = scratch.rtap(&["restart", "app"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The successor serves new connections; the old process still serves this one.
    assert_ne!(read_pid(&scratch.join("app.pid")), old);
    assert!(!exited(old), "the old process left with a connection open");
    open.write_all(b"during").unwrap();
    open.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"during");
    drop(open);
    assert!(
        eventually(|| exited(old)),
        "the old process stayed after its last connection"
    );
    let pid = read_pid(&scratch.join("app.pid"));
    scratch.rtap_ok(&["stop", "app"]);
    assert!(eventually(|| exited(pid)));
}

#[test]
fn three_restarts_under_load_refuse_no_connection_and_lose_no_acknowledged_write() {
    let scratch = start();
    let (echo, kv) = (address(&scratch, "echo"), address(&scratch, "kv"));

    let load = Load::start(echo, 2, kv);
    let seen = load.seen();
    for round in 0..3 {
        let before = seen.acknowledged.load(Ordering::Relaxed);
        assert!(
            eventually(|| seen.acknowledged.load(Ordering::Relaxed) > before + 50),
            "round {round}: the writer made no progress"
        );
        let old = read_pid(&scratch.join("app.pid"));
        let output = scratch.rtap(&["restart", "app"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(eventually(|| exited(old)), "the old rtwistd {old} stayed");
    }
    let after = seen.acknowledged.load(Ordering::Relaxed);
    assert!(eventually(
        || seen.acknowledged.load(Ordering::Relaxed) > after + 50
    ));
    let seen = load.finish();
    assert_eq!(
        seen.refused.load(Ordering::Relaxed),
        0,
        "connections refused"
    );
    assert_eq!(
        seen.failed.load(Ordering::Relaxed),
        0,
        "echo requests or kv sets failed"
    );
    assert!(seen.echoed.load(Ordering::Relaxed) > 0);
    let written = seen.acknowledged.load(Ordering::Relaxed);
    let missing = missing_keys(kv, "k", written);
    assert!(
        missing.is_empty(),
        "{} of {written} acknowledged writes lost, the first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let pid = read_pid(&scratch.join("app.pid"));
    scratch.rtap_ok(&["stop", "app"]);
    assert!(eventually(|| exited(pid)));
}
