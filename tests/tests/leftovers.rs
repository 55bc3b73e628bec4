//! Temporary files left by a killed save are removed by the next save into the folder: only
//! files of rtwisted's own pattern (`.NAME.PID.XXXXXX.tmp`), and only when their writer is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpStream;

use rtwisted_tests::Scratch;

fn names(scratch: &Scratch) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The PID of a process that has exited (and was reaped): no process has it now.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_save_removes_the_temporaries_of_dead_writers_and_nothing_else() {
    let scratch = Scratch::new();
    scratch.rtap_ok(&["save", "echo", "--port", "tcp:7001"]);
    let dead = format!(".echo.tap.{}.Ab12Cd.tmp", dead_pid());
    let live = format!(".echo.tap.{}.Zz99Yy.tmp", std::process::id());
    let others = [
        "notes.tmp",
        ".echo.tap.tmp",
        ".other.Ab12Cd.tmp",
        "echo.tap.1.x",
    ];
    for name in [dead.as_str(), live.as_str()].iter().chain(others.iter()) {
        std::fs::write(scratch.join(name), b"half a snapshot").unwrap();
    }
    scratch.rtap_ok(&["set", "echo.tap", "echo", "endpoint=tcp:7002"]);
    let left = names(&scratch);
    assert!(!left.contains(&dead), "{left:?}");
    assert!(
        left.contains(&live),
        "a live writer's file was removed: {left:?}"
    );
    for other in others {
        assert!(
            left.iter().any(|name| name == other),
            "{other} was removed: {left:?}"
        );
    }
}

#[test]
fn saves_killed_mid_write_leave_nothing_behind_after_the_next_save() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    let big = "z".repeat(512 * 1024);
    for round in 0..4 {
        let mut daemon =
            scratch.spawn_rtwistd(&["-n", "-o", "-f", "kv.tap", "--checkpoint-every", "10ms"]);
        let mut stream = TcpStream::connect(daemon.listening_address()).unwrap();
        for key in 0..4 {
            stream
                .write_all(format!("set k{round}{key} 0 0 {}\r\n{big}\r\n", big.len()).as_bytes())
                .unwrap();
        }
        drop(stream);
        daemon.wait_for_line("Checkpoint (timer) saved");
        // A chaos delay, not a readiness wait: kill at varied points of the saves.
        std::thread::sleep(std::time::Duration::from_millis(round * 3));
        daemon.kill();
    }
    // One more save into the folder, by another writer.
    scratch.rtap_ok(&[
        "set",
        "kv-checkpoint.tap",
        "kv",
        "factory.max_value_bytes=2000000",
    ]);
    let left = names(&scratch);
    assert!(
        !left.iter().any(|name| name.ends_with(".tmp")),
        "temporary files left: {left:?}"
    );
}
