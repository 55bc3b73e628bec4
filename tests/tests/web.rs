//! The web service as a user meets it: `rtwistd web --path DIR` and `rtap save web`, talked to
//! with curl (HTTP/1.1, HTTP/2 over TLS, a UNIX socket) and with raw sockets for the requests
//! it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "web/client.rs"]
mod client;
#[path = "web/files.rs"]
mod files;
#[path = "web/proxy.rs"]
mod proxy;
#[path = "web/safety.rs"]
mod safety;
#[path = "web/saved.rs"]
mod saved;
#[path = "web/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;

use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Daemon, LOOPBACK, Scratch, text};

/// A folder to serve: files, a folder with an index, a folder without, a link out, a secret
/// beside the folder.
fn site(scratch: &Scratch) -> String {
    let root = scratch.join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("with space")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello, web\n").unwrap();
    std::fs::write(root.join("page.html"), "<p>page</p>\n").unwrap();
    std::fs::write(root.join("style.css"), "p {}\n").unwrap();
    let digits: String = (0..1000)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    std::fs::write(root.join("digits.txt"), &digits).unwrap();
    std::fs::write(root.join("big.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
    std::fs::write(root.join("with space/a&b.txt"), "x").unwrap();
    std::fs::write(scratch.join("secret.txt"), "the secret\n").unwrap();
    symlink(scratch.join("secret.txt"), root.join("out.txt")).unwrap();
    symlink(root.join("hello.txt"), root.join("in.txt")).unwrap();
    root.to_str().unwrap().to_owned()
}

fn serve(scratch: &Scratch, extra: &[&str]) -> (Daemon, SocketAddr) {
    let root = site(scratch);
    let mut args = vec![
        "-n",
        "-o",
        "web",
        "--path",
        root.as_str(),
        "--port",
        LOOPBACK,
    ];
    args.extend_from_slice(extra);
    let mut daemon = scratch.spawn_rtwistd(&args);
    let address = daemon.listening_address();
    (daemon, address)
}

fn certificate(scratch: &Scratch) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (scratch.join("cert.pem"), scratch.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}
