//! The end-to-end cycle: save, run, exchange bytes, signal, find the shutdown snapshot; and
//! every way a run can fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::signal::Signal;
use rtwisted_tests::{LOOPBACK, Scratch, exchange, fails_with, fails_with_one_line, nodes, text};

#[test]
fn save_run_echo_sigterm_then_the_shutdown_snapshot_has_nothing_running() {
    let scratch = Scratch::new();
    let (mut daemon, address) = scratch.serve_saved("echo", &[]);
    assert_ne!(address.port(), 0);
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    assert_eq!(exchange(address, &payload), payload);
    assert_eq!(
        exchange(address, b"second client\r\n"),
        b"second client\r\n"
    );

    let out = daemon.stop();
    assert!(
        out.iter()
            .any(|l| l.contains("Received SIGTERM, shutting down."))
    );
    assert!(
        out.iter()
            .any(|l| l.contains("Saving echo application to echo-shutdown.tap..."))
    );

    let doc = scratch.inspect_json("echo-shutdown.tap");
    assert_eq!(doc["app"], "echo");
    let all = nodes(&doc["services"]);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|node| node["running"] == false));
    assert_eq!(all[1]["fields"]["endpoint"], LOOPBACK);
    // The port is closed once rtwistd is gone.
    assert!(std::net::TcpStream::connect(address).is_err());
}

#[test]
fn sigint_stops_cleanly_and_no_save_writes_nothing() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "-f", "echo.tap"]);
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    daemon.signal(Signal::SIGINT);
    let (status, out, _) = daemon.wait_exit();
    assert_eq!(status.code(), Some(0));
    assert!(out.iter().any(|l| l.contains("Received SIGINT")));
    assert!(!scratch.join("echo-shutdown.tap").exists());
}

#[test]
fn a_source_snapshot_runs_and_saves_its_shutdown_in_the_same_style() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &["--style", "tas"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-s", "echo.tas"]);
    let address = daemon.listening_address();
    assert_eq!(exchange(address, b"tas"), b"tas");
    daemon.stop();
    assert_eq!(scratch.inspect_json("echo-shutdown.tas")["style"], "tas");
}

#[test]
fn a_plugin_runs_directly_and_saves_nothing_at_shutdown() {
    let scratch = Scratch::new();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "echo", "--port", LOOPBACK]);
    let address = daemon.listening_address();
    assert_eq!(exchange(address, b"from the plugin"), b"from the plugin");
    daemon.stop();
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn without_a_file_it_runs_rtwistd_tap() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &["-o", "rtwistd.tap"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o"]);
    daemon.wait_for_line("Loading rtwistd.tap...");
    daemon.listening_address();
    daemon.stop();
}

fn run_to_exit(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let output = scratch.command("rtwistd").args(args).output().unwrap();
    (output.status.code(), text(&output.stderr))
}

#[test]
fn a_busy_port_is_one_line_on_stderr_and_exit_1() {
    let scratch = Scratch::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let endpoint = format!("tcp:{port}:interface=127.0.0.1");
    scratch.rtap_ok(&["save", "echo", "--port", &endpoint]);
    let output = scratch.rtwistd(&["-n", "-f", "echo.tap"]);
    let start = format!(
        "rtwistd: error: service 'echo' failed to start: cannot listen on {endpoint} (127.0.0.1:{port}): "
    );
    fails_with_one_line(&output, 1, &start);
    assert!(!scratch.join("echo-shutdown.tap").exists());
}

#[test]
fn a_missing_or_bad_snapshot_is_one_line_and_exit_1() {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("junk.tap"), b"\x89RTWTAP\n\x00\x01").unwrap();
    let cases = [
        (
            vec!["-n", "-f", "missing.tap"],
            "rtwistd: error: cannot load snapshot 'missing.tap': no such file or directory",
        ),
        (
            vec!["-n", "-f", "junk.tap"],
            "rtwistd: error: cannot load snapshot 'junk.tap': the file is truncated",
        ),
        (
            vec!["-n"],
            "rtwistd: error: no snapshot given, and the default, 'rtwistd.tap', is not in this folder: give a snapshot with -f FILE",
        ),
    ];
    for (args, message) in cases {
        eprintln!("rtwistd {args:?}");
        fails_with_one_line(&scratch.rtwistd(&args), 1, message);
    }
}

#[test]
fn a_snapshot_with_unknown_types_names_them_all_and_starts_nothing() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &["--style", "tas"]);
    let original = std::fs::read_to_string(scratch.join("echo.tas")).unwrap();
    let foreign = original
        .replace("rtwisted.StreamServer", "acme.Web")
        .replace("rtwisted.Echo", "acme.Cache");
    std::fs::write(
        scratch.join("acme.tas"),
        rtwisted_tests::reseal_tas(&foreign),
    )
    .unwrap();
    let (code, stderr) = run_to_exit(&scratch, &["-n", "-f", "acme.tas"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim_end(),
        "rtwistd: error: cannot load snapshot 'acme.tas': unknown service types acme.Cache, acme.Web (this binary does not link the crates that define them)"
    );
}

#[test]
fn a_binary_snapshot_given_to_s_is_refused() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let output = scratch.rtwistd(&["-n", "-s", "echo.tap"]);
    let message = "'echo.tap' is a binary (tap) snapshot; run it with -f, not -s";
    fails_with(&output, 1, message);
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new();
    for args in [
        vec!["--bogus"],
        vec!["-n", "-f", "a.tap", "echo"],
        vec!["-n", "--stop-timeout", "soon"],
        vec!["-n", "echo", "--port", "tcp:99999"],
    ] {
        let (code, stderr) = run_to_exit(&scratch, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
    let output = scratch.rtwistd(&["-n", "-f", "a.tap", "echo"]);
    fails_with(
        &output,
        2,
        "give either a snapshot (-f/-s) or a plugin, not both",
    );
}

#[test]
fn help_lists_the_plugins() {
    let scratch = Scratch::new();
    let output = scratch.command("rtwistd").arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.contains("echo"), "{help}");
    assert!(help.contains("An RFC 862 echo server"), "{help}");
}

#[test]
fn classic_plugins_serve_over_tcp_and_udp() {
    let scratch = Scratch::new();
    let mut qotd = scratch.spawn_rtwistd(&[
        "-n", "qotd", "--port", LOOPBACK, "--quote", "Ship it.", "--quote", "Test it.",
    ]);
    let address = qotd.listening_address();
    let read_all = |address| {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::net::TcpStream::connect(address).unwrap(),
            &mut text,
        )
        .unwrap();
        text
    };
    assert_eq!(read_all(address), "Ship it.\r\n");
    assert_eq!(read_all(address), "Test it.\r\n");
    qotd.stop();

    let mut echo = scratch.spawn_rtwistd(&["-n", "echo", "--port", "udp:0:interface=127.0.0.1"]);
    let address = echo.listening_address();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(rtwisted_tests::DEADLINE))
        .unwrap();
    socket.send_to(b"ping over udp", address).unwrap();
    let mut buffer = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"ping over udp");
    echo.stop();
}

#[test]
fn portforward_counts_survive_in_the_shutdown_snapshot() {
    let scratch = Scratch::new();
    let mut backend = scratch.spawn_rtwistd(&["-n", "echo", "--port", LOOPBACK]);
    let backend_address = backend.listening_address();
    let dest = format!("tcp:host=127.0.0.1:port={}", backend_address.port());
    scratch.save_on_loopback("portforward", &["--dest", &dest]);
    let mut forward = scratch.spawn_rtwistd(&["-n", "-f", "portforward.tap"]);
    let address = forward.listening_address();
    assert_eq!(
        exchange(address, b"through the relay"),
        b"through the relay"
    );
    assert_eq!(exchange(address, b"again"), b"again");
    forward.stop();
    backend.stop();
    let doc = scratch.inspect_json("portforward-shutdown.tap");
    let counters = &doc["services"]["children"][0]["fields"]["factory"]["counters"];
    assert_eq!(
        counters,
        &serde_json::json!({"connections": 2, "bytes_in": 22, "bytes_out": 22})
    );
}

#[test]
fn a_bad_endpoint_kind_for_a_plugin_is_one_line() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&[
        "save",
        "portforward",
        "--port",
        "udp:9",
        "--dest",
        "tcp:a:1",
    ]);
    fails_with(
        &output,
        1,
        "portforward relays streams; udp:9 is a datagram endpoint",
    );
    let output = scratch.rtap(&["save", "portforward", "--dest", "tcp:host=a"]);
    fails_with(&output, 2, "tcp endpoint needs a port");
}

/// The PID in a "started NAME (pid N)" line.
fn logged_pid(line: &str) -> i32 {
    let pid = line.rsplit("(pid ").next().unwrap();
    pid.trim_end_matches(')').parse().unwrap()
}

#[test]
fn procmon_keeps_a_child_running_and_stops_it_with_the_daemon() {
    let scratch = Scratch::new();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "procmon", "--run", "napper:sleep 300"]);
    let line = daemon.wait_for_line("started napper (pid ");
    let pid = logged_pid(&line);
    assert!(!rtwisted_tests::exited(pid));
    // Killed from outside, it comes back.
    rtwisted_tests::send_signal(pid, Signal::SIGKILL);
    daemon.wait_for_line("restart");
    let restarted = daemon.wait_for_line("started napper (pid ");
    assert_ne!(restarted, line);
    daemon.stop();
    let new_pid = logged_pid(&restarted);
    assert!(rtwisted_tests::eventually(|| rtwisted_tests::exited(
        new_pid
    )));
}
