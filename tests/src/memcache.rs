//! Memcached text-protocol clients for the kv plugin's tests: one-shot requests, and a client
//! over one connection that speaks bytes (keys and values need not be UTF-8).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::DEADLINE;

/// Sends one memcached text-protocol request and returns the first line of the reply.
pub fn memcache_request(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

/// Sets `key` to `value` with a one-shot request and fails the test unless it is `STORED`.
pub fn memcache_store(address: SocketAddr, key: &str, value: &str) {
    let request = format!("set {key} 0 0 {}\r\n{value}\r\n", value.len());
    assert_eq!(memcache_request(address, request.as_bytes()), "STORED\r\n");
}

/// The value a memcached text-protocol server holds for `key`, if any.
pub fn memcache_get(address: SocketAddr, key: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(format!("get {key}\r\nquit\r\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .lines()
        .nth(1)
        .filter(|_| reply.starts_with("VALUE"))
        .map(str::to_owned)
}

/// One hit of a retrieval: the key, the client flags and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key, as the server sent it.
    pub key: Vec<u8>,
    /// The client flags stored with the value.
    pub flags: u32,
    /// The value.
    pub value: Vec<u8>,
}

/// A memcached text-protocol client over one connection, speaking bytes.
pub struct MemcacheClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl MemcacheClient {
    /// Connects to `address`; every read waits at most [`DEADLINE`].
    pub fn connect(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        MemcacheClient {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line of the reply, with its line end (empty once the server closed).
    pub fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        line
    }

    /// Sends `set KEY FLAGS 0 LEN` with `value` and returns the reply line.
    pub fn set(&mut self, key: &[u8], flags: u32, value: &[u8]) -> Vec<u8> {
        let mut request = b"set ".to_vec();
        request.extend_from_slice(key);
        request.extend_from_slice(format!(" {flags} 0 {}\r\n", value.len()).as_bytes());
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.send(&request);
        self.line()
    }

    /// Sets `key` to `value` (flags 0) and fails the test unless it is `STORED`.
    pub fn store(&mut self, key: &[u8], value: &[u8]) {
        let reply = self.set(key, 0, value);
        assert_eq!(reply, b"STORED\r\n", "set {}", key.escape_ascii());
    }

    /// Sends `request` (`get`, `gets` or any retrieval line) and reads the hits until `END`.
    pub fn items(&mut self, request: &[u8]) -> Vec<Item> {
        self.send(request);
        let mut hits = Vec::new();
        loop {
            let header = self.line();
            if header == b"END\r\n" {
                return hits;
            }
            assert!(header.starts_with(b"VALUE "), "{}", header.escape_ascii());
            let fields: Vec<&[u8]> = header[6..header.len() - 2].split(|&b| b == b' ').collect();
            let number = |field: &[u8]| std::str::from_utf8(field).unwrap().parse::<u32>();
            let length = number(fields[2]).unwrap() as usize;
            let mut value = vec![0u8; length + 2];
            self.reader.read_exact(&mut value).unwrap();
            assert_eq!(&value[length..], b"\r\n");
            value.truncate(length);
            hits.push(Item {
                key: fields[0].to_vec(),
                flags: number(fields[1]).unwrap(),
                value,
            });
        }
    }

    /// The hits of `request` as (key, value) pairs.
    pub fn values(&mut self, request: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let items = self.items(request);
        items
            .into_iter()
            .map(|item| (item.key, item.value))
            .collect()
    }

    /// The item stored under `key`, if any.
    pub fn get(&mut self, key: &[u8]) -> Option<Item> {
        let mut request = b"get ".to_vec();
        request.extend_from_slice(key);
        request.extend_from_slice(b"\r\n");
        let mut items = self.items(&request);
        assert!(items.len() <= 1, "{items:?}");
        items.pop()
    }

    /// The `stats` reply as a name-to-value map.
    pub fn stats(&mut self) -> BTreeMap<String, String> {
        self.send(b"stats\r\n");
        let mut stats = BTreeMap::new();
        loop {
            let line = String::from_utf8(self.line()).unwrap();
            if line == "END\r\n" {
                return stats;
            }
            let mut words = line.trim_end().splitn(3, ' ');
            assert_eq!(words.next(), Some("STAT"), "{line}");
            stats.insert(
                words.next().unwrap().to_owned(),
                words.next().unwrap_or("").to_owned(),
            );
        }
    }
}
