//! `rtap restart` under load: echo clients connecting for every request and a kv writer run
//! through three restarts. No connection is refused, no echo request fails, and every write
//! the daemon acknowledged is in the kv afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rtwisted_tests::{Scratch, eventually, exited, read_pid, text, wait_for_log_line};

const APP: &str = r#"application = Application("app")
service("tcp:0:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
service("tcp:0:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
"#;

/// What the clients saw.
#[derive(Default)]
struct Seen {
    echoed: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    acknowledged: AtomicU64,
}

/// One echo request on a new connection each time, until `stop`.
fn echo_load(address: SocketAddr, stop: &AtomicBool, seen: &Seen) {
    let message = [b'e'; 32];
    let mut reply = [0u8; 32];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(address) else {
            seen.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let answered = stream
            .write_all(&message)
            .and_then(|()| stream.read_exact(&mut reply));
        if answered.is_ok() && reply == message {
            seen.echoed.fetch_add(1, Ordering::Relaxed);
        } else {
            seen.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `set kN` in order; a set that got no `STORED` is sent again on a new connection (as a
/// client retries), so the acknowledged writes are `k0..k(acknowledged-1)`.
fn kv_writer(address: SocketAddr, stop: &AtomicBool, seen: &Seen) {
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut next = 0u64;
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        let reader = match connection.as_mut() {
            Some(reader) => reader,
            None => match TcpStream::connect(address) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    connection.insert(BufReader::new(stream))
                }
                Err(_) => {
                    seen.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
        };
        let request = format!(
            "set k{next} 0 0 {}\r\nv{next}\r\n",
            format!("v{next}").len()
        );
        line.clear();
        let answered = reader.get_mut().write_all(request.as_bytes()).is_ok()
            && reader.read_line(&mut line).is_ok_and(|read| read > 0);
        if answered && line == "STORED\r\n" {
            next += 1;
            seen.acknowledged.store(next, Ordering::Relaxed);
        } else {
            assert!(!answered, "a set was answered {line:?}");
            connection = None;
        }
    }
}

/// The keys of `k0..k(written-1)` the kv at `address` does not hold.
fn missing_keys(address: SocketAddr, written: u64) -> Vec<u64> {
    let mut reader = BufReader::new(TcpStream::connect(address).unwrap());
    let mut missing = Vec::new();
    let mut line = String::new();
    for n in 0..written {
        write!(reader.get_mut(), "get k{n}\r\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("VALUE") {
            for _ in 0..2 {
                line.clear();
                reader.read_line(&mut line).unwrap();
            }
        } else {
            missing.push(n);
        }
    }
    missing
}

fn address(scratch: &Scratch, path: &str) -> SocketAddr {
    let output = scratch.rtap_ok(&["status", "app", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let service = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["path"] == path)
        .unwrap()
        .clone();
    service["facts"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
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

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let mut clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || echo_load(echo, &stop, &seen))
        })
        .collect();
    clients.push(std::thread::spawn({
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
        move || kv_writer(kv, &stop, &seen)
    }));
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
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    assert_eq!(
        seen.refused.load(Ordering::Relaxed),
        0,
        "connections refused"
    );
    assert_eq!(
        seen.failed.load(Ordering::Relaxed),
        0,
        "echo requests failed"
    );
    assert!(seen.echoed.load(Ordering::Relaxed) > 0);
    let written = seen.acknowledged.load(Ordering::Relaxed);
    let missing = missing_keys(kv, written);
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
