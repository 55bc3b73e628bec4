//! Checks at start, not at the end: rtwistd, once it dropped privileges, refuses to start
//! where it could not save its shutdown and checkpoint snapshots, naming the folder and the
//! user, instead of serving and losing the state at the end. Needs root (to drop to nobody).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use rtwisted_tests::{Scratch, text};

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn a_folder_the_user_cannot_write_is_refused_at_start_in_one_line() {
    if !is_root() {
        eprintln!(
            "SKIPPED: dropping privileges needs root, and this test runs as uid {}",
            nix::unistd::Uid::effective()
        );
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a 'nobody' user");
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:0:interface=127.0.0.1"]);
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
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit().0.code(), Some(0));

    // A writable run folder is fine.
    let run = scratch.join("run");
    std::fs::create_dir(&run).unwrap();
    nix::unistd::chown(&run, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "echo.tap", "-u", "nobody", "-d", "run"]);
    daemon.listening_address();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, out, err) = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{out:#?} {err:#?}");
    assert!(run.join("echo-shutdown.tap").exists());
}

#[test]
fn a_store_the_user_cannot_write_is_refused_at_start() {
    if !is_root() {
        eprintln!("SKIPPED: dropping privileges needs root");
        return;
    }
    let scratch = Scratch::new();
    scratch.rtap_ok(&[
        "save",
        "echo",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--store",
        "db",
    ]);
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
