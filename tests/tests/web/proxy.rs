//! The reverse proxy, redirects and health checks.

use super::client::{curl, url};
use super::*;

#[test]
fn the_proxy_forwards_streams_both_ways_and_says_who_asked() {
    let upstream = upstream::start();
    let scratch = Scratch::new();
    let dest = format!(
        "/api=tcp:{}:{}",
        upstream.address.ip(),
        upstream.address.port()
    );
    let (_daemon, address) = serve(&scratch, &["--proxy", &dest]);

    // A chunked request body goes up; the response streams down before upstream finishes it.
    let mut client = TcpStream::connect(address).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    client
        .write_all(b"POST /api/items?x=1 HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.9.8.7\r\nConnection: keep-alive, X-Private\r\nX-Private: no\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .unwrap();
    let seen = upstream.seen.recv_timeout(DEADLINE).unwrap();
    assert_eq!(seen.line, "POST /items?x=1 HTTP/1.1");
    assert_eq!(seen.body, b"hello");
    assert_eq!(
        seen.header("host"),
        Some(format!("127.0.0.1:{}", upstream.address.port()).as_str())
    );
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example"));
    assert_eq!(seen.header("x-forwarded-for"), Some("10.9.8.7, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-private"),
        None,
        "a header named by Connection went upstream"
    );
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("first half") {
        let read = client.read(&mut buffer).unwrap();
        assert!(
            read > 0,
            "the proxy closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("x-upstream: yes") && !head.contains("keep-alive: timeout"),
        "{head}"
    );
    upstream.go.send(()).unwrap();
    while !String::from_utf8_lossy(&got).contains("second half") {
        let read = client.read(&mut buffer).unwrap();
        assert!(read > 0);
        got.extend_from_slice(&buffer[..read]);
    }

    // curl sees the whole body; a request outside the mount is the folder's.
    upstream.go.send(()).unwrap();
    let whole = curl(&[], &url(address, "/api"));
    assert_eq!(whole.text(), "first half second half");
    assert_eq!(
        upstream.seen.recv_timeout(DEADLINE).unwrap().line,
        "GET / HTTP/1.1"
    );
    assert_eq!(curl(&[], &url(address, "/apix")).status, 404);
}

#[test]
fn a_proxy_whose_upstream_is_down_answers_502() {
    let scratch = Scratch::new();
    let dead = rtwisted_tests::free_port();
    let (_daemon, address) = serve(
        &scratch,
        &["--proxy", &format!("/api=tcp:127.0.0.1:{dead}")],
    );
    let reply = curl(&[], &url(address, "/api/x"));
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains("Bad Gateway"));
    assert_eq!(curl(&[], &url(address, "/hello.txt")).status, 200);
}

#[test]
fn redirects_and_health_checks_from_the_command_line() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(
        &scratch,
        &[
            "--redirect",
            "/old=https://example.org/new",
            "--health",
            "/healthz",
        ],
    );
    let moved = curl(&[], &url(address, "/old/page"));
    assert_eq!(
        (moved.status, moved.header("location")),
        (302, Some("https://example.org/new"))
    );
    let health = curl(&[], &url(address, "/healthz"));
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
}
