//! Checks the test files share: a command that failed with the right exit code and message,
//! tests that need root, the names in a folder, the address of a service in `rtap status`, and
//! a plain echo backend.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::text;

/// Runs `command` with no stdin to completion and fails, showing its stderr, unless it
/// succeeds.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        text(&output.stderr)
    );
    output
}

/// Fails the test unless `output` exited with `code` and its stderr holds `needle`; returns
/// the stderr.
pub fn fails_with(output: &Output, code: i32, needle: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    stderr
}

/// Fails the test unless `output` exited with `code` and its stderr is one line that starts
/// with `start`; returns the stderr.
pub fn fails_with_one_line(output: &Output, code: i32, start: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(start), "{stderr}");
    stderr
}

/// Whether the test runs as root; when not, says on stderr that the test is skipped because
/// `what` needs root.
pub fn root_or_skip(what: &str) -> bool {
    let uid = nix::unistd::Uid::effective();
    if !uid.is_root() {
        eprintln!("SKIPPED: {what} needs root, and this test runs as uid {uid}");
    }
    uid.is_root()
}

/// The `nobody` user, when the test runs as root (to drop privileges to it); otherwise `None`,
/// and stderr says the test is skipped because `what` needs root.
pub fn nobody_when_root(what: &str) -> Option<nix::unistd::User> {
    if !root_or_skip(what) {
        return None;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap();
    Some(nobody.expect("a 'nobody' user"))
}

/// The names of the entries of the folder `dir`.
pub fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The service at `path` in an `rtap status --json` document.
pub fn service_status<'a>(status: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {status:#}"))
}

/// The listening address of the service at `path` in an `rtap status --json` document.
pub fn service_address(status: &serde_json::Value, path: &str) -> SocketAddr {
    service_status(status, path)["facts"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A plain TCP echo backend on loopback that serves `connections` connections, one after
/// another, then stops.
pub fn echo_backend(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    address
}
