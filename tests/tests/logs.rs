//! rtwistd's log lines: how many (`-v`, `-q`, `--log-level`, `RTWISTD_LOG`, `RUST_LOG`), how
//! they look (JSON fields, colour), and a failure reported once in each place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};

use rtwisted_tests::{
    Daemon, LOOPBACK, Scratch, eventually, exchange, fails_with, free_port, text,
};

/// An echo daemon in the foreground with `args` (and `env`); one echo exchanged, then
/// stopped. Its stdout.
fn run_echo(scratch: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let port = free_port();
    let mut command = scratch.command("rtwistd");
    command.args(["-n", "--no-save"]).args(args);
    command.args(["echo", "--port", &format!("tcp:{port}:interface=127.0.0.1")]);
    for (key, value) in env {
        command.env(key, value);
    }
    let daemon: Daemon = scratch.spawn(&mut command);
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(|| TcpStream::connect(address).is_ok()));
    assert_eq!(exchange(address, b"hi"), b"hi");
    // The stop waits for open connections, so each one's line is written before it ends.
    daemon.stop()
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|line| line.contains(needle))
}

#[test]
fn verbose_shows_a_line_per_connection_and_quiet_hides_the_chatter() {
    let scratch = Scratch::new();
    let normal = run_echo(&scratch, &[], &[]);
    assert!(has(&normal, "starting up"));
    assert!(!has(&normal, "connection closed"), "{normal:?}");
    let verbose = run_echo(&scratch, &["-v"], &[]);
    assert!(has(&verbose, "connection closed"), "{verbose:?}");
    assert!(has(&verbose, "peer=127.0.0.1:"), "{verbose:?}");
    assert!(has(&verbose, "bytes_in=2"), "{verbose:?}");
    let quiet = run_echo(&scratch, &["-q"], &[]);
    assert!(!has(&quiet, "starting up"), "{quiet:?}");
}

#[test]
fn the_command_line_wins_over_rtwistd_log_which_wins_over_rust_log() {
    let scratch = Scratch::new();
    let from_rust_log = run_echo(&scratch, &[], &[("RUST_LOG", "debug")]);
    assert!(
        has(&from_rust_log, "connection closed"),
        "{from_rust_log:?}"
    );
    let ours_first = run_echo(
        &scratch,
        &[],
        &[("RUST_LOG", "debug"), ("RTWISTD_LOG", "info")],
    );
    assert!(!has(&ours_first, "connection closed"), "{ours_first:?}");
    let flag_first = run_echo(
        &scratch,
        &["--log-level", "warn"],
        &[("RTWISTD_LOG", "debug")],
    );
    assert!(!has(&flag_first, "starting up"), "{flag_first:?}");
}

#[test]
fn json_lines_carry_the_events_fields() {
    let scratch = Scratch::new();
    let lines = run_echo(&scratch, &["-v", "--log-format", "json"], &[]);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let closed = events
        .iter()
        // The readiness probe's connection carried nothing; the echo's carried "hi".
        .find(|event| {
            event["fields"]["message"] == "connection closed" && event["fields"]["bytes_in"] == 2
        })
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(closed["fields"]["bytes_out"], 2);
    assert!(
        closed["fields"]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(closed["level"], "DEBUG");
    let listening = events
        .iter()
        .find(|event| event["fields"]["address"].is_string())
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(listening["fields"]["service"].is_string(), "{listening}");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let scratch = Scratch::new();
    // The tests' stdout is a pipe: no colour unless asked for.
    assert!(!run_echo(&scratch, &[], &[]).concat().contains('\u{1b}'));
    assert!(
        run_echo(&scratch, &["--color", "always"], &[])
            .concat()
            .contains('\u{1b}')
    );
    let never = run_echo(&scratch, &["--color", "never"], &[("NO_COLOR", "1")]);
    assert!(!never.concat().contains('\u{1b}'));
}

#[test]
fn a_log_level_that_is_not_one_is_a_usage_error() {
    let scratch = Scratch::new();
    let output = scratch.rtwistd(&["-n", "--log-level", "verbose", "echo", "--port", LOOPBACK]);
    fails_with(&output, 2, "--log-level 'verbose' is not a level");
    let both = scratch.rtwistd(&["-n", "-v", "-q", "echo", "--port", LOOPBACK]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
}

#[test]
fn in_the_foreground_a_failure_is_printed_once() {
    let scratch = Scratch::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let output = scratch.rtwistd(&[
        "-n",
        "echo",
        "--port",
        &format!("tcp:{port}:interface=127.0.0.1"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let everything = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert_eq!(everything.matches("in use").count(), 1, "{everything}");
}

#[test]
fn a_load_error_is_in_the_log_file_too() {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("broken.tap"), b"not a snapshot").unwrap();
    let output = scratch.rtwistd(&["-n", "-f", "broken.tap", "-l", "app.log"]);
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert_eq!(error.lines().count(), 1, "{error}");
    let log = std::fs::read_to_string(scratch.join("app.log")).unwrap();
    let logged = log
        .lines()
        .find(|line| line.contains("ERROR"))
        .unwrap_or_else(|| panic!("{log}"));
    let reason = error.trim().trim_start_matches("rtwistd: error: ");
    assert!(logged.ends_with(reason), "{logged} / {reason}");
}
