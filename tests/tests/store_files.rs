//! The store's files, index and journal, black-box: snapshots are complete files `rtap inspect`
//! opens, an old all-in-sled store is migrated, verify finds damage and rebuild repairs it, a
//! full disk is an error and never damage (rtap and rtwistd, on a small tmpfs), and readers
//! need no write access (a read-only file system, a user who may only read).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rtwisted_tests::{
    DEADLINE, LOOPBACK, Scratch, memcache_request, memcache_store, repository_file, text,
};

const STORE: &str = "st";

/// Runs `command` to completion, failing the test if it takes longer than [`DEADLINE`]: a
/// store command must never hang.
fn run_bounded(mut command: Command) -> Output {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} hung for {DEADLINE:?}; stderr: {}",
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rtap_in(scratch: &Scratch, args: &[&str]) -> Output {
    let mut command = scratch.command("rtap");
    command.args(args);
    run_bounded(command)
}

fn rtap_ok_in(scratch: &Scratch, args: &[&str]) -> String {
    let output = rtap_in(scratch, args);
    assert!(
        output.status.success(),
        "rtap {args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A scratch folder whose store [`STORE`] holds kv@1 (on tcp:7005) and kv@2 (on tcp:7006).
fn two_saves_in_the_store() -> Scratch {
    let scratch = Scratch::new();
    rtap_ok_in(
        &scratch,
        &["save", "kv", "--port", "tcp:7005", "--store", STORE],
    );
    rtap_ok_in(
        &scratch,
        &["set", "kv", "--store", STORE, "kv", "endpoint=tcp:7006"],
    );
    scratch
}

/// Exit 1 with one line on stderr.
fn fails_cleanly(output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

fn snapshot_files(store: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(store.join("snapshots")).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            found.push(file.unwrap().path());
        }
    }
    found.sort();
    found
}

fn log_numbers(scratch: &Scratch, store: &str, app: &str) -> Vec<String> {
    let out = rtap_ok_in(scratch, &["store", "log", app, "--store", store, "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["address"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_snapshot_is_a_complete_file_that_inspect_opens() {
    let scratch = two_saves_in_the_store();
    let files = snapshot_files(&scratch.join(STORE));
    assert_eq!(files.len(), 2, "{files:?}");
    let mut endpoints = Vec::new();
    for file in &files {
        assert!(file.extension().is_some_and(|e| e == "tap"), "{file:?}");
        let doc = scratch.inspect_json(file.to_str().unwrap());
        assert_eq!(doc["app"], "kv", "{doc:#}");
        endpoints.push(doc.to_string().contains("tcp:7006"));
    }
    endpoints.sort();
    assert_eq!(endpoints, [false, true]);
    assert!(scratch.join(STORE).join("journal").is_file());
    assert!(scratch.join(STORE).join("index").is_dir());
}

#[test]
fn a_store_written_by_the_all_in_sled_release_is_migrated_on_first_open() {
    let scratch = Scratch::new();
    let old = scratch.join("old");
    std::fs::create_dir(&old).unwrap();
    for name in ["db", "conf"] {
        std::fs::copy(
            repository_file(&format!("tests/golden/store-v1/{name}")),
            old.join(name),
        )
        .unwrap();
    }
    assert_eq!(
        log_numbers(&scratch, "old", "echo"),
        ["echo@1", "echo@3", "echo@4"]
    );
    rtap_ok_in(
        &scratch,
        &[
            "store",
            "export",
            "echo@stable",
            "first.tap",
            "--store",
            "old",
        ],
    );
    assert_eq!(
        std::fs::read(scratch.join("first.tap")).unwrap(),
        std::fs::read(repository_file("tests/golden/echo-format1.tap")).unwrap()
    );
    rtap_ok_in(
        &scratch,
        &["store", "export", "echo@4", "last.tas", "--store", "old"],
    );
    assert_eq!(
        std::fs::read(scratch.join("last.tas")).unwrap(),
        std::fs::read(repository_file("tests/golden/echo-format1.tas")).unwrap()
    );
    assert!(
        !old.join("db").exists(),
        "the old database was removed after migrating"
    );
    let out = rtap_ok_in(
        &scratch,
        &["store", "import", "first.tap", "--store", "old"],
    );
    assert_eq!(out.trim(), "echo@5");
    assert_sound(&scratch, "old");
}

#[test]
fn verify_names_each_problem_and_rebuild_recreates_the_index() {
    let scratch = Scratch::new();
    rtap_ok_in(
        &scratch,
        &[
            "save", "kv", "--port", "tcp:7005", "--store", STORE, "--tag", "base",
        ],
    );
    for port in ["7006", "7007"] {
        let endpoint = format!("endpoint=tcp:{port}");
        rtap_ok_in(&scratch, &["set", "kv", "--store", STORE, "kv", &endpoint]);
    }
    let dir = scratch.join(STORE);
    let sound = rtap_ok_in(&scratch, &["store", "verify", "--store", STORE]);
    assert!(sound.contains("is sound: 3 snapshots, 3 files"), "{sound}");

    // The index deleted: reads go on, rebuild recreates it, nothing is lost.
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    assert_eq!(log_numbers(&scratch, STORE, "kv"), ["kv@1", "kv@2", "kv@3"]);
    let out = rtap_ok_in(&scratch, &["store", "rebuild", "--store", STORE]);
    assert!(out.contains("3 snapshots"), "{out}");
    assert!(dir.join("index").is_dir());

    // The index corrupted: the next writer recreates it from the journal.
    for entry in std::fs::read_dir(dir.join("index")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, vec![0x5A; 8192]).unwrap();
        }
    }
    rtap_ok_in(
        &scratch,
        &["set", "kv", "--store", STORE, "kv", "endpoint=tcp:7008"],
    );
    assert_eq!(
        log_numbers(&scratch, STORE, "kv"),
        ["kv@1", "kv@2", "kv@3", "kv@4"]
    );
    let tagged = rtap_ok_in(&scratch, &["inspect", "kv@base", "--store", STORE]);
    assert!(tagged.contains("tcp:7005"), "{tagged}");

    // A damaged snapshot file (kv@2's): one line naming it, exit 1.
    let log = rtap_ok_in(
        &scratch,
        &["store", "log", "kv", "--store", STORE, "--json"],
    );
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let hex = log[1]["sha256"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned();
    let files: Vec<PathBuf> = snapshot_files(&dir)
        .into_iter()
        .filter(|file| file.to_string_lossy().contains(&hex))
        .collect();
    assert_eq!(files.len(), 1, "{hex}");
    std::fs::write(&files[0], b"not a snapshot any more").unwrap();
    let output = rtap_in(&scratch, &["store", "verify", "--store", STORE]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("does not match its recorded SHA-256")
                && line.contains(files[0].file_name().unwrap().to_str().unwrap())),
        "{stdout}"
    );

    // The journal lost as well: rebuild recreates the history from the snapshot files.
    std::fs::remove_file(dir.join("journal")).unwrap();
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let output = rtap_in(&scratch, &["store", "log", "kv", "--store", STORE]);
    assert!(fails_cleanly(&output).contains("journal is missing (run `rtap store rebuild`)"));
    let out = rtap_ok_in(&scratch, &["store", "rebuild", "--store", STORE]);
    assert!(out.contains("rebuilt the index"), "{out}");
    // The damaged file is not a snapshot: three of the four remain, oldest first.
    assert_eq!(log_numbers(&scratch, STORE, "kv"), ["kv@1", "kv@2", "kv@3"]);
    let latest = rtap_ok_in(&scratch, &["inspect", "kv", "--store", STORE]);
    assert!(latest.contains("tcp:7008"), "{latest}");
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts it, or says why not: `None` skips the test, unless `RTWISTED_REQUIRE_TOOLS=1`
    /// (CI, as root) makes a failed mount fail the test.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::piped())
            .output();
        match status {
            Ok(output) if output.status.success() => Some(Tmpfs {
                dir: dir.to_owned(),
            }),
            other => {
                let why = match other {
                    Ok(output) => text(&output.stderr),
                    Err(error) => error.to_string(),
                };
                assert!(
                    std::env::var("RTWISTED_REQUIRE_TOOLS").as_deref() != Ok("1"),
                    "RTWISTED_REQUIRE_TOOLS=1 but a tmpfs cannot be mounted: {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs here (run as root): {why}");
                None
            }
        }
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn available(&self) -> u64 {
        nix::sys::statvfs::statvfs(&self.dir)
            .unwrap()
            .blocks_available()
            * nix::sys::statvfs::statvfs(&self.dir)
                .unwrap()
                .fragment_size()
    }

    /// Fills the file system until at most `leave` bytes are free.
    fn fill_leaving(&self, leave: u64) {
        let filler = self.dir.join("filler");
        let _ = std::fs::remove_file(&filler);
        let free = self.available();
        let size = free.saturating_sub(leave);
        let mut file = std::fs::File::create(&filler).unwrap();
        use std::io::Write;
        let block = vec![0u8; 4096];
        let mut written = 0;
        while written + 4096 <= size {
            if file.write_all(&block).is_err() {
                break;
            }
            written += 4096;
        }
        let _ = file.sync_all();
    }

    fn empty_filler(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The store on the tmpfs of [`on_a_small_disk`].
const DISK_STORE: &str = "disk/st";

/// Runs `test` in a scratch folder with a tmpfs of `size` mounted at `disk/`, after saving kv
/// with `port` into [`DISK_STORE`] (with `extra` arguments); skips it where no tmpfs mounts.
fn on_a_small_disk(size: &str, port: &str, extra: &[&str], test: impl FnOnce(&Scratch, &Tmpfs)) {
    let scratch = Scratch::new();
    let Some(disk) = Tmpfs::mount(&scratch.join("disk"), size) else {
        return;
    };
    let mut save = vec!["save", "kv", "--port", port, "--store", DISK_STORE];
    save.extend_from_slice(extra);
    rtap_ok_in(&scratch, &save);
    test(&scratch, &disk);
}

/// Fails the test unless `rtap store verify` finds the store sound.
fn assert_sound(scratch: &Scratch, store: &str) {
    let verified = rtap_ok_in(scratch, &["store", "verify", "--store", store]);
    assert!(verified.contains("is sound"), "{verified}");
}

#[test]
fn a_full_disk_fails_a_save_cleanly_and_never_damages_the_store() {
    on_a_small_disk("2m", "tcp:7000", &[], |scratch, disk| {
        let store = DISK_STORE;
        let mut saved = vec!["kv@1".to_owned()];
        let mut refused = 0;
        // From nothing free to plenty, in uneven steps: every save either lands or fails in one
        // line, and the history stays whole and readable throughout.
        let leaves: Vec<u64> = (0..100).map(|trial| (trial * 21_841) % 1_900_000).collect();
        for (trial, leave) in leaves.iter().enumerate() {
            disk.fill_leaving(*leave);
            let endpoint = format!("endpoint=tcp:{}", 7001 + trial);
            let output = rtap_in(scratch, &["set", "kv", "--store", store, "kv", &endpoint]);
            if output.status.success() {
                let out = text(&output.stdout);
                let address = out.split_whitespace().nth(1).unwrap().to_owned();
                saved.push(address);
            } else {
                let line = fails_cleanly(&output);
                assert!(
                    line.contains("free space") || line.contains("No space left on device"),
                    "{line}"
                );
                refused += 1;
            }
            assert_eq!(log_numbers(scratch, store, "kv"), saved, "trial {trial}");
        }
        assert!(
            refused > 10,
            "the disk was never full enough ({refused} refused)"
        );
        assert!(saved.len() > 2, "no save ever fit ({saved:?})");
        disk.empty_filler();
        let output = rtap_ok_in(
            scratch,
            &["set", "kv", "--store", store, "kv", "endpoint=tcp:6999"],
        );
        saved.push(output.split_whitespace().nth(1).unwrap().to_owned());
        assert_eq!(log_numbers(scratch, store, "kv"), saved);
        assert_sound(scratch, store);
    });
}

#[test]
fn rtwistd_checkpoints_on_a_full_disk_fail_in_the_log_and_the_daemon_keeps_serving() {
    on_a_small_disk("2m", LOOPBACK, &[], |scratch, disk| {
        let store = DISK_STORE;
        let mut daemon = scratch.spawn_rtwistd(&[
            "-n",
            "--store",
            store,
            "-f",
            "kv",
            "--checkpoint-every",
            "200ms",
        ]);
        let address = daemon.listening_address();
        daemon.wait_for_line("Checkpoint (timer) saved as kv@");
        let mut before = Vec::new();
        for round in 0..5 {
            // Full to the last block, or nearly: each checkpoint fails in one logged line.
            disk.fill_leaving([0, 4096, 300_000, 0, 700_000][round]);
            daemon.wait_for_line("Checkpoint (timer) failed, the previous snapshot is kept whole");
            let request = format!("set during{round} 0 0 4\r\nfull\r\n");
            assert_eq!(memcache_request(address, request.as_bytes()), "STORED\r\n");
            before = log_numbers(scratch, store, "kv");
            disk.empty_filler();
            daemon.wait_for_line("Checkpoint (timer) saved as kv@");
        }
        daemon.stop();
        let after = log_numbers(scratch, store, "kv");
        assert!(
            after.len() > before.len() && after.starts_with(&before),
            "{before:?} {after:?}"
        );
        assert_sound(scratch, store);
    });
}

#[test]
fn readers_work_on_a_read_only_file_system() {
    on_a_small_disk("4m", "tcp:7005", &["--tag", "one"], |scratch, disk| {
        let store = DISK_STORE;
        rtap_ok_in(
            scratch,
            &["set", "kv", "--store", store, "kv", "endpoint=tcp:7006"],
        );
        disk.remount_read_only();
        assert_eq!(log_numbers(scratch, store, "kv"), ["kv@1", "kv@2"]);
        assert!(rtap_ok_in(scratch, &["store", "list", "--store", store]).contains("kv@2"));
        let diff = rtap_ok_in(
            scratch,
            &["store", "diff", "kv@1", "kv@2", "--store", store],
        );
        assert!(diff.contains("tcp:7006"), "{diff}");
        rtap_ok_in(
            scratch,
            &["store", "export", "kv@one", "one.tap", "--store", store],
        );
        assert!(
            scratch
                .inspect_json("one.tap")
                .to_string()
                .contains("tcp:7005")
        );
        let inspected = rtap_ok_in(scratch, &["inspect", "kv", "--store", store]);
        assert!(inspected.contains("tcp:7006"), "{inspected}");
        assert_sound(scratch, store);
        // A write says why it cannot, in one line.
        let output = rtap_in(
            scratch,
            &["set", "kv", "--store", store, "kv", "endpoint=tcp:1"],
        );
        assert!(fails_cleanly(&output).contains("Read-only file system"));
    });
}

#[test]
fn readers_need_only_read_permission() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::Uid::effective().is_root() {
        assert!(
            std::env::var("RTWISTED_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "RTWISTED_REQUIRE_TOOLS=1 but the tests do not run as root"
        );
        eprintln!("skipped: needs root to run rtap as another user");
        return;
    }
    let scratch = two_saves_in_the_store();
    // The user runs a copy of rtap inside the scratch folder: the workspace's own target
    // folder may be out of its reach (a checkout in a 0700 folder).
    let program = scratch.join("rtap");
    std::fs::copy(rtwisted_tests::binary("rtap"), &program).unwrap();
    // Everything readable (and folders searchable) by others, nothing writable.
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX,go-w"])
        .arg(scratch.path())
        .status()
        .unwrap();
    assert!(chmod.success());
    let mode = std::fs::metadata(scratch.join(STORE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0);
    let as_nobody = |args: &[&str]| {
        let mut command = scratch.command_at(&program);
        command.args(args).uid(65534).gid(65534);
        run_bounded(command)
    };
    let output = as_nobody(&["store", "log", "kv", "--store", STORE]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("kv@2"));
    let output = as_nobody(&["inspect", "kv@1", "--store", STORE]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("tcp:7005"));
    let output = as_nobody(&["store", "diff", "kv@1", "kv@2", "--store", STORE]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = as_nobody(&["set", "kv", "--store", STORE, "kv", "endpoint=tcp:1"]);
    assert!(
        fails_cleanly(&output)
            .to_lowercase()
            .contains("permission denied")
    );
}

#[test]
fn sigterm_stops_the_daemon_while_a_checkpoint_is_stuck() {
    use nix::fcntl::{Flock, FlockArg};
    let scratch = Scratch::new();
    rtap_ok_in(
        &scratch,
        &["save", "kv", "--port", LOOPBACK, "--store", STORE],
    );
    let mut daemon = scratch.spawn_rtwistd(&["-n", "--store", STORE, "-f", "kv"]);
    let address = daemon.listening_address();
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    // Another writer has the store: the checkpoint waits for it (up to 10 s).
    let folder = std::fs::File::open(scratch.join(STORE)).unwrap();
    let lock = Flock::lock(folder, FlockArg::LockExclusiveNonblock).unwrap();
    daemon.signal(Signal::SIGUSR2);
    memcache_store(address, "during", "stuck");
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for_line("the last checkpoint (SIGUSR2) did not complete before the stop");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    drop(lock);
    let (status, out, err) = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{out:#?} {err:#?}");
    assert!(
        out.iter()
            .any(|line| line.contains("Saved the kv application as kv@")),
        "{out:#?}"
    );
    let history = log_numbers(&scratch, STORE, "kv");
    assert!(history.len() >= 2, "{history:?}");
}

#[test]
fn gc_removes_the_files_of_the_snapshots_it_drops() {
    let scratch = Scratch::new();
    rtap_ok_in(
        &scratch,
        &["save", "kv", "--port", "tcp:7000", "--store", STORE],
    );
    for port in 7001..7020 {
        let endpoint = format!("endpoint=tcp:{port}");
        rtap_ok_in(&scratch, &["set", "kv", "--store", STORE, "kv", &endpoint]);
    }
    rtap_ok_in(
        &scratch,
        &["store", "tag", "kv@5", "keep", "--store", STORE],
    );
    let dir = scratch.join(STORE);
    assert_eq!(snapshot_files(&dir).len(), 20);
    let journal = std::fs::metadata(dir.join("journal")).unwrap().len();
    let out = rtap_ok_in(
        &scratch,
        &["store", "gc", "kv", "--keep", "2", "--store", STORE],
    );
    assert!(out.contains("kept 3 (kv@5, kv@19, kv@20)"), "{out}");
    let files = snapshot_files(&dir);
    assert_eq!(files.len(), 3, "{files:?}");
    let log = rtap_ok_in(
        &scratch,
        &["store", "log", "kv", "--store", STORE, "--json"],
    );
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let kept: u64 = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["size"].as_u64().unwrap())
        .sum();
    let on_disk: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(on_disk, kept);
    assert!(std::fs::metadata(dir.join("journal")).unwrap().len() < journal / 2);
    // Numbers are never reused.
    let out = rtap_ok_in(
        &scratch,
        &["set", "kv", "--store", STORE, "kv", "endpoint=tcp:6000"],
    );
    assert!(out.contains("kv@21"), "{out}");
}
