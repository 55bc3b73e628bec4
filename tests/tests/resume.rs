//! Resume: `rtwistd --resume -f NAME.tap` runs from the newest state descending from
//! NAME.tap; a run without it warns when newer state exists; a shutdown or checkpoint file the
//! run does not descend from is kept as NAME-shutdown.1.tap ... (the last five), never lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::signal::Signal;
use rtwisted_tests::{Scratch, memcache_get, memcache_store, repository_file};

/// Runs `rtwistd ARGS`, stores `key`, stops it; returns the log.
fn run_storing(scratch: &Scratch, args: &[&str], key: &str) -> Vec<String> {
    let mut daemon = scratch.spawn_rtwistd(args);
    memcache_store(daemon.listening_address(), key, "v");
    daemon.stop()
}

/// A new scratch folder with `kv.tap`, run once (`rtwistd -n -f kv.tap`) to store `key`.
fn kv_run_once(key: &str) -> Scratch {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    run_storing(&scratch, &["-n", "-f", "kv.tap"], key);
    scratch
}

#[test]
fn resume_continues_from_the_newest_state_and_a_plain_run_warns_about_it() {
    let scratch = kv_run_once("first");

    // Without --resume: the run starts from kv.tap, and says newer state exists.
    let mut plain = scratch.spawn_rtwistd(&["-n", "-o", "-f", "kv.tap"]);
    let warning = plain.wait_for_line("holds newer state of kv than kv.tap");
    assert!(
        warning.contains("kv-shutdown.tap") && warning.contains("--resume"),
        "{warning}"
    );
    assert_eq!(memcache_get(plain.listening_address(), "first"), None);
    plain.stop();

    // With --resume: the shutdown state.
    let mut resumed = scratch.spawn_rtwistd(&["-n", "--resume", "-f", "kv.tap"]);
    resumed.wait_for_line("Resuming from kv-shutdown.tap");
    let address = resumed.listening_address();
    assert_eq!(memcache_get(address, "first").as_deref(), Some("v"));
    memcache_store(address, "second", "v");
    resumed.stop();

    // Again: both items, and the shutdown snapshot descends from kv.tap through its parents.
    let mut again = scratch.spawn_rtwistd(&["-n", "-o", "--resume", "-f", "kv.tap"]);
    let address = again.listening_address();
    assert_eq!(memcache_get(address, "first").as_deref(), Some("v"));
    assert_eq!(memcache_get(address, "second").as_deref(), Some("v"));
    again.stop();
    let base = scratch.inspect_json("kv.tap");
    let shutdown = scratch.inspect_json("kv-shutdown.tap");
    assert!(base["parent"].is_null(), "a saved snapshot has no parent");
    let lineage: Vec<&str> = std::iter::once(&shutdown["parent"]["checksum"])
        .chain(shutdown["parent"]["ancestors"].as_array().unwrap().iter())
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        lineage.contains(&base["checksum"].as_str().unwrap()),
        "{lineage:?}"
    );
    let text = rtwisted_tests::text(&scratch.rtap_ok(&["inspect", "kv-shutdown.tap"]).stdout);
    assert!(
        text.contains(&format!(
            "parent    {}",
            shutdown["parent"]["checksum"].as_str().unwrap()
        )),
        "{text}"
    );
}

#[test]
fn a_checkpoint_newer_than_the_shutdown_wins_after_a_crash() {
    let scratch = kv_run_once("before");
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--resume", "-f", "kv.tap"]);
    let address = daemon.listening_address();
    memcache_store(address, "crash", "v");
    daemon.signal(Signal::SIGUSR2);
    daemon.wait_for_line("Checkpoint (SIGUSR2) saved to kv-checkpoint.tap");
    daemon.kill();

    let mut resumed = scratch.spawn_rtwistd(&["-n", "-o", "--resume", "-f", "kv.tap"]);
    resumed.wait_for_line("Resuming from kv-checkpoint.tap");
    let address = resumed.listening_address();
    assert_eq!(memcache_get(address, "before").as_deref(), Some("v"));
    assert_eq!(memcache_get(address, "crash").as_deref(), Some("v"));
    resumed.stop();
}

#[test]
fn state_the_run_does_not_descend_from_is_kept_never_overwritten() {
    let scratch = kv_run_once("run1");
    let first = std::fs::read(scratch.join("kv-shutdown.tap")).unwrap();

    // A run from kv.tap (no --resume) does not descend from run 1's shutdown: it is kept.
    let out = run_storing(&scratch, &["-n", "-f", "kv.tap"], "run2");
    assert!(
        out.iter().any(|l| l.contains(
            "kv-shutdown.tap holds state this run does not descend from: kept as kv-shutdown.1.tap"
        )),
        "{out:#?}"
    );
    assert_eq!(
        std::fs::read(scratch.join("kv-shutdown.1.tap")).unwrap(),
        first
    );

    // Seven more such runs: the last five are kept, the oldest beyond are dropped.
    for run in 3..10 {
        run_storing(&scratch, &["-n", "-f", "kv.tap"], &format!("run{run}"));
    }
    for kept in 1..=5 {
        assert!(scratch.join(&format!("kv-shutdown.{kept}.tap")).exists());
    }
    assert!(!scratch.join("kv-shutdown.6.tap").exists());
    scratch.assert_relaunch_serves("kv-shutdown.1.tap", "run8", "v");
}

#[test]
fn an_edited_base_file_wins_over_state_saved_before_the_edit() {
    let scratch = kv_run_once("old");
    scratch.rtap_ok(&["set", "kv.tap", "kv", "factory.max_value_bytes=4096"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--resume", "-f", "kv.tap"]);
    daemon.wait_for_line("Loading kv.tap...");
    let address = daemon.listening_address();
    // The shutdown file was saved from kv.tap before the edit: it is not newer state of it.
    assert_eq!(memcache_get(address, "old"), None);
    let out = daemon.stop();
    assert!(
        out.iter().any(|l| l.contains("kept as kv-shutdown.1.tap")),
        "{out:#?}"
    );
}

#[test]
fn resume_in_the_store_runs_the_newest_descendant_of_the_snapshot_named() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &["--store", "db"]);
    run_storing(&scratch, &["-n", "--store", "db", "-f", "kv@1"], "stored");
    // kv@2 is the shutdown save; from kv@1 without --resume, a warning names it.
    let mut plain = scratch.spawn_rtwistd(&["-n", "-o", "--store", "db", "-f", "kv@1"]);
    plain.wait_for_line("kv@2 holds newer state of kv than kv@1");
    assert_eq!(memcache_get(plain.listening_address(), "stored"), None);
    plain.stop();
    let mut resumed =
        scratch.spawn_rtwistd(&["-n", "-o", "--resume", "--store", "db", "-f", "kv@1"]);
    resumed.wait_for_line("Resuming from kv@2, the newest state descending from kv@1");
    assert_eq!(
        memcache_get(resumed.listening_address(), "stored").as_deref(),
        Some("v")
    );
    resumed.stop();
}

#[test]
fn the_systemd_example_resumes() {
    let unit =
        std::fs::read_to_string(repository_file("examples/systemd/rtwisted-echo.service")).unwrap();
    let exec = unit
        .lines()
        .find(|line| line.starts_with("ExecStart="))
        .unwrap();
    assert!(exec.contains("--resume -f echo.tap"), "{exec}");
}
