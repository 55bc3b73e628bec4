//! A small upstream HTTP server for the proxy tests: it records each request it gets and
//! answers with a chunked body whose second half waits for the test's go.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// One request the upstream received.
#[derive(Debug)]
pub struct Seen {
    /// The request line.
    pub line: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body (read by its Content-Length, or chunked).
    pub body: Vec<u8>,
}

impl Seen {
    /// The header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::client::first_header(&self.headers, name)
    }
}

/// The upstream: its address, the requests it saw, and the go for the second half of each
/// response.
pub struct Upstream {
    /// Where it listens.
    pub address: SocketAddr,
    /// Each request, as it arrives.
    pub seen: Receiver<Seen>,
    /// Send `()` to let a response finish.
    pub go: Sender<()>,
}

/// Starts the upstream on a loopback port. Each response is `first half` (sent at once),
/// then, after a go (or 20 s), `second half`.
pub fn start() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (seen_tx, seen) = channel();
    let (go, go_rx) = channel::<()>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (key, value) = header.split_once(':').unwrap();
                    headers.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
                let get = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let mut body = Vec::new();
                if let Some(length) = get("content-length") {
                    body.resize(length.parse().unwrap(), 0);
                    reader.read_exact(&mut body).unwrap();
                } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                    loop {
                        let mut size = String::new();
                        reader.read_line(&mut size).unwrap();
                        let size = usize::from_str_radix(size.trim(), 16).unwrap();
                        let mut chunk = vec![0; size + 2];
                        reader.read_exact(&mut chunk).unwrap();
                        if size == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..size]);
                    }
                }
                let _ = seen_tx.send(Seen {
                    line: line.trim_end().to_owned(),
                    headers,
                    body,
                });
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Upstream: yes\r\nKeep-Alive: timeout=5\r\n\r\n";
                if stream.write_all(head.as_bytes()).is_err()
                    || stream.write_all(b"b\r\nfirst half \r\n").is_err()
                {
                    break;
                }
                let _ = go_rx.recv_timeout(Duration::from_secs(20));
                if stream.write_all(b"b\r\nsecond half\r\n0\r\n\r\n").is_err() {
                    break;
                }
            }
        }
    });
    Upstream { address, seen, go }
}
