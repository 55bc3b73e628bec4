//! The kv plugin through the real binaries: persistence-first end to end. Keys set over the
//! memcached text protocol survive a stop and a relaunch from the shutdown snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{LOOPBACK, MemcacheClient, Scratch};

/// The value of `key`, which the tests always set with flags 7.
fn get(client: &mut MemcacheClient, key: &str) -> Option<Vec<u8>> {
    let item = client.get(key.as_bytes())?;
    assert_eq!(
        (item.key.as_slice(), item.flags),
        (key.as_bytes(), 7),
        "{item:?}"
    );
    Some(item.value)
}

#[test]
fn keys_set_before_a_stop_are_served_after_a_relaunch_from_the_shutdown_snapshot() {
    let scratch = Scratch::new();
    let (daemon, address) = scratch.serve_saved("kv", &[]);
    let mut client = MemcacheClient::connect(address);
    assert_eq!(
        client.set(b"greeting", 7, b"hello, persistence"),
        b"STORED\r\n"
    );
    assert_eq!(
        client.set(b"binary", 7, &[0, 159, 146, 150, 255]),
        b"STORED\r\n"
    );
    client.send(b"incr counter 1\r\n");
    assert_eq!(client.line(), b"NOT_FOUND\r\n");
    assert_eq!(client.set(b"counter", 7, b"41"), b"STORED\r\n");
    client.send(b"incr counter 1\r\n");
    assert_eq!(client.line(), b"42\r\n");
    client.send(b"bogus\r\n");
    assert_eq!(client.line(), b"ERROR\r\n");
    drop(client);
    daemon.stop();

    let mut relaunched = scratch.spawn_rtwistd(&["-n", "-f", "kv-shutdown.tap"]);
    let mut client = MemcacheClient::connect(relaunched.listening_address());
    assert_eq!(get(&mut client, "greeting").unwrap(), b"hello, persistence");
    assert_eq!(get(&mut client, "binary").unwrap(), [0, 159, 146, 150, 255]);
    assert_eq!(get(&mut client, "counter").unwrap(), b"42");
    assert_eq!(get(&mut client, "missing"), None);
    drop(client);
    relaunched.stop();
}

#[test]
fn an_oversized_value_gets_server_error_and_the_connection_goes_on() {
    let scratch = Scratch::new();
    let mut daemon =
        scratch.spawn_rtwistd(&["-n", "kv", "--port", LOOPBACK, "--max-value-size", "16"]);
    let mut client = MemcacheClient::connect(daemon.listening_address());
    assert_eq!(
        client.set(b"big", 7, &[b'x'; 17]),
        b"SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(client.set(b"small", 7, b"fits"), b"STORED\r\n");
    drop(client);
    daemon.stop();
}
