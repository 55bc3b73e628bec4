//! Bytes are bytes: binary values and byte keys go through rtwistd's shutdown save and a
//! relaunch exactly, stored compactly (one byte per byte in the tap style), and the tas style
//! shows them readably.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Scratch, text};

/// A memcached text-protocol client speaking bytes.
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

    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        line
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        let mut request = b"set ".to_vec();
        request.extend_from_slice(key);
        request.extend_from_slice(format!(" 0 0 {}\r\n", value.len()).as_bytes());
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.writer.write_all(&request).unwrap();
        assert_eq!(self.line(), b"STORED\r\n", "set {}", key.escape_ascii());
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let mut request = b"get ".to_vec();
        request.extend_from_slice(key);
        request.extend_from_slice(b"\r\n");
        self.writer.write_all(&request).unwrap();
        let header = self.line();
        if header == b"END\r\n" {
            return None;
        }
        let header = String::from_utf8_lossy(&header).into_owned();
        let length: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut value = vec![0u8; length + 2];
        self.reader.read_exact(&mut value).unwrap();
        value.truncate(length);
        assert_eq!(self.line(), b"END\r\n");
        Some(value)
    }
}

/// Deterministic, incompressible, non-UTF-8 bytes.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_values_and_byte_keys_survive_a_stop_and_a_relaunch_compactly() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "kv", "--port", "tcp:0:interface=127.0.0.1"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "kv.tap"]);
    let mut client = Client::connect(daemon.listening_address());
    // 48 binary values of 1 MiB: each byte was one value of the snapshot, which passed the
    // 50,000,000-value limit, and the shutdown save failed with every item lost.
    let values: Vec<Vec<u8>> = (0..48).map(|i| noise(i, 1 << 20)).collect();
    for (index, value) in values.iter().enumerate() {
        client.set(format!("blob{index}").as_bytes(), value);
    }
    // Keys are bytes: memcached stores control and non-UTF-8 bytes too.
    let odd_key = b"\xff\x01key\x7f\xc3";
    client.set(odd_key, b"odd");
    drop(client);
    daemon.signal(Signal::SIGTERM);
    let (status, out, _) = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{out:#?}");

    let size = std::fs::metadata(scratch.join("kv-shutdown.tap"))
        .unwrap()
        .len();
    let data: u64 = 48 << 20;
    assert!(
        size < data + data / 100,
        "{size} bytes for {data} bytes of values: not one byte per byte"
    );

    let mut relaunched = scratch.spawn_rtwistd(&["-n", "-o", "-f", "kv-shutdown.tap"]);
    let mut client = Client::connect(relaunched.listening_address());
    for (index, value) in values.iter().enumerate() {
        assert_eq!(
            client.get(format!("blob{index}").as_bytes()).as_ref(),
            Some(value),
            "blob{index}"
        );
    }
    assert_eq!(client.get(odd_key).unwrap(), b"odd");
    drop(client);
    relaunched.signal(Signal::SIGTERM);
    assert_eq!(relaunched.wait_exit().0.code(), Some(0));
}

#[test]
fn the_source_style_shows_bytes_as_text_or_base64() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&[
        "save",
        "kv",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--style",
        "tas",
    ]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "kv.tas"]);
    let mut client = Client::connect(daemon.listening_address());
    client.set(b"greeting", b"hello");
    client.set(b"\xffraw", &[0, 255, 1]);
    drop(client);
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit().0.code(), Some(0));

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.join("kv-shutdown.tas")).unwrap())
            .unwrap();
    let items = &doc["application"]["services"]["children"][0]["factory"]["table"]["items"];
    assert_eq!(items[0]["key"], "greeting");
    assert_eq!(items[0]["value"], "hello");
    assert_eq!(items[1]["key"], serde_json::json!({"base64": "/3Jhdw=="}));
    assert_eq!(items[1]["value"], serde_json::json!({"base64": "AP8B"}));
    // And rtap shows the same form from the binary style.
    scratch.rtap_ok(&["convert", "kv-shutdown.tas", "binary.tap"]);
    let output = scratch.rtap_ok(&["get", "binary.tap", "kv", "factory.table.items"]);
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(&shown, items, "{}", text(&output.stdout));
}
