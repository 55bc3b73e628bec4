//! Edits say what they change: dotted field paths, `rtap get`, every change printed as
//! `old -> new`, stored data never dropped without `--force`, and `rtap save` never
//! overwriting a snapshot unasked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{Scratch, fails_with, memcache_request, text};

#[test]
fn a_dotted_field_is_set_and_read_back_and_the_change_is_printed() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let output = scratch.rtap_ok(&["set", "kv.tap", "kv", "factory.max_value_bytes=4096"]);
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("wrote kv.tap (sha256:"), "{stdout}");
    assert_eq!(
        lines[1..],
        ["~ kv  factory.max_value_bytes: 1048576 -> 4096"]
    );
    let output = scratch.rtap_ok(&["get", "kv.tap", "kv", "factory.max_value_bytes"]);
    assert_eq!(text(&output.stdout), "4096\n");
    let output = scratch.rtap_ok(&["get", "kv.tap", "kv"]);
    let service: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(service["type"], "rtwisted.StreamServer");
    assert_eq!(service["factory"]["table"]["items"], serde_json::json!([]));

    let output = scratch.rtap(&["get", "kv.tap", "kv", "factory.nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "rtap: error: service 'kv': no field 'factory.nope' (the fields there are: type, max_value_bytes, table)\n"
    );
    let output = scratch.rtap(&["set", "kv.tap", "kv", "factory.max_value=1"]);
    fails_with(
        &output,
        1,
        "service 'kv': no field 'factory.max_value' here",
    );
}

#[test]
fn process_settings_names_and_services_print_old_and_new() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let output = scratch.rtap_ok(&["set", "kv.tap", "--uid", "12", "--umask", "027"]);
    assert_eq!(
        text(&output.stdout).lines().skip(1).collect::<Vec<_>>(),
        [
            "~ process  uid: (none) -> 12",
            "~ process  umask: (none) -> \"0027\""
        ]
    );
    let output = scratch.rtap_ok(&["rename", "kv.tap", "kv", "cache"]);
    assert_eq!(
        text(&output.stdout).lines().nth(1),
        Some("~ kv  name: \"kv\" -> \"cache\"")
    );
    let output = scratch.rtap_ok(&["add", "kv.tap", "echo", "--port", "tcp:7020"]);
    assert_eq!(
        text(&output.stdout).lines().nth(1),
        Some("+ echo  [rtwisted.StreamServer]")
    );
    let output = scratch.rtap_ok(&["remove", "kv.tap", "echo"]);
    assert_eq!(
        text(&output.stdout).lines().nth(1),
        Some("- echo  [rtwisted.StreamServer]")
    );
}

#[test]
fn an_edit_that_drops_stored_items_says_how_many_and_needs_force() {
    let scratch = Scratch::new();
    let (daemon, address) = scratch.serve_saved("kv", &[]);
    for key in ["a", "b", "c"] {
        assert_eq!(
            memcache_request(address, format!("set {key} 0 0 4\r\nitem\r\n").as_bytes()),
            "STORED\r\n"
        );
    }
    daemon.stop();
    let before = std::fs::read(scratch.join("kv-shutdown.tap")).unwrap();
    let loss = "this edit removes stored data: 3 items (15 B) of kv";
    for args in [
        vec![
            "set",
            "kv-shutdown.tap",
            "kv",
            r#"factory={"type": "rtwisted.Kv"}"#,
        ],
        vec!["set", "kv-shutdown.tap", "kv", "factory.table.items=[]"],
        vec!["remove", "kv-shutdown.tap", "kv"],
    ] {
        let output = scratch.rtap(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&output.stderr),
            format!("rtap: error: {loss}; nothing was written (give --force to make it anyway)\n"),
            "{args:?}"
        );
        assert_eq!(
            std::fs::read(scratch.join("kv-shutdown.tap")).unwrap(),
            before
        );
    }
    // A change of configuration keeps the items and needs no force.
    scratch.rtap_ok(&["set", "kv-shutdown.tap", "kv", "factory.max_value_bytes=64"]);
    let output = scratch.rtap_ok(&["remove", "kv-shutdown.tap", "kv", "--force"]);
    assert!(
        text(&output.stderr).contains(loss),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn save_refuses_to_overwrite_a_snapshot_unless_forced() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001"]);
    let before = std::fs::read(scratch.join("echo.tap")).unwrap();
    let output = scratch.rtap(&["save", "echo", "--port", "tcp:7002"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "rtap: error: echo.tap exists: nothing was saved; give --force to overwrite it, --append to add the service to it, or -o another file\n"
    );
    assert_eq!(std::fs::read(scratch.join("echo.tap")).unwrap(), before);
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7002", "--force"]);
    assert_eq!(
        scratch.inspect_json("echo.tap")["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7002"
    );
}

#[test]
fn an_interactive_edit_never_reverts_a_change_saved_while_the_editor_was_open() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001", "-o", "app.tap"]);
    // The "editor" changes the endpoint in the scratch copy, and meanwhile another rtap sets
    // the process name in the file itself.
    let editor = scratch.join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nsed -i 's/tcp:7001/tcp:7002/' \"$1\"\n\"{}\" set app.tap --procname meanwhile >/dev/null\n",
            rtwisted_tests::binary("rtap").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = scratch
        .command("rtap")
        .args(["edit", "app.tap"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(
            "rtap: error: app.tap changed while it was being edited (another save or edit landed); nothing was written; your edit is kept in "
        ),
        "{stderr}"
    );
    let kept = stderr.trim_end().rsplit(' ').next().unwrap();
    assert!(std::fs::read_to_string(kept).unwrap().contains("tcp:7002"));
    // The change made meanwhile is there; the edit was not written over it.
    let doc = scratch.inspect_json("app.tap");
    assert_eq!(doc["process"]["process_name"], "meanwhile");
    assert_eq!(
        doc["services"]["children"][0]["fields"]["endpoint"],
        "tcp:7001"
    );
}
