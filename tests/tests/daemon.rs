//! rtwistd as a daemon: the status pipe, the pidfile and its lock, signals, logs, umask,
//! privileges, chroot and systemd notification, all with the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;

use nix::sys::signal::Signal;
use rtwisted_tests::{
    DEADLINE, LOOPBACK, NotifySocket, Scratch, eventually, exchange, exited, fails_with,
    fails_with_one_line, logged_address, nobody_when_root, read_pid, root_or_skip, send_signal,
    text, wait_for_log_line,
};

/// Starts a daemon with `args` and returns its PID (from the pidfile).
fn start_daemon(scratch: &Scratch, args: &[&str]) -> i32 {
    let output = scratch.rtwistd(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    read_pid(&scratch.join("rtwistd.pid"))
}

fn stop_daemon(pid: i32) {
    send_signal(pid, Signal::SIGTERM);
    assert!(eventually(|| exited(pid)), "the daemon did not exit");
}

#[test]
fn a_daemon_starts_returns_0_serves_and_sigterm_leaves_a_snapshot_and_no_pidfile() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let pid = start_daemon(&scratch, &["-f", "echo.tap"]);
    assert!(!exited(pid), "the pidfile names a dead process");
    assert_ne!(pid as u32, std::process::id());
    let address = logged_address(&scratch.join("rtwistd.log"));
    assert_eq!(exchange(address, b"daemon echo"), b"daemon echo");

    stop_daemon(pid);
    assert!(
        eventually(|| !scratch.join("rtwistd.pid").exists()),
        "pidfile left behind"
    );
    let doc = scratch.inspect_json("echo-shutdown.tap");
    assert_eq!(doc["services"]["children"][0]["running"], false);
    let log = std::fs::read_to_string(scratch.join("rtwistd.log")).unwrap();
    assert!(
        log.contains("started echo [rtwisted.StreamServer] in"),
        "{log}"
    );
    assert!(
        log.contains("stopped echo [rtwisted.StreamServer] in"),
        "{log}"
    );
    assert!(log.contains("Server Shut Down."), "{log}");
}

#[test]
fn a_busy_port_reaches_the_launching_shell_and_leaves_no_pidfile() {
    let scratch = Scratch::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    scratch.rtap_ok(&[
        "save",
        "echo",
        "--port",
        &format!("tcp:{port}:interface=127.0.0.1"),
    ]);
    let output = scratch.rtwistd(&["-f", "echo.tap"]);
    let start = "rtwistd: error: service 'echo' failed to start: cannot listen on";
    fails_with_one_line(&output, 1, start);
    assert!(eventually(|| !scratch.join("rtwistd.pid").exists()));
}

#[test]
fn a_live_pidfile_refuses_a_second_daemon() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let pid = start_daemon(&scratch, &["-f", "echo.tap"]);
    let output = scratch.rtwistd(&["-f", "echo.tap"]);
    fails_with(
        &output,
        1,
        &format!("another rtwistd is running, PID {pid}"),
    );
    assert_eq!(read_pid(&scratch.join("rtwistd.pid")), pid);
    stop_daemon(pid);
}

#[test]
fn a_stale_pidfile_is_taken_over_even_when_its_pid_was_recycled() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    // The PID of a live, unrelated process (this test), as after a crash and PID reuse.
    std::fs::write(
        scratch.join("rtwistd.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let pid = start_daemon(&scratch, &["-f", "echo.tap"]);
    assert_ne!(pid as u32, std::process::id());
    wait_for_log_line(&scratch.join("rtwistd.log"), "Took over stale pidfile");
    stop_daemon(pid);
}

#[test]
fn no_save_leaves_no_shutdown_snapshot_and_rundir_holds_it_otherwise() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let pid = start_daemon(&scratch, &["-o", "-f", "echo.tap"]);
    stop_daemon(pid);
    assert!(!scratch.join("echo-shutdown.tap").exists());

    std::fs::create_dir(scratch.join("run")).unwrap();
    let pid = start_daemon(&scratch, &["-f", "echo.tap", "-d", "run"]);
    stop_daemon(pid);
    assert!(eventually(|| scratch
        .join("run/echo-shutdown.tap")
        .exists()));
}

#[test]
fn a_second_signal_forces_exit_while_a_service_hangs_in_stop() {
    let scratch = Scratch::new();
    let program = rtwisted_tests::example("custom_rtwistd");
    let mut daemon = scratch.spawn(scratch.command_at(&program).args([
        "-n",
        "--stop-timeout",
        "3600",
        "sleeper",
        "--stop-seconds",
        "3600",
    ]));
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for_line("Received SIGTERM, shutting down.");
    // Not a readiness wait: signals closer than 50 ms to the first are the same request, so
    // the second one must come later than that to force the exit.
    std::thread::sleep(std::time::Duration::from_millis(100));
    daemon.signal(Signal::SIGINT);
    daemon.wait_failure(1, "second signal: exiting at once");
}

#[test]
fn sigusr1_after_logrotate_moved_the_file_makes_a_new_one_with_the_umask() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let pid = start_daemon(&scratch, &["-o", "-f", "echo.tap", "--umask", "027"]);
    let log = scratch.join("rtwistd.log");
    wait_for_log_line(&log, "waiting for SIGTERM");
    std::fs::rename(&log, scratch.join("rtwistd.log.old")).unwrap();
    send_signal(pid, Signal::SIGUSR1);
    wait_for_log_line(&log, "reopened the log file");
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "umask 027 applies to files the daemon creates");
    send_signal(pid, Signal::SIGHUP);
    wait_for_log_line(&log, "Received SIGHUP, reopened the log file.");
    assert!(!exited(pid));
    stop_daemon(pid);
}

#[test]
fn sighup_and_sigusr1_never_kill_a_foreground_run() {
    let scratch = Scratch::new();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "echo", "--port", LOOPBACK]);
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_line("Received SIGHUP; not logging to a file");
    daemon.signal(Signal::SIGUSR1);
    daemon.wait_for_line("Received SIGUSR1; not logging to a file");
    daemon.stop();
}

#[test]
fn the_log_file_rotates_by_size_and_keeps_a_bounded_number() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let pid = start_daemon(
        &scratch,
        &[
            "-o",
            "-f",
            "echo.tap",
            "--log-max-size",
            "200",
            "--log-keep",
            "2",
        ],
    );
    wait_for_log_line(&scratch.join("rtwistd.log"), "waiting for SIGTERM");
    stop_daemon(pid);
    assert!(scratch.join("rtwistd.log.1").exists());
    assert!(scratch.join("rtwistd.log.2").exists());
    assert!(
        !scratch.join("rtwistd.log.3").exists(),
        "more than --log-keep files"
    );
    for name in ["rtwistd.log.1", "rtwistd.log.2"] {
        let size = std::fs::metadata(scratch.join(name)).unwrap().len();
        assert!(size <= 400, "{name} is {size} bytes");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let scratch = Scratch::new();
    let mut daemon =
        scratch.spawn_rtwistd(&["-n", "--log-format", "json", "echo", "--port", LOOPBACK]);
    let line = daemon.wait_for_line("listening on");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "INFO");
    assert!(
        event["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("listening on 127.0.0.1:")
    );
    daemon.stop();
}

#[test]
fn syslog_gets_each_line_with_the_prefix() {
    let scratch = Scratch::new();
    let socket_path = scratch.join("log.sock");
    let syslog = UnixDatagram::bind(&socket_path).unwrap();
    syslog.set_read_timeout(Some(DEADLINE)).unwrap();
    let daemon = scratch.spawn(
        scratch
            .command("rtwistd")
            .env("RTWISTD_SYSLOG_SOCKET", &socket_path)
            .args([
                "-n", "--syslog", "--prefix", "echod", "echo", "--port", LOOPBACK,
            ]),
    );
    let mut buffer = [0u8; 2048];
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("waiting for SIGTERM"))
    {
        let n = syslog.recv(&mut buffer).unwrap();
        lines.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    let prefix = format!("<30>echod[{}]: ", daemon.pid());
    assert!(lines.iter().all(|l| l.starts_with(&prefix)), "{lines:#?}");
    daemon.stop();
}

#[test]
fn notify_socket_gets_ready_then_stopping() {
    let scratch = Scratch::new();
    let notify = NotifySocket::bind(&scratch);
    let daemon = notify.spawn_rtwistd(&scratch, None, &["-n", "echo", "--port", LOOPBACK]);
    assert_eq!(notify.next(), "READY=1");
    assert_eq!(notify.next(), "STATUS=1 service running; no checkpoint yet");
    daemon.signal(Signal::SIGTERM);
    assert_eq!(notify.next(), "STOPPING=1");
    assert_eq!(daemon.wait_exit().0.code(), Some(0));
}

#[test]
fn a_daemon_refuses_to_log_to_stdout() {
    let scratch = Scratch::new();
    let output = scratch.rtwistd(&["-l", "-", "echo"]);
    fails_with(&output, 2, "a daemon cannot log to stdout");
}

#[test]
fn running_as_root_with_u_nobody_drops_privileges_after_binding() {
    let Some(nobody) = nobody_when_root("dropping privileges") else {
        return;
    };
    let scratch = Scratch::new();
    // nobody must be able to remove its pidfile from this folder at exit.
    let run = scratch.join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    scratch.save_on_loopback("echo", &[]);
    let output = scratch.rtwistd(&[
        "-o",
        "-f",
        "echo.tap",
        "-u",
        "nobody",
        "--pidfile",
        "run/rtwistd.pid",
        "-l",
        "run/log",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let pid = read_pid(&run.join("rtwistd.pid"));
    let address = logged_address(&run.join("log"));
    assert_eq!(exchange(address, b"as nobody"), b"as nobody");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let expected = nobody.uid.as_raw().to_string();
    assert!(
        uids.split_whitespace().skip(1).all(|id| id == expected),
        "{uids}"
    );
    let gids = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert!(
        gids.split_whitespace()
            .skip(1)
            .all(|id| id == nobody.gid.as_raw().to_string()),
        "{gids}"
    );
    stop_daemon(pid);
    assert!(eventually(|| !run.join("rtwistd.pid").exists()));
}

#[test]
fn chroot_runs_inside_the_folder_and_saves_there() {
    if !root_or_skip("chroot") {
        return;
    }
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    let jail = scratch.join("jail");
    std::fs::create_dir(&jail).unwrap();
    let pid = start_daemon(&scratch, &["-f", "echo.tap", "--chroot", "jail"]);
    let address = logged_address(&scratch.join("rtwistd.log"));
    assert_eq!(exchange(address, b"jailed"), b"jailed");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, jail.canonicalize().unwrap());
    stop_daemon(pid);
    assert!(eventually(|| jail.join("echo-shutdown.tap").exists()));
    wait_for_log_line(&scratch.join("rtwistd.log"), "Server Shut Down.");
}

/// Runs `rtwistd -n -o -f echo.tap` with `fd` as its first socket-activated descriptor, as
/// systemd would, and returns the running daemon.
fn socket_activated(scratch: &Scratch, fd: std::os::fd::RawFd) -> rtwisted_tests::Daemon {
    rtwisted_tests::socket_activated(scratch, &[fd], None, &["-n", "-o", "-f", "echo.tap"])
}

#[test]
fn a_systemd_socket_is_adopted_served_and_closed_not_shut_down() {
    use std::os::fd::AsRawFd;

    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "systemd:domain=INET:index=0"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut daemon = socket_activated(&scratch, listener.as_raw_fd());
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    assert_eq!(exchange(address, b"socket activated"), b"socket activated");
    daemon.stop();
    // Closed, not shut down: the socket still accepts for the next start.
    let client = std::net::TcpStream::connect(address);
    assert!(client.is_ok(), "the adopted socket was shut down");
    drop(listener);
}

#[test]
fn a_systemd_unix_socket_is_adopted_and_its_file_left_to_systemd() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "systemd:domain=UNIX:index=0"]);
    let path = scratch.join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut daemon = socket_activated(&scratch, listener.as_raw_fd());
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream.write_all(b"unix activated").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"unix activated");
    daemon.stop();
    assert!(path.exists(), "rtwistd removed systemd's socket file");

    // The wrong family is refused, naming what it is.
    scratch.rtap_ok(&[
        "save",
        "echo",
        "--port",
        "systemd:domain=INET:index=0",
        "--force",
    ]);
    let daemon = socket_activated(&scratch, listener.as_raw_fd());
    daemon.wait_failure(
        1,
        "the systemd socket at index 0 is not an INET (IPv4) socket",
    );
}

#[test]
fn a_systemd_endpoint_without_activation_says_what_is_missing() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "systemd:domain=INET:index=0"]);
    let output = scratch.rtwistd(&["-n", "-o", "-f", "echo.tap"]);
    fails_with(&output, 1, "systemd passed no socket at index 0 (0 passed;");
}
