//! Loads agree with inspect: what `rtap inspect` shows is what `rtwistd` runs, so a snapshot
//! either side would read differently (a map holding a key twice, a header naming another
//! application, process settings no daemon can apply) is refused by both, in the same words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{Scratch, foreign_snapshot, text};
use sha2::{Digest, Sha256};

/// `rtap inspect FILE` and `rtwistd -n -o -f FILE` both fail, saying `reason`.
fn both_refuse(scratch: &Scratch, file: &str, reason: &str) {
    for output in [
        scratch.rtap(&["inspect", file]),
        scratch.rtap(&["inspect", "--json", file]),
        scratch.rtwistd(&["-n", "-o", "-f", file]),
    ] {
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot load snapshot '{file}': ")) && stderr.contains(reason),
            "{stderr}"
        );
    }
}

#[test]
fn a_map_that_holds_a_key_twice_is_refused_in_both_styles() {
    let scratch = Scratch::new();
    foreign_snapshot(
        &scratch,
        "twice.tas",
        &[(
            "\"endpoint\": \"tcp:0:interface=127.0.0.1\"",
            "\"endpoint\": \"tcp:1\", \"endpoint\": \"tcp:2\"",
        )],
    );
    both_refuse(
        &scratch,
        "twice.tas",
        "the snapshot is damaged: a map holds the key 'endpoint' twice",
    );

    // The binary style: the process settings' `gid` key renamed `uid`, the checksum resealed.
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001", "-o", "plain.tap"]);
    let mut bytes = std::fs::read(scratch.join("plain.tap")).unwrap();
    let at = bytes.windows(4).position(|w| w == b"\xa3gid").unwrap();
    bytes[at + 1] = b'u';
    let body = bytes.len() - 32;
    let digest = Sha256::digest(&bytes[..body]);
    bytes[body..].copy_from_slice(&digest);
    std::fs::write(scratch.join("twice.tap"), bytes).unwrap();
    both_refuse(
        &scratch,
        "twice.tap",
        "the snapshot is damaged: a map holds the key 'uid' twice",
    );
}

/// Writes `file`, the echo snapshot with `from` replaced by `to` (resealed), and checks that
/// both loaders refuse it, saying `reason`.
fn an_edited_echo_is_refused(file: &str, from: &str, to: &str, reason: &str) {
    let scratch = Scratch::new();
    foreign_snapshot(&scratch, file, &[(from, to)]);
    both_refuse(&scratch, file, reason);
}

#[test]
fn a_header_naming_another_application_is_refused() {
    an_edited_echo_is_refused(
        "other.tas",
        "\"app\": \"echo\"",
        "\"app\": \"other\"",
        "its header names application 'other' but it holds 'echo'",
    );
}

#[test]
fn process_settings_no_daemon_can_apply_are_refused() {
    an_edited_echo_is_refused(
        "umask.tas",
        "\"umask\": null",
        "\"umask\": 4095",
        "invalid umask 0o7777: a umask is at most 0o777",
    );
}
