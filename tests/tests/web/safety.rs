//! What the web refuses and survives: ways out of the folder, oversized heads, slow clients,
//! a stop with idle connections, and 10,000 connections at once.

use super::client::{curl, get, raw, status_of, url};
use super::*;

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
    daemon.stop();
}
