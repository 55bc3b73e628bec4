//! Two SIGTERMs within 50 ms are one request, as `timeout` sends them (to the process and to its
//! group): the graceful stop and its save still happen. (A later second signal forcing the exit
//! is `daemon.rs`'s `a_second_signal_forces_exit_while_a_service_hangs_in_stop`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rtwisted_tests::{Scratch, memcache_request};

#[test]
fn a_sigterm_to_the_process_and_its_group_at_once_stops_gracefully_and_saves() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &[]);
    for round in 0..5 {
        let mut daemon = scratch.spawn_rtwistd(&["-n", "--resume", "-f", "kv.tap"]);
        let address = daemon.listening_address();
        let key = format!("round{round}");
        assert_eq!(
            memcache_request(address, format!("set {key} 0 0 1\r\nv\r\n").as_bytes()),
            "STORED\r\n"
        );
        // The test harness starts rtwistd in a session of its own: it leads its group.
        let pid = Pid::from_raw(daemon.pid());
        kill(pid, Signal::SIGTERM).unwrap();
        kill(Pid::from_raw(-daemon.pid()), Signal::SIGTERM).unwrap();
        let (status, out, err) = daemon.wait_exit();
        assert_eq!(status.code(), Some(0), "round {round}: {out:#?} {err:#?}");
        assert!(out.iter().any(|line| line.contains("Saved.")), "{out:#?}");
        assert!(
            !out.iter().any(|line| line.contains("second signal")),
            "{out:#?}"
        );
    }
    let doc = scratch.inspect_json_with(&["--all", "kv-shutdown.tap"]);
    let items = doc["services"]["children"][0]["fields"]["factory"]["table"]["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(items, 5, "a round's state was lost");
}

#[test]
fn a_second_sigterm_right_after_the_first_is_the_same_request() {
    let scratch = Scratch::new();
    let program = rtwisted_tests::example("custom_rtwistd");
    // A service that takes a second to stop, so the second signal lands during the stop.
    let mut daemon = scratch.spawn(scratch.command_at(&program).args([
        "-n",
        "--save",
        "sleeper",
        "--stop-seconds",
        "1",
    ]));
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for_line("Received SIGTERM, shutting down.");
    let out = daemon.stop();
    assert!(out.iter().any(|line| line.contains("Saved.")), "{out:#?}");
    assert!(scratch.join("sleeper-shutdown.tap").exists());
}
