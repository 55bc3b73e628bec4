//! The library entry points behave like the binaries (and make `cargo test` build them, which
//! the black-box tests in `tests/` run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

#[test]
fn rtap_run_returns_exit_codes() {
    assert_eq!(
        rtwisted_cli::rtap::run(["rtap", "--version"]),
        ExitCode::from(0)
    );
    assert_eq!(
        rtwisted_cli::rtap::run(["rtap", "nonsense"]),
        ExitCode::from(2)
    );
    assert_eq!(
        rtwisted_cli::rtap::run(["rtap", "inspect", "/nonexistent/x.tap"]),
        ExitCode::from(1)
    );
}

#[test]
fn the_binaries_are_built_for_the_black_box_tests() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtap"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("rtap "));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtwistd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("rtwistd "));
}
