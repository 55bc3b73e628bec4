//! `rtap restart`: the binary on disk takes over a running daemon's sockets and live state.
//! Under load no connection is refused and no acknowledged write is lost; a successor that
//! cannot start leaves the old process serving; an upgraded binary is what runs afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rtwisted_tests::{
    Scratch, eventually, exchange, exited, fails_with, memcache_get, read_pid, service_address,
    text, wait_for_log_line,
};
use serde_json::Value;

/// The tests here copy binaries and start processes: one at a time, so no fork of one test
/// holds a copy another just wrote ("Text file busy").
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A new scratch folder, and the turn to use it (held until the guard is dropped).
fn one_at_a_time() -> (MutexGuard<'static, ()>, Scratch) {
    let turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (turn, Scratch::new())
}

const APP: &str = r#"application = Application("app")
service("tcp:0:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
service("tcp:0:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
"#;

/// A daemon started from `program`; whatever process the pidfile names is killed at the end.
struct Running<'a> {
    scratch: &'a Scratch,
}

impl Running<'_> {
    fn pid(&self) -> i32 {
        read_pid(&self.scratch.join("app.pid"))
    }

    fn status(&self) -> Value {
        let output = self.scratch.rtap_ok(&["status", "app", "--json"]);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn address(&self, path: &str) -> SocketAddr {
        service_address(&self.status(), path)
    }

    /// `rtap restart app`; its output line, and the new PID (checked to differ).
    fn restart(&self) -> String {
        let old = self.pid();
        let output = self.scratch.rtap(&["restart", "app"]);
        assert!(
            output.status.success(),
            "rtap restart failed: {}",
            text(&output.stderr)
        );
        let line = text(&output.stdout);
        let new = self.pid();
        assert_ne!(old, new, "{line}");
        assert!(line.contains(&format!("PID {old} -> {new}")), "{line}");
        assert!(eventually(|| exited(old)), "the old rtwistd {old} stayed");
        line
    }

    fn stop(self) {
        let pid = self.pid();
        let output = self.scratch.rtap_ok(&["stop", "app"]);
        assert!(text(&output.stdout).contains("app-shutdown.tap"));
        assert!(eventually(|| exited(pid)));
        assert!(!self.scratch.join("app.pid").exists());
        std::mem::forget(self);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.scratch.join("app.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Saves [`APP`] and starts it as a daemon from `program`.
fn start<'a>(scratch: &'a Scratch, program: &Path) -> Running<'a> {
    std::fs::write(scratch.join("app.tac"), APP).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let output = scratch
        .command_at(program)
        .args(["-f", "app.tap", "--pidfile", "app.pid", "-l", "app.log"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_for_log_line(&scratch.join("app.log"), "waiting for SIGTERM");
    Running { scratch }
}

/// Copies `from` to `bin/rtwistd` in the scratch folder (by a rename, as package managers do,
/// so a running copy keeps its file).
fn install(scratch: &Scratch, from: &Path) -> PathBuf {
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let staged = bin.join(".rtwistd.new");
    std::fs::copy(from, &staged).unwrap();
    let installed = bin.join("rtwistd");
    std::fs::rename(&staged, &installed).unwrap();
    installed
}

/// Installs the workspace's rtwistd as `bin/rtwistd` and starts [`APP`] with it as a daemon.
fn start_installed(scratch: &Scratch) -> Running<'_> {
    start(
        scratch,
        &install(scratch, &rtwisted_tests::binary("rtwistd")),
    )
}

fn install_script(scratch: &Scratch, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let staged = scratch.join("bin/.rtwistd.new");
    std::fs::write(&staged, script).unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&staged, scratch.join("bin/rtwistd")).unwrap();
}

/// Whether process `pid` has a child (any of its threads' children).
fn has_child(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("children"))
            .is_ok_and(|children| !children.trim().is_empty())
    })
}

#[test]
fn a_successor_that_cannot_start_leaves_the_old_one_serving() {
    let (_one, scratch) = one_at_a_time();
    let daemon = start_installed(&scratch);
    let pid = daemon.pid();
    let echo = daemon.address("echo");
    install_script(&scratch, "#!/bin/sh\necho 'broken build' >&2\nexit 1\n");
    let output = scratch.rtap(&["restart", "app"]);
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("goes on serving"), "{error}");
    assert_eq!(daemon.pid(), pid);
    assert_eq!(daemon.status()["process"]["pid"], pid);
    assert_eq!(exchange(echo, b"still here"), b"still here");
    // Fixed, the same daemon restarts.
    install(&scratch, &rtwisted_tests::binary("rtwistd"));
    daemon.restart();
    assert_eq!(exchange(echo, b"new one"), b"new one");
    daemon.stop();
}

/// Installs the custom rtwistd example and starts it with `args` as a daemon; its PID.
fn start_custom(scratch: &Scratch, args: &[&str]) -> i32 {
    let program = install(scratch, &rtwisted_tests::example("custom_rtwistd"));
    let output = scratch
        .command_at(&program)
        .args(["--pidfile", "app.pid", "-l", "app.log"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_for_log_line(&scratch.join("app.log"), "waiting for SIGTERM");
    read_pid(&scratch.join("app.pid"))
}

/// `rtap stop` on `control`, which is process `pid`'s; returns once it exited.
fn stop_custom(scratch: &Scratch, control: &str, pid: i32) {
    scratch.rtap_ok(&["stop", "--control", control]);
    assert!(eventually(|| exited(pid)));
}

/// `rtap restart` on `control`, expected to fail; its one line of error.
fn failed_restart(scratch: &Scratch, control: &str) -> String {
    let output = scratch.rtap(&["restart", "--control", control]);
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("goes on serving"), "{error}");
    error
}

#[test]
fn a_successor_that_cannot_load_the_tree_says_why_and_the_old_one_serves() {
    let (_one, scratch) = one_at_a_time();
    // A snapshot with a service type only the custom rtwistd links.
    rtwisted_tests::foreign_snapshot(
        &scratch,
        "app.tas",
        &[
            (
                "\"manifest\": [",
                "\"manifest\": [\n    {\"type\": \"example.Sleeper\", \"kind\": \"service\", \"version\": 1},",
            ),
            (
                "\"children\": [",
                "\"children\": [\n        {\"type\": \"example.Sleeper\", \"name\": \"sleeper\", \"stop_seconds\": 0},",
            ),
        ],
    );
    let pid = start_custom(&scratch, &["-f", "app.tas"]);
    let log = scratch.join("app.log");
    let echo = rtwisted_tests::logged_address(&log);
    install(&scratch, &rtwisted_tests::binary("rtwistd"));
    let error = failed_restart(&scratch, "echo.ctl");
    assert!(error.contains("example.Sleeper"), "{error}");
    assert_eq!(read_pid(&scratch.join("app.pid")), pid);
    assert_eq!(exchange(echo, b"still here"), b"still here");
    stop_custom(&scratch, "echo.ctl", pid);
}

#[test]
fn a_successor_that_refuses_the_command_line_says_why_and_the_old_one_serves() {
    let (_one, scratch) = one_at_a_time();
    let pid = start_custom(&scratch, &["sleeper", "--stop-seconds", "0"]);
    // The plain rtwistd has no sleeper plugin: its usage error is what rtap shows.
    install(&scratch, &rtwisted_tests::binary("rtwistd"));
    let error = failed_restart(&scratch, "sleeper.ctl");
    assert!(error.contains("'sleeper'"), "{error}");
    assert!(!exited(pid));
    stop_custom(&scratch, "sleeper.ctl", pid);
}

#[test]
fn an_upgraded_binary_is_what_runs_after_the_restart() {
    let (_one, scratch) = one_at_a_time();
    let daemon = start_installed(&scratch);
    let kv = daemon.address("kv");
    rtwisted_tests::memcache_store(kv, "kept", "safe");
    // The upgrade: a new build is renamed over the file the daemon was started from.
    install(&scratch, &rtwisted_tests::example("custom_rtwistd"));
    let old_exe = std::fs::read_link(format!("/proc/{}/exe", daemon.pid())).unwrap();
    assert!(
        old_exe.to_string_lossy().ends_with("(deleted)"),
        "{old_exe:?}"
    );
    daemon.restart();
    let exe = std::fs::read_link(format!("/proc/{}/exe", daemon.pid())).unwrap();
    assert_eq!(exe, scratch.join("bin/rtwistd").canonicalize().unwrap());
    assert_eq!(memcache_get(kv, "kept").as_deref(), Some("safe"));
    daemon.stop();
}

#[test]
fn a_second_restart_while_one_is_under_way_is_refused() {
    let (_one, scratch) = one_at_a_time();
    let daemon = start_installed(&scratch);
    let pid = daemon.pid();
    // A successor that takes its time to start.
    install_script(
        &scratch,
        &format!(
            "#!/bin/sh\nsleep 1\nexec '{}' \"$@\"\n",
            rtwisted_tests::binary("rtwistd").display()
        ),
    );
    let first = std::thread::spawn({
        let path = scratch.path().to_owned();
        let rtap = rtwisted_tests::binary("rtap");
        move || {
            std::process::Command::new(rtap)
                .args(["restart", "app"])
                .current_dir(path)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        }
    });
    // The first one is under way once the slow successor runs.
    assert!(eventually(|| has_child(pid)));
    let output = scratch.rtap(&["restart", "app"]);
    fails_with(&output, 1, "already under way");
    let first = first.join().unwrap();
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_ne!(daemon.pid(), pid);
    daemon.stop();
}

#[test]
fn under_systemd_the_successor_becomes_the_main_pid_and_feeds_the_watchdog() {
    let (_one, scratch) = one_at_a_time();
    let notify = rtwisted_tests::NotifySocket::bind(&scratch);
    std::fs::write(scratch.join("app.tac"), APP).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let daemon = notify.spawn_rtwistd(&scratch, Some("100000"), &["-n", "-f", "app.tap"]);
    let old = daemon.pid();
    let next = || notify.next();
    assert_eq!(next(), "READY=1");
    let output = scratch.rtap_ok(&["restart", "app"]);
    let line = text(&output.stdout);
    let new: i32 = line
        .split(" -> ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|line: &String| line.starts_with("MAINPID="))
    {
        let line = next();
        if line != "WATCHDOG=1" && !line.starts_with("STATUS=") {
            seen.push(line);
        }
    }
    assert_eq!(seen, ["RELOADING=1".to_owned(), format!("MAINPID={new}")]);
    assert_eq!(next(), "READY=1");
    assert!(eventually(|| exited(old)), "the old rtwistd stayed");
    // Only the successor is left to keep the watchdog fed.
    let beats = (0..3)
        .map(|_| next())
        .filter(|line| line == "WATCHDOG=1")
        .count();
    assert!(beats >= 2, "the watchdog went hungry after the restart");
    let output = scratch.rtap_ok(&["stop", "app"]);
    assert!(text(&output.stdout).contains("app-shutdown.tap"));
    assert!(eventually(|| exited(new)));
}
