//! The web service as a user meets it: `rtwistd web --path DIR` and `rtap save web`, talked to
//! with curl (HTTP/1.1, HTTP/2 over TLS, a UNIX socket) and with raw sockets for the requests
//! it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "web/client.rs"]
mod client;
#[path = "web/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;

use client::{curl, get, raw, status_of, url, wait_for_file_line};
use nix::sys::signal::Signal;
use rtwisted_tests::{DEADLINE, Daemon, Scratch, text};

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

const LOOPBACK: &str = "tcp:0:interface=127.0.0.1";

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

#[test]
fn files_are_served_with_their_type_length_and_validators() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let reply = curl(&[], &url(address, "/hello.txt"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello, web\n");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.header("content-length"), Some("11"));
    assert!(reply.header("etag").unwrap().starts_with('"'));
    assert!(reply.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        curl(&[], &url(address, "/page.html")).header("content-type"),
        Some("text/html")
    );
    assert_eq!(
        curl(&[], &url(address, "/style.css")).header("content-type"),
        Some("text/css")
    );
    let big = curl(&[], &url(address, "/big.bin"));
    assert_eq!(big.body, vec![7u8; 300_000]);
    assert_eq!(big.header("content-type"), Some("application/octet-stream"));
    assert_eq!(curl(&[], &url(address, "/missing.txt")).status, 404);
}

#[test]
fn head_answers_the_headers_of_get_without_a_body() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let reply = raw(
        address,
        b"HEAD /digits.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&reply), 200);
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-length: 1000\r\n"),
        "{reply}"
    );
    assert!(reply.ends_with("\r\n\r\n"), "HEAD sent a body: {reply:?}");
    let post = curl(&["-X", "POST", "-d", "x"], &url(address, "/hello.txt"));
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn folders_get_their_index_a_slash_and_a_listing_unless_told_not_to() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let redirect = curl(&[], &url(address, "/docs?x=1"));
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/docs/?x=1"));
    assert_eq!(
        curl(&["-L"], &url(address, "/docs")).text(),
        "<h1>docs</h1>\n"
    );
    let listing = curl(&[], &url(address, "/"));
    assert_eq!(listing.status, 200);
    assert!(
        listing
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = listing.text();
    assert!(html.contains("Directory listing for /"), "{html}");
    assert!(
        html.contains(r#"<a href="hello.txt">hello.txt</a>"#),
        "{html}"
    );
    assert!(html.contains(r#"<a href="docs/">docs/</a>"#), "{html}");
    assert!(
        html.contains("[Directory]") && html.contains("292K"),
        "{html}"
    );
    let inner = curl(&[], &url(address, "/with%20space/")).text();
    assert!(
        inner.contains(r#"<a href="a%26b.txt">a&amp;b.txt</a>"#),
        "{inner}"
    );

    let other = Scratch::new();
    let (_quiet, address) = serve(&other, &["--no-listing"]);
    assert_eq!(curl(&[], &url(address, "/empty/")).status, 403);
    assert_eq!(curl(&[], &url(address, "/docs/")).status, 200);
}

#[test]
fn byte_ranges_get_206_multipart_and_416() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let part = curl(&["-r", "10-19"], &url(address, "/digits.txt"));
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "0123456789");
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    let tail = curl(&["-H", "Range: bytes=-3"], &url(address, "/digits.txt"));
    assert_eq!((tail.status, tail.text().as_str()), (206, "789"));
    let big = curl(&["-r", "299990-"], &url(address, "/big.bin"));
    assert_eq!((big.status, big.body.len()), (206, 10));
    let multi = curl(&["-r", "0-1,5-6"], &url(address, "/digits.txt"));
    assert_eq!(multi.status, 206);
    let kind = multi.header("content-type").unwrap();
    assert!(
        kind.starts_with("multipart/byteranges; boundary="),
        "{kind}"
    );
    let body = multi.text();
    assert!(
        body.contains("Content-Range: bytes 0-1/1000\r\n\r\n01\r\n"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 5-6/1000\r\n\r\n56\r\n"),
        "{body}"
    );
    let none = curl(&["-r", "5000-6000"], &url(address, "/digits.txt"));
    assert_eq!(none.status, 416);
    assert_eq!(none.header("content-range"), Some("bytes */1000"));
    let etag = curl(&[], &url(address, "/digits.txt"))
        .header("etag")
        .unwrap()
        .to_owned();
    let stale = curl(
        &["-r", "0-1", "-H", "If-Range: \"old\""],
        &url(address, "/digits.txt"),
    );
    assert_eq!((stale.status, stale.body.len()), (200, 1000));
    let fresh = curl(
        &["-r", "0-1", "-H", &format!("If-Range: {etag}")],
        &url(address, "/digits.txt"),
    );
    assert_eq!(fresh.status, 206);
}

#[test]
fn conditional_requests_get_304() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let first = curl(&[], &url(address, "/hello.txt"));
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let same = curl(
        &["-H", &format!("If-None-Match: {etag}")],
        &url(address, "/hello.txt"),
    );
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    let weak = curl(
        &["-H", &format!("If-None-Match: \"x\", W/{etag}")],
        &url(address, "/hello.txt"),
    );
    assert_eq!(weak.status, 304);
    let other = curl(
        &["-H", "If-None-Match: \"other\""],
        &url(address, "/hello.txt"),
    );
    assert_eq!(other.status, 200);
    let since = curl(
        &["-H", &format!("If-Modified-Since: {modified}")],
        &url(address, "/hello.txt"),
    );
    assert_eq!(since.status, 304);
    let old = curl(
        &["-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"],
        &url(address, "/hello.txt"),
    );
    assert_eq!(old.status, 200);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects} ",
        ])
        .args([
            url(address, "/hello.txt"),
            url(address, "/digits.txt"),
            url(address, "/big.bin"),
        ])
        .output()
        .expect("the web tests need curl (apt-get install -y curl)");
    assert_eq!(
        text(&output.stdout).trim(),
        "1 0 0",
        "curl opened more than one connection"
    );
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

#[test]
fn tls_offers_http2_by_alpn_and_http1_to_clients_that_want_it() {
    let scratch = Scratch::new();
    let (cert, key) = certificate(&scratch);
    let root = site(&scratch);
    let port = format!("ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}");
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "web", "--path", &root, "--port", &port]);
    let address = daemon.listening_address();
    let https = format!("https://localhost:{}/hello.txt", address.port());
    let resolve = format!("localhost:{}:127.0.0.1", address.port());
    let two = curl(
        &["--http2", "--cacert", &cert, "--resolve", &resolve],
        &https,
    );
    assert_eq!(
        (two.status, two.version.as_str(), two.text().as_str()),
        (200, "2", "hello, web\n")
    );
    let ranged = curl(
        &[
            "--http2",
            "--cacert",
            &cert,
            "--resolve",
            &resolve,
            "-r",
            "0-4",
        ],
        &https,
    );
    assert_eq!((ranged.status, ranged.text().as_str()), (206, "hello"));
    let one = curl(
        &["--http1.1", "--cacert", &cert, "--resolve", &resolve],
        &https,
    );
    assert_eq!((one.status, one.version.as_str()), (200, "1.1"));
}

#[test]
fn a_unix_socket_serves_http_too() {
    let scratch = Scratch::new();
    let root = site(&scratch);
    let socket = scratch.join("web.sock");
    let port = format!("unix:{}", socket.display());
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "web", "--path", &root, "--port", &port]);
    daemon.wait_for_line("listening on");
    let reply = curl(
        &["--unix-socket", socket.to_str().unwrap()],
        "http://localhost/hello.txt",
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello, web\n"));
}

#[test]
fn the_access_log_is_in_the_combined_format() {
    let scratch = Scratch::new();
    let log = scratch.join("access.log");
    let (_daemon, address) = serve(&scratch, &["--access-log", log.to_str().unwrap()]);
    curl(
        &["-A", "tester/1.0", "-e", "http://ref.example/"],
        &url(address, "/hello.txt?q=1"),
    );
    let line = wait_for_file_line(&log, "/hello.txt");
    let (client, rest) = line.split_once(" - - [").unwrap();
    assert_eq!(client, "127.0.0.1");
    let (time, rest) = rest.split_once("] ").unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
    assert_eq!(
        rest,
        r#""GET /hello.txt?q=1 HTTP/1.1" 200 11 "http://ref.example/" "tester/1.0""#
    );
    curl(&[], &url(address, "/nothing"));
    let missing = wait_for_file_line(&log, "/nothing");
    assert!(
        missing.contains("\"GET /nothing HTTP/1.1\" 404 "),
        "{missing}"
    );
}

#[test]
fn no_request_path_leaves_the_folder() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    for target in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/%2e%2e/secret.txt",
        "/docs%2f..%2f..%2fsecret.txt",
        "/..%2fsecret.txt",
        "/hello.txt%00.html",
        "/%2fetc%2fpasswd",
        "/out.txt",
    ] {
        let reply = get(address, target);
        let status = status_of(&reply);
        assert!(matches!(status, 400 | 404), "{target}: {status}");
        assert!(!reply.contains("the secret"), "{target} leaked the secret");
    }
    assert_eq!(
        status_of(&get(address, "/in.txt")),
        200,
        "a link inside the folder is served"
    );

    let other = Scratch::new();
    let (_daemon, address) = serve(&other, &["--follow-symlinks"]);
    assert!(
        get(address, "/out.txt").contains("the secret"),
        "--follow-symlinks serves links out"
    );
    assert!(!get(address, "/%2e%2e/secret.txt").contains("the secret"));
}

#[test]
fn oversized_heads_get_431_and_long_targets_414() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &[]);
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_eq!(status_of(&raw(address, huge.as_bytes())), 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    assert_eq!(status_of(&raw(address, many.as_bytes())), 431);
    let long = format!("/{}", "a".repeat(9_000));
    assert_eq!(status_of(&get(address, &long)), 414);
    assert_eq!(
        status_of(&get(address, "/hello.txt")),
        200,
        "the server still answers"
    );
}

#[test]
fn a_slow_client_is_cut_at_the_head_deadline_and_holds_nothing_up() {
    let scratch = Scratch::new();
    let (_daemon, address) = serve(&scratch, &["--header-timeout", "1"]);
    let mut slow = TcpStream::connect(address).unwrap();
    slow.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut silent = TcpStream::connect(address).unwrap();
    // While both hang, everyone else is served.
    for _ in 0..20 {
        assert_eq!(status_of(&get(address, "/hello.txt")), 200);
    }
    for stream in [&mut slow, &mut silent] {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut rest = Vec::new();
        let outcome = stream.read_to_end(&mut rest);
        assert!(
            outcome.is_ok(),
            "the server did not close a slow client: {outcome:?}"
        );
        assert!(!String::from_utf8_lossy(&rest).contains("hello, web"));
    }
}

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

#[test]
fn the_resource_tree_is_saved_shown_edited_and_survives_a_relaunch() {
    let scratch = Scratch::new();
    let root = site(&scratch);
    let upstream = upstream::start();
    let dest = format!("/api=tcp:127.0.0.1:{}", upstream.address.port());
    scratch.rtap_ok(&[
        "save", "web", "--path", &root, "--port", LOOPBACK, "--proxy", &dest, "--health", "/up",
        "-o", "web.tap",
    ]);

    let shown = text(&scratch.rtap_ok(&["inspect", "web.tap"]).stdout);
    assert!(shown.contains("rtwisted.Site"), "{shown}");
    assert!(shown.contains(&format!("/  static {root}")), "{shown}");
    assert!(
        shown.contains(&format!(
            "/api  proxy tcp:host=127.0.0.1:port={}",
            upstream.address.port()
        )),
        "{shown}"
    );
    assert!(shown.contains("/up  health"), "{shown}");
    let json = scratch.inspect_json("web.tap");
    let web = &json["services"]["children"][0];
    assert_eq!(web["fields"]["factory"]["resources"]["/"]["kind"], "static");

    // rtap set replaces the site: the data resource and a proxy path prefix are edits of it.
    let mut factory = web["fields"]["factory"].clone();
    factory["resources"]["/hello"] =
        serde_json::json!({"kind": "data", "data": "hi there\n", "content_type": "text/plain"});
    factory["resources"]["/api"]["path"] = serde_json::json!("/v2");
    scratch.rtap_ok(&["set", "web.tap", "web", &format!("factory={factory}")]);
    let bad = scratch.rtap(&[
        "set",
        "web.tap",
        "web",
        r#"factory={"type":"rtwisted.Site","resources":{"nope":{"kind":"health"}}}"#,
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("invalid mount path \"nope\""),
        "{}",
        text(&bad.stderr)
    );

    for file in ["web.tap", "web-shutdown.tap"] {
        let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", file]);
        let address = daemon.listening_address();
        assert_eq!(
            curl(&[], &url(address, "/hello.txt")).text(),
            "hello, web\n"
        );
        assert_eq!(curl(&[], &url(address, "/hello")).text(), "hi there\n");
        assert_eq!(curl(&[], &url(address, "/up")).status, 200);
        upstream.go.send(()).unwrap();
        assert_eq!(
            curl(&[], &url(address, "/api/x")).text(),
            "first half second half"
        );
        assert_eq!(
            upstream.seen.recv_timeout(DEADLINE).unwrap().line,
            "GET /v2/x HTTP/1.1"
        );
        daemon.signal(Signal::SIGTERM);
        let (status, _, _) = daemon.wait_exit();
        assert!(status.success(), "{file}: {status}");
    }
    let after = scratch.inspect_json("web-shutdown.tap");
    let resources = &after["services"]["children"][0]["fields"]["factory"]["resources"];
    assert_eq!(resources["/hello"]["data"], "hi there\n");
    assert_eq!(resources["/api"]["path"], "/v2");
}

#[test]
fn a_stop_closes_idle_keep_alive_connections_instead_of_waiting_for_them() {
    let scratch = Scratch::new();
    let (daemon, address) = serve(&scratch, &["--header-timeout", "60"]);
    let mut idle = TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut first = [0u8; 1024];
    assert!(idle.read(&mut first).unwrap() > 0);
    daemon.signal(Signal::SIGTERM);
    let mut rest = Vec::new();
    assert!(
        idle.read_to_end(&mut rest).is_ok(),
        "the idle connection was not closed"
    );
    let (status, lines, _) = daemon.wait_exit();
    assert!(status.success());
    assert!(
        !lines.iter().any(|line| line.contains("cut ")),
        "{lines:#?}"
    );
}

#[test]
fn ten_thousand_connections_are_all_served() {
    const CONNECTIONS: usize = 10_000;
    let scratch = Scratch::new();
    let root = site(&scratch);
    let mut daemon = scratch.spawn_rtwistd(&[
        "-n",
        "-o",
        "web",
        "--path",
        &root,
        "--no-access-log",
        "--header-timeout",
        "60",
        "--port",
        "tcp:0:interface=127.0.0.1:backlog=4096",
    ]);
    let address = daemon.listening_address();
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        streams.push(stream);
    }
    // Every connection is open at once; each asks, then each reads its answer.
    for stream in &mut streams {
        stream
            .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let mut served = 0;
    for stream in &mut streams {
        let mut reply = Vec::new();
        let mut buffer = [0u8; 512];
        while !reply.ends_with(b"hello, web\n") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(
                read > 0,
                "a connection was closed after {served} were served"
            );
            reply.extend_from_slice(&buffer[..read]);
        }
        served += 1;
    }
    assert_eq!(served, CONNECTIONS);
    drop(streams);
    assert_eq!(curl(&[], &url(address, "/hello.txt")).status, 200);
    daemon.signal(Signal::SIGTERM);
    let (status, _, _) = daemon.wait_exit();
    assert!(status.success());
}

#[test]
fn the_tac_example_builds_a_site_from_twisted_web_names() {
    let scratch = Scratch::new();
    let root = site(&scratch);
    let upstream = upstream::start();
    let api_port = upstream.address.port().to_string();
    let example = rtwisted_tests::repository_file("examples/tac/web.tac");
    let mut command = scratch.command("rtwistd");
    command
        .args(["-n", "-o", "-y"])
        .arg(&example)
        .env("WEB_ROOT", &root)
        .env("API_PORT", &api_port)
        .env("WEB_PORT", "0")
        .env("WEB_INTERFACE", "127.0.0.1");
    let mut daemon = scratch.spawn(&mut command);
    let address = daemon.listening_address();
    assert_eq!(
        curl(&[], &url(address, "/hello.txt")).text(),
        "hello, web\n"
    );
    assert_eq!(
        curl(&[], &url(address, "/hello")).text(),
        "hello from a TAC file\n"
    );
    assert_eq!(curl(&[], &url(address, "/healthz")).status, 200);
    upstream.go.send(()).unwrap();
    assert_eq!(
        curl(&[], &url(address, "/api/v1/x")).text(),
        "first half second half"
    );
    assert_eq!(
        upstream.seen.recv_timeout(DEADLINE).unwrap().line,
        "GET /v1/x HTTP/1.1"
    );
}

#[test]
fn tac_resources_refuse_what_twisted_would_not_mean() {
    let scratch = Scratch::new();
    for (program, needle) in [
        (
            "r = File('/x')\nSite(r)\nr.putChild(b'late', Health())\n",
            "call putChild before Site(root)",
        ),
        (
            "File('/x').putChild(b'a/b', Health())\n",
            "not one path segment",
        ),
        ("Site('/srv')\n", "the root must be a resource"),
        (
            "Site(Redirect('/x', code=200))\n",
            "301, 302, 303, 307 or 308",
        ),
    ] {
        std::fs::write(
            scratch.join("bad.tac"),
            format!("{program}application = Application('x')\n"),
        )
        .unwrap();
        let output = scratch.rtap(&["inspect", "bad.tac"]);
        assert!(!output.status.success(), "{program}");
        assert!(
            text(&output.stderr).contains(needle),
            "{program}: {}",
            text(&output.stderr)
        );
    }
}
