//! What a folder answers: files, HEAD, folders, ranges, conditional requests, keep-alive,
//! TLS with HTTP/2, UNIX sockets and the access log.

use super::client::{curl, raw, status_of, url, wait_for_file_line};
use super::*;

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
    for (header, status) in [
        (format!("If-None-Match: \"x\", W/{etag}"), 304),
        ("If-None-Match: \"other\"".to_owned(), 200),
        (format!("If-Modified-Since: {modified}"), 304),
        (
            "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT".to_owned(),
            200,
        ),
    ] {
        let reply = curl(&["-H", &header], &url(address, "/hello.txt"));
        assert_eq!(reply.status, status, "{header}");
    }
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
