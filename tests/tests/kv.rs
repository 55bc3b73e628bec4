//! The kv plugin through the real binaries: persistence-first end to end. Keys set over the
//! memcached text protocol survive a stop and a relaunch from the shutdown snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Scratch};

/// A tiny memcached text-protocol client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn set(&mut self, key: &str, value: &[u8]) -> String {
        self.send(format!("set {key} 7 0 {}\r\n", value.len()).as_bytes());
        self.send(value);
        self.send(b"\r\n");
        self.line()
    }

    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
        let header = self.line();
        if header == "END\r\n" {
            return None;
        }
        let length: usize = header.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!(header.starts_with(&format!("VALUE {key} 7 ")), "{header:?}");
        let mut value = vec![0u8; length + 2];
        self.reader.read_exact(&mut value).unwrap();
        value.truncate(length);
        assert_eq!(self.line(), "END\r\n");
        Some(value)
    }
}

#[test]
fn keys_set_before_a_stop_are_served_after_a_relaunch_from_the_shutdown_snapshot() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "kv", "--port", "tcp:0:interface=127.0.0.1"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "kv.tap"]);
    let mut client = Client::connect(daemon.listening_address());
    assert_eq!(client.set("greeting", b"hello, persistence"), "STORED\r\n");
    assert_eq!(client.set("binary", &[0, 159, 146, 150, 255]), "STORED\r\n");
    client.send(b"incr counter 1\r\n");
    assert_eq!(client.line(), "NOT_FOUND\r\n");
    assert_eq!(client.set("counter", b"41"), "STORED\r\n");
    client.send(b"incr counter 1\r\n");
    assert_eq!(client.line(), "42\r\n");
    client.send(b"bogus\r\n");
    assert_eq!(client.line(), "ERROR\r\n");
    drop(client);
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit().0.code(), Some(0));

    let mut relaunched = scratch.spawn_rtwistd(&["-n", "-f", "kv-shutdown.tap"]);
    let mut client = Client::connect(relaunched.listening_address());
    assert_eq!(client.get("greeting").unwrap(), b"hello, persistence");
    assert_eq!(client.get("binary").unwrap(), [0, 159, 146, 150, 255]);
    assert_eq!(client.get("counter").unwrap(), b"42");
    assert_eq!(client.get("missing"), None);
    drop(client);
    relaunched.signal(Signal::SIGTERM);
    assert_eq!(relaunched.wait_exit().0.code(), Some(0));
}

#[test]
fn an_oversized_value_gets_server_error_and_the_connection_goes_on() {
    let scratch = Scratch::new();
    let mut daemon = scratch.spawn_rtwistd(&[
        "-n",
        "kv",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--max-value-size",
        "16",
    ]);
    let mut client = Client::connect(daemon.listening_address());
    assert_eq!(
        client.set("big", &[b'x'; 17]),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(client.set("small", b"fits"), "STORED\r\n");
    drop(client);
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit().0.code(), Some(0));
}
