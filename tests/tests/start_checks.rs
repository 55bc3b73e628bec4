//! Checks at start, not at the end: rtwistd, once it dropped privileges, refuses to start
//! where it could not save its shutdown and checkpoint snapshots, naming the folder and the
//! user, instead of serving and losing the state at the end. Needs root (to drop to nobody).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use rtwisted_tests::{Scratch, nobody_when_root, root_or_skip, text};

#[test]
fn a_folder_the_user_cannot_write_is_refused_at_start_in_one_line() {
    let Some(nobody) = nobody_when_root("dropping privileges") else {
        return;
    };
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &[]);
    // The folder is root's, mode 0755: nobody reads it, cannot write it.
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = scratch.rtwistd(&["-n", "-f", "echo.tap", "-u", "nobody"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr,
        format!(
            "rtwistd: error: cannot save snapshots in '{}' as nobody (uid {}): permission denied; let that user write there, or run with another --rundir (or --store)\n",
            scratch.path().display(),
            nobody.uid
        )
    );
    // Without saves there is nothing to check: -o starts (and is stopped at once).
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "-f", "echo.tap", "-u", "nobody"]);
    daemon.listening_address();
    daemon.stop();

    // A writable run folder is fine.
    let run = scratch.join("run");
    std::fs::create_dir(&run).unwrap();
    nix::unistd::chown(&run, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "echo.tap", "-u", "nobody", "-d", "run"]);
    daemon.listening_address();
    daemon.stop();
    assert!(run.join("echo-shutdown.tap").exists());
}

#[test]
fn a_store_the_user_cannot_write_is_refused_at_start() {
    if !root_or_skip("dropping privileges") {
        return;
    }
    let scratch = Scratch::new();
    scratch.save_on_loopback("echo", &["--store", "db"]);
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = scratch.rtwistd(&["-n", "--store", "db", "-f", "echo", "-u", "nobody"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "rtwistd: error: cannot save snapshots in '{}' as nobody",
            scratch.join("db").display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
