//! `rtap save` and `rtap inspect`, run as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use rtwisted_tests::{Scratch, fails_with, fails_with_one_line, foreign_snapshot, nodes, text};

#[test]
fn save_writes_echo_tap_in_the_current_folder_mode_0600() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["save", "echo", "--port", "tcp:7001"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("saved tap application 'echo' to echo.tap (sha256:"));
    let meta = std::fs::metadata(scratch.join("echo.tap")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn inspect_shows_the_header_and_the_tree() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001:interface=127.0.0.1"]);
    let output = scratch.rtap(&["inspect", "echo.tap"]);
    assert!(output.status.success());
    let shown = text(&output.stdout);
    assert!(shown.starts_with("snapshot  echo.tap ("), "{shown}");
    assert!(shown.contains("\napp       echo\n"), "{shown}");
    assert!(shown.contains("(verified)"), "{shown}");
    assert!(
        shown.contains("/  [rtwisted.MultiService]  stopped\n"),
        "{shown}"
    );
    assert!(
        shown
            .contains("└── echo  [rtwisted.StreamServer]  tcp:7001:interface=127.0.0.1  stopped\n"),
        "{shown}"
    );
}

#[test]
fn inspect_json_is_one_document_with_the_promised_keys() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001"]);
    let doc = scratch.inspect_json("echo.tap");
    for key in [
        "app",
        "style",
        "format_version",
        "created",
        "producer",
        "process",
        "services",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}: {doc}");
    }
    assert_eq!(doc["app"], "echo");
    assert_eq!(doc["style"], "tap");
    assert_eq!(doc["format_version"], 1);
    let root = &doc["services"];
    assert_eq!(root["path"], "/");
    assert_eq!(root["type"], "rtwisted.MultiService");
    let echo = &root["children"][0];
    assert_eq!(echo["path"], "echo");
    assert_eq!(echo["type"], "rtwisted.StreamServer");
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["running"], false);
    assert_eq!(echo["fields"]["endpoint"], "tcp:7001");
    assert_eq!(echo["fields"]["factory"]["type"], "rtwisted.Echo");
    assert!(echo.get("children").is_none(), "a leaf has no children key");
    for node in nodes(root) {
        for key in ["path", "type", "name", "running", "fields"] {
            assert!(node.get(key).is_some(), "node lacks {key}: {node}");
        }
    }
}

#[test]
fn output_appname_and_style_options() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["save", "echo", "--appname", "myecho", "--style", "tas"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("myecho.tas")).unwrap()).unwrap();
    assert_eq!(doc["app"], "myecho");
    assert_eq!(
        doc["application"]["services"]["children"][0]["endpoint"],
        "tcp:7001"
    );

    let output = scratch.rtap(&["save", "echo", "-o", "custom.snapshot"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(scratch.inspect_json("custom.snapshot")["style"], "tap");
}

#[test]
fn a_bad_endpoint_is_a_usage_error_naming_the_problem() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["save", "echo", "--port", "tcp:70000"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("invalid endpoint 'tcp:70000': port must be 0..65535, got 70000"),
        "{}",
        text(&output.stderr)
    );
    let output = scratch.rtap(&["save", "echo", "--port", "tpc:80"]);
    fails_with(&output, 2, "unknown endpoint type 'tpc'");
    assert!(!scratch.join("echo.tap").exists());
}

#[test]
fn an_unknown_plugin_or_command_is_a_usage_error() {
    let scratch = Scratch::new();
    assert_eq!(scratch.rtap(&["save", "nosuch"]).status.code(), Some(2));
    assert_eq!(scratch.rtap(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(scratch.rtap(&["inspect"]).status.code(), Some(2));
}

#[test]
fn inspect_of_bad_input_is_one_line_and_exit_1() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo"]);
    let good = std::fs::read(scratch.join("echo.tap")).unwrap();
    std::fs::write(scratch.join("truncated.tap"), &good[..good.len() / 2]).unwrap();
    let mut flipped = good.clone();
    let middle = good.len() / 2;
    flipped[middle] ^= 0x10;
    std::fs::write(scratch.join("flipped.tap"), &flipped).unwrap();
    std::fs::write(scratch.join("notes.txt"), "just some text\n").unwrap();
    std::fs::create_dir(scratch.join("folder.tap")).unwrap();

    let cases = [
        (
            "missing.tap",
            "cannot load snapshot 'missing.tap': no such file or directory",
        ),
        (
            "folder.tap",
            "cannot load snapshot 'folder.tap': it is a directory, not a file",
        ),
        (
            "notes.txt",
            "cannot load snapshot 'notes.txt': not an rtwisted snapshot (it has neither a tap nor a tas header)",
        ),
        (
            "truncated.tap",
            "cannot load snapshot 'truncated.tap': the file is truncated",
        ),
        (
            "flipped.tap",
            "cannot load snapshot 'flipped.tap': checksum mismatch",
        ),
    ];
    for (file, message) in cases {
        let output = scratch.rtap(&["inspect", file]);
        fails_with_one_line(&output, 1, &format!("rtap: error: {message}"));
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn inspect_shows_unknown_types_from_raw_data_with_a_warning() {
    let scratch = Scratch::new();
    foreign_snapshot(
        &scratch,
        "acme.tas",
        &[("rtwisted.StreamServer", "acme.Web")],
    );

    let output = scratch.rtap(&["inspect", "acme.tas"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("warning: this binary does not link acme.Web"));
    assert!(
        text(&output.stdout)
            .contains("└── echo  [acme.Web]  tcp:0:interface=127.0.0.1  stopped  (unknown type)"),
        "{}",
        text(&output.stdout)
    );
    let doc = scratch.inspect_json("acme.tas");
    assert_eq!(doc["unknown_types"], serde_json::json!(["acme.Web"]));
}
