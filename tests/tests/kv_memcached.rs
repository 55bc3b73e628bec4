//! The kv plugin as a memcached, through the real binary: libmemcached's conformance tester
//! (`memccapable`, both protocols), long multi-gets, byte keys, eviction under the memory
//! limit, the connection limit, and gets that go on while checkpoints are written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use rtwisted_tests::{Daemon, LOOPBACK, MemcacheClient, Scratch, eventually};

/// `rtwistd -n kv --port LOOPBACK EXTRA...` in a scratch folder of its own, and its address.
fn kv(extra: &[&str]) -> (Scratch, Daemon, SocketAddr) {
    let scratch = Scratch::new();
    let mut args = vec!["-n", "kv", "--port", LOOPBACK];
    args.extend_from_slice(extra);
    let mut daemon = scratch.spawn_rtwistd(&args);
    let address = daemon.listening_address();
    (scratch, daemon, address)
}

/// [`kv`], and a client connected to it.
fn kv_client(extra: &[&str]) -> (Scratch, Daemon, MemcacheClient) {
    let (scratch, daemon, address) = kv(extra);
    (scratch, daemon, MemcacheClient::connect(address))
}

/// Whether the tests must find the Debian tools (`.ci/run` says so); otherwise a missing tool
/// skips its test with a note.
fn tools_required() -> bool {
    std::env::var_os("RTWISTED_REQUIRE_TOOLS").is_some_and(|value| value == "1")
}

#[test]
fn memccapable_passes_every_ascii_and_binary_test() {
    if Command::new("memccapable").arg("-h").output().is_err() {
        assert!(
            !tools_required(),
            "memccapable is missing: apt-get install libmemcached-tools"
        );
        eprintln!("memccapable is not installed (libmemcached-tools): skipped");
        return;
    }
    let (_scratch, daemon, address) = kv(&[]);
    for protocol in ["-a", "-b"] {
        let output = Command::new("memccapable")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &address.port().to_string(),
                "-t",
                "5",
            ])
            .arg(protocol)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let passed = stdout
            .lines()
            .filter(|line| line.ends_with("[pass]"))
            .count();
        assert!(
            output.status.success() && stdout.contains("All tests passed") && passed == 27,
            "memccapable {protocol}: {passed} of 27 passed\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    daemon.stop();
}

#[test]
fn a_multi_get_of_a_thousand_longest_keys_answers_every_one() {
    let (_scratch, daemon, mut client) = kv_client(&[]);
    let keys: Vec<Vec<u8>> = (0..1000)
        .map(|n| format!("{n:04}{}", "k".repeat(246)).into_bytes())
        .collect();
    assert!(keys.iter().all(|key| key.len() == 250));
    let mut sets = Vec::new();
    for key in &keys {
        sets.extend_from_slice(b"set ");
        sets.extend_from_slice(key);
        sets.extend_from_slice(b" 0 0 3 noreply\r\n");
        sets.extend_from_slice(&key[..3]);
        sets.extend_from_slice(b"\r\n");
    }
    client.send(&sets);
    // One line of 251,004 bytes, as pymemcache's get_many or memcslap --test=mget send.
    let mut request = b"get".to_vec();
    for key in &keys {
        request.push(b' ');
        request.extend_from_slice(key);
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > 250_000);
    let hits = client.values(&request);
    assert_eq!(hits.len(), 1000);
    for ((key, value), wanted) in hits.iter().zip(&keys) {
        assert_eq!(key, wanted);
        assert_eq!(value, &wanted[..3]);
    }
    // gets and gat of the same line too.
    request.splice(0..3, b"gets".iter().copied());
    assert_eq!(client.values(&request).len(), 1000);
    drop(client);
    daemon.stop();
}

#[test]
fn keys_are_bytes_as_memcached_reads_them() {
    let (_scratch, daemon, mut client) = kv_client(&[]);
    // memcaslap's keys start with 0x10 bytes; others hold tabs, DEL, non-UTF-8.
    let keys: [&[u8]; 5] = [
        b"\x10\x10key",
        b"a\tb",
        b"\x7f",
        b"\xff\xfe\x01",
        "clé".as_bytes(),
    ];
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(
            client.set(key, 0, format!("v{n}").as_bytes()),
            b"STORED\r\n"
        );
    }
    for (n, key) in keys.iter().enumerate() {
        let mut request = b"get ".to_vec();
        request.extend_from_slice(key);
        request.extend_from_slice(b"\r\n");
        assert_eq!(
            client.values(&request),
            [(key.to_vec(), format!("v{n}").into_bytes())],
            "{}",
            key.escape_ascii()
        );
    }
    // Past 250 bytes a key is refused, as by memcached.
    let long = vec![b'k'; 251];
    assert_eq!(
        client.set(&long, 0, b"x"),
        b"CLIENT_ERROR bad command line format\r\n"
    );
    drop(client);
    daemon.stop();
}

#[test]
fn past_the_memory_limit_the_least_recently_used_items_are_evicted() {
    let (_scratch, daemon, mut client) = kv_client(&["--memory-limit", "1"]);
    let value = vec![b'v'; 1000];
    // 4 MB of values into 1 MiB; the first key is read all along, so it stays recent.
    for n in 0..4000 {
        assert_eq!(
            client.set(format!("key{n}").as_bytes(), 0, &value),
            b"STORED\r\n",
            "set {n}"
        );
        if n % 100 == 0 {
            assert_eq!(client.values(b"get key0\r\n").len(), 1, "key0 at {n}");
        }
    }
    let stats = client.stats();
    let number = |name: &str| stats[name].parse::<u64>().unwrap();
    assert_eq!(number("limit_maxbytes"), 1024 * 1024);
    assert!(number("bytes") <= 1024 * 1024, "{stats:?}");
    assert!(number("evictions") >= 2900, "{stats:?}");
    assert!(number("curr_items") < 1100, "{stats:?}");
    // The most recent writes are all there; the oldest untouched ones are gone.
    for n in 3900..4000 {
        let request = format!("get key{n}\r\n");
        assert_eq!(client.values(request.as_bytes()).len(), 1, "key{n}");
    }
    assert!(client.values(b"get key1 key2 key3\r\n").is_empty());
    drop(client);
    daemon.stop();
}

#[test]
fn connections_past_the_limit_are_turned_away_as_by_memcached() {
    let (_scratch, daemon, address) = kv(&["--max-connections", "2"]);
    let mut first = MemcacheClient::connect(address);
    let mut second = MemcacheClient::connect(address);
    assert_eq!(first.set(b"k", 0, b"1"), b"STORED\r\n");
    assert_eq!(second.set(b"k", 0, b"2"), b"STORED\r\n");
    let mut third = MemcacheClient::connect(address);
    assert_eq!(third.line(), b"SERVER_ERROR too many open connections\r\n");
    assert_eq!(third.line(), b"", "closed after the refusal");
    drop(second);
    // Once one closes, a new client gets in.
    assert!(eventually(|| {
        let mut again = MemcacheClient::connect(address);
        again.send(b"version\r\n");
        again.line().starts_with(b"VERSION ")
    }));
    // The third, and any retry that came before the second's close was seen.
    let rejected: u64 = first.stats()["rejected_connections"].parse().unwrap();
    assert!(rejected >= 1);
    drop(first);
    daemon.stop();
}

#[test]
fn gets_go_on_while_checkpoints_are_written() {
    let scratch = Scratch::new();
    let (daemon, address) = scratch.serve_saved("kv", &["--checkpoint-every", "100ms"]);
    let mut client = MemcacheClient::connect(address);
    // 100,000 items of 100 bytes, pipelined.
    let value = [b'x'; 100];
    for batch in 0..100 {
        let mut sets = Vec::new();
        for n in batch * 1000..(batch + 1) * 1000 {
            sets.extend_from_slice(format!("set key{n} 0 0 100 noreply\r\n").as_bytes());
            sets.extend_from_slice(&value);
            sets.extend_from_slice(b"\r\n");
        }
        client.send(&sets);
    }
    assert_eq!(client.stats()["curr_items"], "100000");
    let checkpoint = scratch.join("kv-checkpoint.tap");
    let modified = || {
        std::fs::metadata(&checkpoint)
            .and_then(|meta| meta.modified())
            .ok()
    };
    assert!(eventually(|| modified().is_some()));
    let first = modified();
    // Gets for a while, across several checkpoints of the whole table.
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        let request = format!("get key{}\r\n", (n * 7919) % 100_000);
        let asked = Instant::now();
        assert_eq!(client.values(request.as_bytes()).len(), 1);
        slowest = slowest.max(asked.elapsed());
        n += 1;
    }
    assert_ne!(modified(), first, "no checkpoint was written meanwhile");
    // A loose bound (debug build, shared machine): a checkpoint holding the table would stall
    // a get for its whole length. The benchmark measures the real figure.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest get {slowest:?}"
    );
    drop(client);
    daemon.stop();
}
