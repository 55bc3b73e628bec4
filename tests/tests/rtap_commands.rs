//! rtap's scriptable edits, `edit` with a scripted `$EDITOR`, `convert`, `plugins`, and the
//! generated completions and man page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};

use rtwisted_tests::{Scratch, fails_with, fails_with_one_line, nodes, text};

fn echo_snapshot(scratch: &Scratch, file: &str) {
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001", "-o", file]);
}

fn children(scratch: &Scratch, file: &str) -> Vec<(String, String)> {
    let doc = scratch.inspect_json(file);
    nodes(&doc["services"])[1..]
        .iter()
        .map(|node| {
            (
                node["path"].as_str().unwrap().to_owned(),
                node["fields"]["endpoint"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn fails_and_leaves_file(scratch: &Scratch, file: &str, args: &[&str], message: &str) {
    let before = std::fs::read(scratch.join(file)).unwrap();
    let output = scratch.rtap(args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?}: {}",
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read(scratch.join(file)).unwrap(),
        before,
        "{args:?} changed the file"
    );
}

/// A usage error: exit status 2, the reason in clap's words, and the file untouched.
fn usage_error_leaves_file(scratch: &Scratch, file: &str, args: &[&str], message: &str) {
    let before = std::fs::read(scratch.join(file)).unwrap();
    let output = scratch.rtap(args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {message}")),
        "{args:?}: {stderr}"
    );
    assert_eq!(
        std::fs::read(scratch.join(file)).unwrap(),
        before,
        "{args:?} changed the file"
    );
}

#[test]
fn set_changes_a_field_and_validates_it() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    scratch.rtap_ok(&[
        "set",
        "app.tap",
        "echo",
        "endpoint=tcp:7002:interface=127.0.0.1",
    ]);
    assert_eq!(
        children(&scratch, "app.tap"),
        [("echo".into(), "tcp:7002:interface=127.0.0.1".into())]
    );
    let mode = std::fs::metadata(scratch.join("app.tap"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "echo", "endpoint=tcp:99999"],
        "the change is not valid: invalid endpoint 'tcp:99999': port must be 0..65535, got 99999",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "echo", "endpont=tcp:1"],
        "service 'echo' has no field 'endpont' (its fields: endpoint, factory)",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "echo", "type=x"],
        "'type' cannot be set",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "web", "endpoint=tcp:1"],
        "no service at 'web'",
    );
    usage_error_leaves_file(&scratch, "app.tap", &["set", "app.tap"], "nothing to set");
    usage_error_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "echo"],
        "nothing to set on 'echo': give FIELD=VALUE after the path",
    );
    usage_error_leaves_file(
        &scratch,
        "app.tap",
        &["set", "app.tap", "echo", "endpoint"],
        "'endpoint' is not FIELD=VALUE",
    );
}

#[test]
fn set_changes_process_settings_and_the_app_name() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    scratch.rtap_ok(&[
        "set",
        "app.tap",
        "--uid",
        "1234",
        "--gid",
        "0",
        "--umask",
        "027",
        "--procname",
        "echod",
        "--appname",
        "renamed",
    ]);
    let doc = scratch.inspect_json("app.tap");
    assert_eq!(doc["app"], "renamed");
    assert_eq!(doc["process"]["uid"], 1234);
    assert_eq!(doc["process"]["gid"], 0);
    assert_eq!(doc["process"]["umask"], 0o027);
    assert_eq!(doc["process"]["process_name"], "echod");
    let output = scratch.rtap(&["set", "app.tap", "--uid", "no-such-user-here"]);
    fails_with(&output, 2, "no user named 'no-such-user-here'");
}

#[test]
fn remove_rename_and_add_edit_the_tree() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    scratch.rtap_ok(&["rename", "app.tap", "echo", "first"]);
    scratch.rtap_ok(&["add", "app.tap", "echo", "--port", "tcp:7003"]);
    assert_eq!(
        children(&scratch, "app.tap"),
        [
            ("first".into(), "tcp:7001".into()),
            ("echo".into(), "tcp:7003".into())
        ]
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["add", "app.tap", "echo"],
        "cannot have two services with the same name 'echo'",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["rename", "app.tap", "first", "echo"],
        "same name 'echo'",
    );
    usage_error_leaves_file(
        &scratch,
        "app.tap",
        &["rename", "app.tap", "first", "#1"],
        "invalid service name '#1'",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["add", "app.tap", "--parent", "first", "echo"],
        "service 'first' is not a collection",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["remove", "app.tap", "nope"],
        "no service at 'nope'",
    );
    fails_and_leaves_file(
        &scratch,
        "app.tap",
        &["remove", "app.tap", "/"],
        "the root '/' cannot be removed",
    );

    scratch.rtap_ok(&["remove", "app.tap", "#0"]);
    assert_eq!(
        children(&scratch, "app.tap"),
        [("echo".into(), "tcp:7003".into())]
    );
}

#[test]
fn save_append_adds_to_an_existing_snapshot_or_makes_a_new_one() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--append", "both.tas"]);
    assert_eq!(scratch.inspect_json("both.tas")["style"], "tas");
    scratch.rtap_ok(&["rename", "both.tas", "echo", "one"]);
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7009", "--append", "both.tas"]);
    assert_eq!(
        children(&scratch, "both.tas"),
        [
            ("one".into(), "tcp:7001".into()),
            ("echo".into(), "tcp:7009".into())
        ]
    );
    fails_and_leaves_file(
        &scratch,
        "both.tas",
        &["save", "echo", "--append", "both.tas"],
        "cannot append to both.tas: cannot have two services with the same name 'echo'; the file is unchanged",
    );
}

#[test]
fn convert_changes_the_style_and_keeps_the_tree() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    scratch.rtap_ok(&["convert", "app.tap", "app.tas"]);
    scratch.rtap_ok(&["convert", "app.tas", "back.snapshot", "--style", "tap"]);
    let original = scratch.inspect_json("app.tap");
    let source = scratch.inspect_json("app.tas");
    let back = scratch.inspect_json("back.snapshot");
    assert_eq!(source["style"], "tas");
    assert_eq!(back["style"], "tap");
    assert_eq!(source["services"], original["services"]);
    assert_eq!(back["services"], original["services"]);
    let output = scratch.rtap(&["convert", "app.tap", "app.bin"]);
    fails_with(
        &output,
        2,
        "cannot tell the style of 'app.bin' from its extension",
    );
}

#[test]
fn inspect_path_shows_one_subtree() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    let output = scratch.rtap_ok(&["inspect", "app.tap", "--json", "--path", "echo"]);
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["services"]["path"], "echo");
    let output = scratch.rtap(&["inspect", "app.tap", "--path", "web/http"]);
    fails_with(&output, 1, "no service at 'web/http' in app.tap");
}

#[test]
fn plugins_lists_each_plugin_with_its_options() {
    let scratch = Scratch::new();
    let output = scratch.rtap_ok(&["plugins"]);
    let listing = text(&output.stdout);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "chargen",
            "daytime",
            "discard",
            "echo",
            "kv",
            "portforward",
            "procmon",
            "qotd",
            "time",
            "web"
        ]
    );
    assert!(
        listing.contains("\necho          An RFC 862 echo server"),
        "{listing}"
    );
    let output = scratch.rtap_ok(&["plugins", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let echo = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "echo")
        .unwrap();
    assert_eq!(echo["options"][0]["long"], "--port");
    assert_eq!(echo["options"][0]["default"], "tcp:7001");
}

#[test]
fn completions_and_man_pages_are_generated() {
    let scratch = Scratch::new();
    let bash = text(&scratch.rtap_ok(&["completions", "bash"]).stdout);
    assert!(
        bash.contains("_rtap()") && bash.contains("inspect"),
        "{bash}"
    );
    let zsh = text(
        &scratch
            .rtap_ok(&["completions", "zsh", "--for", "rtwistd"])
            .stdout,
    );
    assert!(zsh.contains("#compdef rtwistd"), "{zsh}");
    let man = text(&scratch.rtap_ok(&["man"]).stdout);
    assert!(man.contains(".TH rtap 1"), "{man}");
    assert_eq!(
        scratch.rtap(&["completions", "tcsh"]).status.code(),
        Some(2)
    );
}

fn editor_script(scratch: &Scratch, name: &str, body: &str) -> String {
    let path = scratch.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn edit(scratch: &Scratch, editor_var: &str, editor: &str, answers: &str) -> Output {
    let mut child = scratch
        .command("rtap")
        .args(["edit", "app.tap"])
        .env_remove("EDITOR")
        .env_remove("VISUAL")
        .env(editor_var, editor)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn edit_writes_a_valid_change() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    let editor = editor_script(&scratch, "ed.sh", r#"sed -i 's/tcp:7001/tcp:7005/' "$1""#);
    let output = edit(&scratch, "EDITOR", &editor, "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("wrote app.tap (sha256:"));
    assert_eq!(
        children(&scratch, "app.tap"),
        [("echo".into(), "tcp:7005".into())]
    );
}

#[test]
fn edit_without_changes_writes_nothing() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    let before = std::fs::read(scratch.join("app.tap")).unwrap();
    let output = edit(&scratch, "VISUAL", "true", "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "no changes; app.tap left as it was\n");
    assert_eq!(std::fs::read(scratch.join("app.tap")).unwrap(), before);
}

#[test]
fn an_invalid_edit_is_shown_and_never_written() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    let before = std::fs::read(scratch.join("app.tap")).unwrap();
    let editor = editor_script(&scratch, "bad.sh", r#"sed -i 's/tcp:7001/tcp:70000/' "$1""#);
    let output = edit(&scratch, "EDITOR", &editor, "n\n");
    let stderr = fails_with(
        &output,
        1,
        "rtap: the change is not valid: invalid endpoint 'tcp:70000'",
    );
    assert!(stderr.contains("Edit again? [Y/n]"), "{stderr}");
    assert!(
        stderr.contains("rtap: error: the edit was not valid; app.tap left as it was"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(scratch.join("app.tap")).unwrap(), before);
}

#[test]
fn an_invalid_edit_can_be_edited_again() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "app.tap");
    // The first run breaks the JSON; the second run (a marker file exists) fixes it properly.
    let editor = editor_script(
        &scratch,
        "twice.sh",
        r#"if [ -e "$(dirname "$0")/marker" ]; then sed -i 's/{{{/tcp:7006/' "$1"; else touch "$(dirname "$0")/marker"; sed -i 's/tcp:7001/{{{/' "$1"; fi"#,
    );
    let output = edit(&scratch, "EDITOR", &editor, "\n");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        children(&scratch, "app.tap"),
        [("echo".into(), "tcp:7006".into())]
    );
}

#[test]
fn every_command_gives_one_line_and_exit_1_on_bad_files() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch, "good.tap");
    let good = std::fs::read(scratch.join("good.tap")).unwrap();
    std::fs::write(scratch.join("cut.tap"), &good[..good.len() - 10]).unwrap();
    std::fs::write(scratch.join("junk.tap"), "junk").unwrap();
    std::fs::create_dir(scratch.join("dir.tap")).unwrap();
    let problems = [
        ("missing.tap", "no such file or directory"),
        ("dir.tap", "it is a directory, not a file"),
        ("cut.tap", "the file is truncated"),
        ("junk.tap", "not an rtwisted snapshot"),
    ];
    for (file, problem) in problems {
        let commands: Vec<Vec<&str>> = vec![
            vec!["inspect", file],
            vec!["set", file, "echo", "endpoint=tcp:1"],
            vec!["set", file, "--uid", "1"],
            vec!["remove", file, "echo"],
            vec!["rename", file, "echo", "other"],
            vec!["add", file, "echo"],
            vec!["convert", file, "out.tas"],
            vec!["edit", file],
            vec!["save", "echo", "--append", file],
        ];
        for args in commands {
            if file == "missing.tap" && args[0] == "save" {
                continue; // --append to a missing file makes a new snapshot
            }
            let output = scratch.rtap(&args);
            let start = format!("rtap: error: cannot load snapshot '{file}': {problem}");
            eprintln!("rtap {args:?}");
            fails_with_one_line(&output, 1, &start);
        }
    }
    assert!(!scratch.join("out.tas").exists());
}

#[test]
fn save_plugin_help_shows_the_plugins_own_options() {
    let scratch = Scratch::new();
    let output = scratch.rtap_ok(&["save", "echo", "--help"]);
    let help = text(&output.stdout);
    assert!(help.contains("--port <STRPORT>"), "{help}");
    assert!(help.contains("[default: tcp:7001]"), "{help}");
}
