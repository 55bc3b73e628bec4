//! What a newcomer from Twisted hits first, through the real binaries: `#N` addresses the
//! child at index N in every command, `rtwistd -n` with nothing to run names the default it
//! looked for, a snapshot given to `-y` says to use `-f`, and a bare port suggests `tcp:PORT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{Scratch, fails_with, text};

/// A tree whose children are named: `/a`, `/web`, `/web/#0`.
fn named_tree(scratch: &Scratch) {
    std::fs::write(
        scratch.join("app.tac"),
        "application = Application(\"p\", style=\"tas\")\n\
         service(\"tcp:1\", Echo(), name=\"a\").setServiceParent(application)\n\
         web = MultiService(name=\"web\")\n\
         web.setServiceParent(application)\n\
         service(\"tcp:2\", Echo()).setServiceParent(web)\n",
    )
    .unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "p.tas"]);
}

#[test]
fn index_paths_address_named_children_in_inspect_as_in_set_and_rename() {
    let scratch = Scratch::new();
    named_tree(&scratch);
    for source in ["p.tas", "app.tac"] {
        let by_index = scratch.inspect_json_with(&["--path", "#1", source]);
        let by_name = scratch.inspect_json_with(&["--path", "web", source]);
        assert_eq!(by_index["services"], by_name["services"], "{source}");
        assert_eq!(by_index["services"]["path"], "web");
        let nested = scratch.inspect_json_with(&["--path", "#1/#0", source]);
        assert_eq!(nested["services"]["fields"]["endpoint"], "tcp:2");
    }
    // set and rename take the same paths.
    scratch.rtap_ok(&["set", "p.tas", "#0", "endpoint=tcp:3"]);
    let doc = scratch.inspect_json_with(&["--path", "a", "p.tas"]);
    assert_eq!(doc["services"]["fields"]["endpoint"], "tcp:3");
    let output = scratch.rtap(&["inspect", "p.tas", "--path", "#7"]);
    fails_with(&output, 1, "no service at '#7' in p.tas");
}

#[test]
fn rtwistd_with_nothing_to_run_names_the_default_it_looked_for() {
    let scratch = Scratch::new();
    let output = scratch.rtwistd(&["-n"]);
    fails_with(
        &output,
        1,
        "no snapshot given, and the default, 'rtwistd.tap', is not in this folder: give a snapshot with -f FILE, a TAC file with -y FILE, or a plugin (see rtap plugins)",
    );
}

#[test]
fn a_snapshot_given_as_a_tac_file_says_to_use_f() {
    let scratch = Scratch::new();
    named_tree(&scratch);
    scratch.rtap_ok(&["convert", "p.tas", "p.tap"]);
    for snapshot in ["p.tap", "p.tas"] {
        let output = scratch.rtwistd(&["-n", "-y", snapshot]);
        assert_eq!(output.status.code(), Some(1), "{snapshot}");
        assert!(
            text(&output.stderr).contains(&format!(
                "'{snapshot}' is a snapshot, not a TAC file: run it with rtwistd -f {snapshot} (-y is for TAC files)"
            )),
            "{}",
            text(&output.stderr)
        );
    }
    // Named like a TAC file, the contents still decide.
    std::fs::copy(scratch.join("p.tap"), scratch.join("disguised.tac")).unwrap();
    let output = scratch.rtap(&["inspect", "disguised.tac"]);
    fails_with(&output, 1, "'disguised.tac' is a snapshot, not a TAC file");
}

#[test]
fn a_bare_port_suggests_its_tcp_endpoint() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["save", "echo", "--port", "7001"]);
    fails_with(
        &output,
        2,
        "a port alone is not an endpoint: write 'tcp:7001'",
    );
    let output = scratch.rtap(&["save", "portforward", "--port", "tcp:0", "--dest", "8080"]);
    assert!(
        text(&output.stderr)
            .contains("a port alone is not an endpoint: write 'tcp:host=HOST:port=8080'"),
        "{}",
        text(&output.stderr)
    );
}
