//! The `kv` protocol driven over an in-memory stream, byte for byte.
//!
//! Most tests are transcripts: lines of `request => reply`, played on a connection by
//! [`Client::play`]; the bytes of each side are written with Rust's escapes (see
//! [`unescape`]).

mod commands;
mod lifecycle;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::net::Address;

const VERSION: &str = "VERSION 1.6.18\r\n";

/// A client end of one connection served by a factory in its own task.
struct Client {
    stream: DuplexStream,
    shutdown: CancellationToken,
    server: JoinHandle<io::Result<()>>,
}

fn address() -> Address {
    Address::Inet("127.0.0.1:1".parse().unwrap())
}

fn connect(factory: Arc<dyn ProtocolFactory>) -> Client {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let shutdown = CancellationToken::new();
    let connection = Connection {
        stream: Box::new(server),
        peer: address(),
        local: address(),
        shutdown: shutdown.clone(),
    };
    let server = tokio::spawn(async move { factory.serve(connection).await });
    Client {
        stream: client,
        shutdown,
        server,
    }
}

/// Waits (10 s at most) for a connection's serve task, which must end without an error.
async fn served(server: JoinHandle<io::Result<()>>) {
    timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// The bytes a transcript side stands for: Rust's escapes `\r`, `\n`, `\t`, `\0`, `\\` and
/// `\xNN` are read as the bytes they name, everything else is taken as it is.
fn unescape(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        let (&code, after) = rest.split_first().expect("an escape at the end of a line");
        rest = after;
        bytes.push(match code {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'x' => {
                let (hex, after) = rest.split_at(2);
                rest = after;
                u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap()
            }
            other => panic!("unknown escape \\{}", other as char),
        });
    }
    bytes
}

impl Client {
    async fn send(&mut self, request: impl AsRef<[u8]>) {
        self.stream.write_all(request.as_ref()).await.unwrap();
    }

    /// Reads exactly as many bytes as `expected` has and compares.
    async fn expect(&mut self, expected: impl AsRef<[u8]>) {
        let expected = expected.as_ref();
        let mut got = vec![0; expected.len()];
        timeout(Duration::from_secs(10), self.stream.read_exact(&mut got))
            .await
            .unwrap_or_else(|_| panic!("no reply in time; expected {}", expected.escape_ascii()))
            .unwrap();
        assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    async fn exchange(&mut self, request: impl AsRef<[u8]>, expected: impl AsRef<[u8]>) {
        self.send(request).await;
        self.expect(expected).await;
    }

    /// Plays a transcript, one exchange a line: `request => reply`, each side written with
    /// the escapes of [`unescape`] and trimmed. The request is sent and exactly the reply is
    /// read back; an empty reply (`request =>`) means the server must send nothing for it.
    /// Blank lines and lines starting with `//` are skipped.
    async fn play(&mut self, transcript: &str) {
        for line in transcript.lines().map(str::trim) {
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let (request, reply) = line
                .split_once("=>")
                .unwrap_or_else(|| panic!("no `=>` in {line:?}"));
            self.exchange(unescape(request.trim()), unescape(reply.trim()))
                .await;
        }
    }

    /// Reads until the server closes; everything it sent must have been expected already.
    async fn expect_closed(mut self) {
        let mut rest = Vec::new();
        timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest.escape_ascii().to_string(), "");
        served(self.server).await;
    }

    /// Quits: nothing unexpected may be left on the wire.
    async fn quit(mut self) {
        self.send("quit\r\n").await;
        self.expect_closed().await;
    }
}

fn kv(max_value_bytes: usize) -> Arc<Kv> {
    Arc::new(Kv::new(max_value_bytes))
}

/// A `set` of `value` under `key`, with no flags and no expiry.
fn set_request(key: &str, value: &str) -> String {
    format!("set {key} 0 0 {}\r\n{value}\r\n", value.len())
}

/// Plays `transcript` on one connection to a new table for values of up to
/// `max_value_bytes`, quits, and hands back the table.
async fn played(max_value_bytes: usize, transcript: &str) -> Arc<Kv> {
    let kv = kv(max_value_bytes);
    let mut client = connect(kv.clone());
    client.play(transcript).await;
    client.quit().await;
    kv
}
