//! The clients of the web tests: curl (a real HTTP/1.1 and HTTP/2 client) and raw sockets for
//! the requests no polite client sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rtwisted_tests::DEADLINE;

/// One response as curl saw it.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `1.1` or `2`.
    pub version: String,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The value of the first of `headers` (lowercase names, and values) called `name`.
pub fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Runs curl with `args` and the URL; fails the test with a clear line when curl is missing.
pub fn curl(args: &[&str], url: &str) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let output = Command::new("curl")
        .args(["-s", "-S", "--max-time", "15", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "the web tests need curl (apt-get install -y curl; .ci/run installs it): {error}"
            )
        });
    assert!(
        output.status.success(),
        "curl {args:?} {url} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, version) = written.split_once(' ').unwrap();
    Reply {
        status: status.parse().unwrap(),
        version: version.to_owned(),
        headers: parse_headers(&std::fs::read_to_string(&head).unwrap_or_default()),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// The headers of the last response in a curl `-D` dump.
fn parse_headers(dump: &str) -> Vec<(String, String)> {
    let last = dump.trim_end().rsplit("\r\n\r\n").next().unwrap_or("");
    last.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// `http://ADDRESS/PATH`.
pub fn url(address: SocketAddr, path: &str) -> String {
    format!("http://{address}{path}")
}

/// Sends `request` as it is and reads until the server closes (or [`DEADLINE`]).
pub fn raw(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status code of a raw response.
pub fn status_of(reply: &str) -> u16 {
    reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {reply:?}"))
}

/// A `GET` of `target` as raw bytes, closing after the response.
pub fn get(address: SocketAddr, target: &str) -> String {
    raw(
        address,
        format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Waits until `path` holds a line containing `needle`; returns that line.
pub fn wait_for_file_line(path: &Path, needle: &str) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().find(|line| line.contains(needle))
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < end,
            "{} never held {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
