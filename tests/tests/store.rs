//! `rtap store`: a history of snapshots per application in a store folder, driven through the
//! real `rtap` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::{Duration, Instant};

use rtwisted_tests::{Scratch, fails_with, text};
use serde_json::Value;

const STORE: &str = "history";

/// Runs `rtap store SUBCOMMAND ARGS... --store history` and fails unless it succeeds.
fn store_ok(scratch: &Scratch, args: &[&str]) -> String {
    let mut all = vec!["store"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", STORE]);
    text(&scratch.rtap_ok(&all).stdout)
}

/// Runs `rtap store ... --store history` to completion.
fn store(scratch: &Scratch, args: &[&str]) -> Output {
    let mut all = vec!["store"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", STORE]);
    scratch.rtap(&all)
}

/// Expects exit status 1 and one line on stderr containing `message`.
fn fails_in_one_line(output: &Output, message: &str) {
    let stderr = fails_with(output, 1, message);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap()
}

fn echo_snapshot(scratch: &Scratch) {
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001"]);
}

#[test]
fn import_numbers_snapshots_and_export_gives_back_the_exact_bytes() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    let original = std::fs::read(scratch.join("echo.tap")).unwrap();
    assert_eq!(store_ok(&scratch, &["import", "echo.tap"]), "echo@1\n");
    assert_eq!(store_ok(&scratch, &["import", "echo.tap"]), "echo@2\n");

    let log = store_ok(&scratch, &["log", "echo"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].starts_with("SNAPSHOT"), "{log}");
    for (line, address) in lines[1..].iter().zip(["echo@1", "echo@2"]) {
        assert!(line.starts_with(address), "{log}");
        assert!(line.contains(&format!("  {}  ", original.len())), "{log}");
        assert!(line.ends_with("rtwisted 0.1.0"), "{log}");
    }
    let entries = json(&store_ok(&scratch, &["log", "echo", "--json"]));
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[1]["address"], "echo@2");
    assert_eq!(entries[1]["number"], 2);
    assert_eq!(entries[1]["size"], original.len());
    assert_eq!(entries[1]["encrypted"], false);
    assert!(
        entries[1]["producer"]
            .as_str()
            .unwrap()
            .starts_with("rtwisted ")
    );

    assert_eq!(
        store_ok(&scratch, &["tag", "echo@1", "stable"]),
        "tagged echo@1 'stable'\n"
    );
    assert!(store_ok(&scratch, &["log", "echo"]).contains("stable"));
    store_ok(&scratch, &["export", "echo@1", "by-number.tap"]);
    store_ok(&scratch, &["export", "echo@stable", "by-tag.tap"]);
    let latest = store_ok(&scratch, &["export", "echo", "latest.tap"]);
    assert_eq!(
        latest,
        format!("exported echo@2 ({} bytes) to latest.tap\n", original.len())
    );
    for file in ["by-number.tap", "by-tag.tap", "latest.tap"] {
        assert_eq!(
            std::fs::read(scratch.join(file)).unwrap(),
            original,
            "{file}"
        );
    }
    // The exported file is a snapshot the other commands read.
    assert_eq!(scratch.inspect_json("by-tag.tap")["app"], "echo");
}

#[test]
fn tags_are_unique_and_can_be_moved_or_removed() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    for _ in 0..2 {
        store_ok(&scratch, &["import", "echo.tap"]);
    }
    store_ok(&scratch, &["tag", "echo@1", "stable"]);
    fails_in_one_line(
        &store(&scratch, &["tag", "echo@2", "stable"]),
        "tag 'stable' is already on echo@1",
    );
    assert_eq!(
        store_ok(&scratch, &["tag", "echo@2", "stable", "--move"]),
        "tagged echo@2 'stable' (moved from echo@1)\n"
    );
    assert_eq!(
        store_ok(&scratch, &["untag", "echo@stable"]),
        "removed tag 'stable' from echo@2\n"
    );
    fails_in_one_line(
        &store(&scratch, &["export", "echo@stable", "x.tap"]),
        "no snapshot 'echo@stable' in the store (echo has no tags)",
    );
    fails_in_one_line(
        &store(&scratch, &["tag", "echo@1", "42"]),
        "invalid tag: tag '42' is all digits",
    );
    // A tag given on import, and refused when it is taken: nothing is stored then.
    assert_eq!(
        store_ok(&scratch, &["import", "echo.tap", "--tag", "v3"]),
        "echo@3\n"
    );
    fails_in_one_line(
        &store(&scratch, &["import", "echo.tap", "--tag", "v3"]),
        "tag 'v3' is already on echo@3",
    );
    assert_eq!(
        json(&store_ok(&scratch, &["list", "--json"]))[0]["count"],
        3
    );
}

#[test]
fn diff_shows_changed_fields_and_added_and_removed_services_by_path() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    store_ok(&scratch, &["import", "echo.tap"]);
    scratch.rtap_ok(&["set", "echo.tap", "echo", "endpoint=tcp:7002"]);
    store_ok(&scratch, &["import", "echo.tap"]);

    let diff = store_ok(&scratch, &["diff", "echo@1", "echo@2"]);
    assert_eq!(
        diff,
        "echo@1 -> echo@2\n~ echo  endpoint: \"tcp:7001\" -> \"tcp:7002\"\n"
    );
    let document = json(&store_ok(&scratch, &["diff", "echo@1", "echo", "--json"]));
    assert_eq!(document["to"], "echo@2");
    assert_eq!(document["same"], false);
    assert_eq!(document["changed"].as_array().unwrap().len(), 1);
    assert_eq!(document["changed"][0]["path"], "echo");
    assert_eq!(
        document["changed"][0]["fields"],
        serde_json::json!([{"field": "endpoint", "from": "tcp:7001", "to": "tcp:7002"}])
    );
    assert_eq!(document["added"], serde_json::json!([]));

    // Rename the first service and add a second one named like it.
    scratch.rtap_ok(&["rename", "echo.tap", "echo", "first"]);
    scratch.rtap_ok(&["add", "echo.tap", "echo", "--port", "tcp:7003"]);
    store_ok(&scratch, &["import", "echo.tap"]);
    let diff = store_ok(&scratch, &["diff", "echo@2", "echo@3"]);
    assert!(
        diff.contains("+ first  [rtwisted.StreamServer]\n"),
        "{diff}"
    );
    assert!(
        diff.contains("~ echo  endpoint: \"tcp:7002\" -> \"tcp:7003\"\n"),
        "{diff}"
    );
    assert_eq!(diff.lines().count(), 3, "{diff}");

    scratch.rtap_ok(&["remove", "echo.tap", "first"]);
    scratch.rtap_ok(&["set", "echo.tap", "--uid", "1234", "--appname", "echo2"]);
    let imported = scratch.rtap_ok(&["store", "import", "echo.tap", "--store", STORE]);
    assert_eq!(text(&imported.stdout), "echo2@1\n");
    let document = json(&store_ok(&scratch, &["diff", "echo@3", "echo2", "--json"]));
    assert_eq!(
        document["removed"],
        serde_json::json!([{"path": "first", "type": "rtwisted.StreamServer"}])
    );
    assert_eq!(
        document["app"],
        serde_json::json!({"from": "echo", "to": "echo2"})
    );
    assert_eq!(document["process"][0]["field"], "uid");
    assert_eq!(document["process"][0]["to"], 1234);

    assert_eq!(
        store_ok(&scratch, &["diff", "echo@2", "echo@2"]),
        "echo@2 -> echo@2: no differences\n"
    );
}

#[test]
fn gc_keeps_the_newest_and_the_tagged_and_never_reuses_numbers() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    store_ok(&scratch, &["import", "echo.tap"]);
    store_ok(&scratch, &["import", "echo.tap"]);
    assert_eq!(
        store_ok(&scratch, &["gc", "echo", "--keep", "1"]),
        "removed 1 (echo@1); kept 1 (echo@2)\n"
    );
    fails_in_one_line(
        &store(&scratch, &["export", "echo@1", "old.tap"]),
        "no snapshot 'echo@1' in the store (echo has 2)",
    );
    assert_eq!(store_ok(&scratch, &["import", "echo.tap"]), "echo@3\n");

    store_ok(&scratch, &["tag", "echo@2", "keep"]);
    store_ok(&scratch, &["import", "echo.tap"]);
    assert_eq!(
        store_ok(&scratch, &["gc", "echo", "--keep", "1"]),
        "removed 1 (echo@3); kept 2 (echo@2, echo@4)\n"
    );
    assert_eq!(
        store_ok(&scratch, &["gc", "echo", "--keep", "1"]),
        "nothing to remove; kept 2 (echo@2, echo@4)\n"
    );
    let output = store(&scratch, &["gc", "echo", "--keep", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

#[test]
fn list_shows_every_application_and_its_json_parses() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["store", "list", "--store", "missing"]);
    fails_in_one_line(&output, "no store at 'missing'");
    assert!(!scratch.join("missing").exists());

    echo_snapshot(&scratch);
    scratch.rtap_ok(&["save", "daytime", "--appname", "clock", "-o", "clock.tas"]);
    store_ok(&scratch, &["import", "echo.tap"]);
    store_ok(&scratch, &["import", "echo.tap"]);
    assert_eq!(store_ok(&scratch, &["import", "clock.tas"]), "clock@1\n");

    let table = store_ok(&scratch, &["list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[1].starts_with("clock "), "{table}");
    assert!(lines[2].starts_with("echo "), "{table}");
    assert!(lines[2].contains(" echo@2 "), "{table}");

    let apps = json(&store_ok(&scratch, &["list", "--json"]));
    let echo_size = std::fs::metadata(scratch.join("echo.tap")).unwrap().len();
    let clock_size = std::fs::metadata(scratch.join("clock.tas")).unwrap().len();
    assert_eq!(apps.as_array().unwrap().len(), 2);
    assert_eq!(apps[0]["app"], "clock");
    assert_eq!(apps[0]["count"], 1);
    assert_eq!(apps[0]["total_bytes"], clock_size);
    assert_eq!(apps[0]["latest"]["style"], "tas");
    assert_eq!(apps[1]["app"], "echo");
    assert_eq!(apps[1]["count"], 2);
    assert_eq!(apps[1]["total_bytes"], 2 * echo_size);
    assert_eq!(apps[1]["latest"]["address"], "echo@2");
    assert!(apps[1]["latest"]["saved"].as_str().unwrap().ends_with('Z'));

    // The folder may come from RTWISTED_STORE instead of --store.
    let output = scratch
        .command("rtap")
        .args(["store", "list", "--json"])
        .env("RTWISTED_STORE", STORE)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(json(&text(&output.stdout)), apps);
}

#[test]
fn bad_addresses_missing_apps_and_bad_folders_are_one_line_errors() {
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    store_ok(&scratch, &["import", "echo.tap"]);
    for (args, message) in [
        (
            &["export", "echo@7", "x.tap"][..],
            "rtap: error: no snapshot 'echo@7' in the store (echo has 1)",
        ),
        (
            &["export", "nope", "x.tap"],
            "rtap: error: no application 'nope' in the store",
        ),
        (&["log", "nope"], "no application 'nope' in the store"),
        (
            &["diff", "echo@1", "nope@2"],
            "no application 'nope' in the store",
        ),
        (
            &["export", "echo@", "x.tap"],
            "invalid store address 'echo@': nothing after '@'",
        ),
        (
            &["export", "echo@0", "x.tap"],
            "invalid store address 'echo@0': snapshot numbers start at 1",
        ),
        (
            &["tag", "@1", "x"],
            "invalid store address '@1': no application name",
        ),
        (&["log", "echo@1"], "'echo@1' names a snapshot"),
        (&["untag", "echo@1"], "echo@1 has no tag"),
        (
            &["import", "missing.tap"],
            "cannot load snapshot 'missing.tap': no such file",
        ),
    ] {
        fails_in_one_line(&store(&scratch, args), message);
    }
    assert!(!scratch.join("x.tap").exists());

    std::fs::write(scratch.join("notes.txt"), "not a snapshot").unwrap();
    fails_in_one_line(
        &store(&scratch, &["import", "notes.txt"]),
        "cannot load snapshot 'notes.txt': not an rtwisted snapshot",
    );
    // A folder with other things in it is never turned into a store.
    std::fs::create_dir(scratch.join("documents")).unwrap();
    std::fs::write(scratch.join("documents/letter.txt"), "dear").unwrap();
    fails_in_one_line(
        &scratch.rtap(&["store", "import", "echo.tap", "--store", "documents"]),
        "'documents' is not an rtwisted snapshot store",
    );
    assert_eq!(
        std::fs::read_dir(scratch.join("documents"))
            .unwrap()
            .count(),
        1
    );
    // No store named at all is a usage error.
    let output = scratch.rtap(&["store", "list"]);
    fails_with(
        &output,
        2,
        "no store given: use --store DIR or set RTWISTED_STORE",
    );
}

#[test]
fn encrypted_snapshots_are_stored_as_they_are_and_decrypted_to_diff() {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("pass.txt"), "a passphrase\n").unwrap();
    scratch.rtap_ok(&["save", "echo", "--encrypt", "--passphrase-file", "pass.txt"]);
    let original = std::fs::read(scratch.join("echo.etap")).unwrap();
    let output = scratch.rtap(&["store", "import", "echo.etap", "--store", STORE]);
    fails_in_one_line(&output, "passphrase");
    let pass = ["--passphrase-file", "pass.txt"];
    assert_eq!(
        store_ok(&scratch, &[&["import", "echo.etap"][..], &pass].concat()),
        "echo@1\n"
    );
    let entries = json(&store_ok(&scratch, &["log", "echo", "--json"]));
    assert_eq!(entries[0]["producer"], "encrypted");
    assert_eq!(entries[0]["encrypted"], true);
    store_ok(&scratch, &["export", "echo", "out.etap"]);
    assert_eq!(std::fs::read(scratch.join("out.etap")).unwrap(), original);

    scratch.rtap_ok(&[
        "set",
        "echo.etap",
        "echo",
        "endpoint=tcp:7009",
        "--passphrase-file",
        "pass.txt",
    ]);
    store_ok(&scratch, &[&["import", "echo.etap"][..], &pass].concat());
    let diff = store_ok(
        &scratch,
        &[&["diff", "echo@1", "echo@2"][..], &pass].concat(),
    );
    assert!(
        diff.contains("~ echo  endpoint: \"tcp:7001\" -> \"tcp:7009\""),
        "{diff}"
    );
    std::fs::write(scratch.join("wrong.txt"), "not it\n").unwrap();
    fails_in_one_line(
        &store(
            &scratch,
            &["diff", "echo@1", "echo@2", "--passphrase-file", "wrong.txt"],
        ),
        "cannot read echo@1: wrong passphrase",
    );
}

#[test]
fn writers_queue_for_the_store_and_readers_never_wait() {
    use nix::fcntl::{Flock, FlockArg};
    let scratch = Scratch::new();
    echo_snapshot(&scratch);
    store_ok(&scratch, &["import", "echo.tap"]);
    // Hold the writers' lock (on the store folder), as a writer in the middle of a save would.
    let lock = || {
        let file = std::fs::File::open(scratch.join(STORE)).unwrap();
        Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap()
    };

    let held = lock();
    let started = Instant::now();
    assert!(store_ok(&scratch, &["list"]).contains("echo@1"));
    assert!(store_ok(&scratch, &["log", "echo"]).contains("echo@1"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a reader waited"
    );
    let started = Instant::now();
    let output = store(&scratch, &["tag", "echo", "stable", "--wait", "1"]);
    fails_in_one_line(
        &output,
        "the store history is busy (another rtap or rtwistd is writing to it); try again, or wait longer with --wait SECONDS",
    );
    assert!(started.elapsed() >= Duration::from_millis(1000));
    drop(held);

    // A writer waits its turn (10 s by default) and then does its work.
    let held = lock();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        drop(held);
    });
    assert!(store_ok(&scratch, &["tag", "echo", "stable"]).contains("tagged echo@1 'stable'"));
    release.join().unwrap();
}
