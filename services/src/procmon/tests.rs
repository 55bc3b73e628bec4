//! Tests of the process monitor with real processes, driven through the lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::json;

use super::supervisor::Backoff;
use super::*;
use rtwisted_core::{Child, Lifecycle, MultiService, StopReason};

/// How long any wait for a process may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

fn fast_policy() -> RestartPolicy {
    RestartPolicy {
        min_restart_delay: 0.05,
        max_restart_delay: 0.4,
        threshold: 1.0,
        kill_time: 0.2,
    }
}

fn sh(name: &str, script: &str) -> ProcessSpec {
    ProcessSpec::new(name, "/bin/sh").with_args(["-c", script])
}

fn monitor_of(processes: Vec<ProcessSpec>, policy: RestartPolicy) -> ProcessMonitor {
    let mut monitor = ProcessMonitor::new().with_policy(policy).unwrap();
    for spec in processes {
        monitor.add_process(spec).unwrap();
    }
    monitor
}

/// A `sleep 100` named `sleeper`.
fn sleeper() -> ProcessSpec {
    ProcessSpec::new("sleeper", "sleep").with_args(["100"])
}

/// A started tree with a monitor of one process, `spec`, under `policy`.
async fn started_one(spec: ProcessSpec, policy: RestartPolicy) -> MultiService {
    started(monitor_of(vec![spec], policy)).await
}

async fn started(monitor: ProcessMonitor) -> MultiService {
    let mut root = MultiService::new();
    root.insert_named("procmon", Box::new(monitor)).unwrap();
    Lifecycle::default().start(&mut root).await.unwrap();
    assert!(root.get("procmon").unwrap().running());
    root
}

/// Stops the tree and returns how long the stop took.
async fn stop(root: &mut MultiService) -> Duration {
    let began = Instant::now();
    Lifecycle::default()
        .stop(root, StopReason::Shutdown)
        .await
        .unwrap();
    assert!(!root.get("procmon").unwrap().running());
    began.elapsed()
}

/// Waits until the status of process `name` passes `until` (that is, `what` happened).
async fn status_once(
    root: &MultiService,
    name: &str,
    what: &str,
    until: impl Fn(&ProcessStatus) -> bool,
) -> ProcessStatus {
    eventually(what, || Some(status(root, name)).filter(|now| until(now))).await
}

fn monitor(root: &MultiService) -> &ProcessMonitor {
    root.get("procmon")
        .unwrap()
        .service()
        .downcast_ref::<ProcessMonitor>()
        .unwrap()
}

fn status(root: &MultiService, name: &str) -> ProcessStatus {
    monitor(root)
        .status()
        .into_iter()
        .find(|status| status.name == name)
        .unwrap()
}

/// Polls `probe` every 10 ms until it gives a value, failing the test after [`PATIENCE`].
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True while `pid` names a process that is not a zombie.
fn alive(pid: u32) -> bool {
    let exists = kill(Pid::from_raw(i32::try_from(pid).unwrap()), None).is_ok();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.split_whitespace().next() == Some("Z"))
    });
    exists && !zombie
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtwisted-procmon-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn backoff_doubles_on_quick_deaths_caps_and_resets_after_a_long_run() {
    let mut backoff = Backoff::new(secs(0.1), secs(0.5));
    let quick: Vec<Duration> = (0..5).map(|_| backoff.after_run(true)).collect();
    assert_eq!(
        quick,
        [secs(0.1), secs(0.2), secs(0.4), secs(0.5), secs(0.5)]
    );
    assert_eq!(backoff.after_run(false), secs(0.1));
    assert_eq!(backoff.after_run(true), secs(0.1));
    assert_eq!(backoff.after_run(true), secs(0.2));
}

#[tokio::test]
async fn a_started_process_is_alive() {
    let mut root = started_one(sleeper(), fast_policy()).await;
    let pid = eventually("a pid", || status(&root, "sleeper").pid).await;
    assert!(alive(pid));
    let now = status(&root, "sleeper");
    assert_eq!((now.restarts, now.last_exit), (0, None));
    stop(&mut root).await;
    assert!(!alive(pid));
}

#[tokio::test]
async fn stop_sends_sigterm_and_reaps_the_child() {
    // The default kill time (5 s): a child that obeys SIGTERM is gone long before.
    let mut root = started_one(sleeper(), RestartPolicy::default()).await;
    let pid = eventually("a pid", || status(&root, "sleeper").pid).await;
    let took = stop(&mut root).await;
    assert!(took < Duration::from_secs(4), "stop took {took:?}");
    let after = status(&root, "sleeper");
    assert_eq!(after.pid, None);
    assert_eq!(
        after.last_exit,
        Some(ExitReport::Signal(nix::sys::signal::Signal::SIGTERM as i32))
    );
    assert!(!alive(pid), "pid {pid} is still alive (or a zombie)");
}

#[tokio::test]
async fn a_process_that_exits_is_restarted_with_a_growing_delay() {
    let began = Instant::now();
    let mut root = started_one(ProcessSpec::new("quick", "true"), fast_policy()).await;
    let now = status_once(&root, "quick", "four restarts", |now| now.restarts >= 4).await;
    // Quick deaths: waits of 0.05, 0.1, 0.2, then 0.4 (the cap) before the fourth restart.
    assert!(
        began.elapsed() >= secs(0.05 + 0.1 + 0.2 + 0.4),
        "four restarts after {:?}",
        began.elapsed()
    );
    assert_eq!(now.backoff, secs(0.4));
    assert_eq!(now.last_exit, Some(ExitReport::Code(0)));
    stop(&mut root).await;
}

#[tokio::test]
async fn a_run_longer_than_the_threshold_resets_the_delay() {
    let dir = scratch("reset");
    let counter = quoted(&dir.join("runs"));
    // Two quick deaths (waits 0.05 then 0.1), then runs of 0.3 s, longer than the threshold.
    let script = format!(
        "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; \
         if [ $n -ge 3 ]; then sleep 0.3; fi"
    );
    let policy = RestartPolicy {
        min_restart_delay: 0.05,
        max_restart_delay: 5.0,
        threshold: 0.15,
        kill_time: 0.2,
    };
    let mut root = started_one(sh("flaky", &script), policy).await;
    let now = status_once(&root, "flaky", "three restarts", |now| now.restarts >= 3).await;
    assert_eq!(now.backoff, secs(0.05), "the long run reset the delay");
    stop(&mut root).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_kill_time() {
    let dir = scratch("stubborn");
    let ready = dir.join("ready");
    // It writes `ready` in its working directory once the trap is set.
    let stubborn = sh(
        "stubborn",
        "trap '' TERM; echo ready > ready; exec sleep 100",
    );
    let mut root = started_one(stubborn.with_cwd(&dir), fast_policy()).await;
    let pid = eventually("the trap to be set", || {
        ready.exists().then_some(())?;
        status(&root, "stubborn").pid
    })
    .await;
    let took = stop(&mut root).await;
    assert!(
        took >= secs(0.2),
        "stop took {took:?}, less than the kill time"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    let after = status(&root, "stubborn");
    assert_eq!(
        after.last_exit,
        Some(ExitReport::Signal(nix::sys::signal::Signal::SIGKILL as i32))
    );
    assert_eq!(after.pid, None);
    assert!(!alive(pid));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn stop_signals_the_childs_whole_process_group() {
    let dir = scratch("group");
    let grandchild = dir.join("grandchild");
    let file = quoted(&grandchild);
    let script = format!("sleep 100 & echo $! > {file}.tmp && mv {file}.tmp {file}; wait");
    let mut root = started_one(sh("parent", &script), fast_policy()).await;
    let pid: u32 = eventually("the grandchild's pid", || {
        std::fs::read_to_string(&grandchild)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    assert!(alive(pid));
    stop(&mut root).await;
    eventually("the grandchild to be gone", || (!alive(pid)).then_some(())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_command_is_retried_without_failing_the_service() {
    let mut root = started_one(
        ProcessSpec::new("ghost", "/nonexistent/rtwisted-procmon-no-such-command"),
        fast_policy(),
    )
    .await;
    let now = status_once(&root, "ghost", "two retries", |now| now.restarts >= 2).await;
    assert!(
        matches!(now.last_exit, Some(ExitReport::SpawnFailed(_))),
        "{:?}",
        now.last_exit
    );
    assert_eq!(now.pid, None);
    assert!(root.get("procmon").unwrap().running());
    stop(&mut root).await;
}

#[tokio::test]
async fn stop_during_the_backoff_returns_promptly() {
    let policy = RestartPolicy {
        min_restart_delay: 30.0,
        max_restart_delay: 60.0,
        ..fast_policy()
    };
    let mut root = started_one(ProcessSpec::new("once", "true"), policy).await;
    let backing_off = |now: &ProcessStatus| now.pid.is_none() && now.backoff == secs(30.0);
    status_once(&root, "once", "the backoff", backing_off).await;
    let took = stop(&mut root).await;
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert_eq!(status(&root, "once").restarts, 0);
}

#[tokio::test]
async fn a_stopped_monitor_starts_again() {
    let mut root = started_one(sleeper(), fast_policy()).await;
    let first = eventually("a pid", || status(&root, "sleeper").pid).await;
    stop(&mut root).await;
    assert!(!alive(first));

    Lifecycle::default().start(&mut root).await.unwrap();
    assert!(root.get("procmon").unwrap().running());
    let second = eventually("a new pid", || status(&root, "sleeper").pid).await;
    assert!(alive(second));
    assert_eq!(status(&root, "sleeper").restarts, 0);
    stop(&mut root).await;
    assert!(!alive(second));
}

#[tokio::test]
async fn the_environment_and_working_directory_are_applied() {
    let dir = scratch("env");
    let spec = sh(
        "env",
        "printf '%s %s' \"$RTWISTED_PROCMON_TEST\" \"$(pwd -P)\" > out.tmp && mv out.tmp out; \
         exec sleep 100",
    )
    .with_env("RTWISTED_PROCMON_TEST", "hello")
    .with_cwd(&dir);
    let mut root = started_one(spec, fast_policy()).await;
    let out = eventually("the output", || {
        std::fs::read_to_string(dir.join("out")).ok()
    })
    .await;
    let real = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(out, format!("hello {}", real.display()));
    stop(&mut root).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_bad_policy_from_a_snapshot_fails_the_start() {
    let service: Child = serde_json::from_value(json!({
        "type": "rtwisted.ProcessMonitor",
        "name": "procmon",
        "processes": [{"name": "sleeper", "command": "sleep", "args": ["100"]}],
        "min_restart_delay": -1.0,
    }))
    .unwrap();
    let mut root = MultiService::new();
    root.insert(service).unwrap();
    let error = Lifecycle::default().start(&mut root).await.unwrap_err();
    assert!(error.to_string().contains("min_restart_delay"), "{error}");
    assert!(!root.get("procmon").unwrap().running());
    assert_eq!(status(&root, "sleeper").pid, None);
}

#[test]
fn builders_refuse_bad_processes_and_policies() {
    let monitor = ProcessMonitor::new()
        .with_process(ProcessSpec::new("a", "true"))
        .unwrap();
    assert_eq!(
        monitor
            .with_process(ProcessSpec::new("a", "false"))
            .unwrap_err(),
        ProcmonError::DuplicateName("a".into())
    );
    assert_eq!(
        ProcessMonitor::new()
            .with_process(ProcessSpec::new("", "true"))
            .unwrap_err(),
        ProcmonError::EmptyName
    );
    assert_eq!(
        ProcessMonitor::new()
            .with_process(ProcessSpec::new("a", ""))
            .unwrap_err(),
        ProcmonError::EmptyCommand("a".into())
    );
    let bad = |policy: RestartPolicy| ProcessMonitor::new().with_policy(policy).unwrap_err();
    let base = RestartPolicy::default();
    assert_eq!(
        bad(RestartPolicy {
            kill_time: f64::NAN,
            ..base
        })
        .to_string()
        .split(',')
        .next(),
        Some("kill_time must be a finite number of seconds")
    );
    assert_eq!(
        bad(RestartPolicy {
            threshold: -1.0,
            ..base
        }),
        ProcmonError::Seconds {
            field: "threshold",
            value: -1.0
        }
    );
    assert_eq!(
        bad(RestartPolicy {
            min_restart_delay: 0.0,
            ..base
        }),
        ProcmonError::ZeroDelay
    );
    assert_eq!(
        bad(RestartPolicy {
            min_restart_delay: 10.0,
            max_restart_delay: 5.0,
            ..base
        }),
        ProcmonError::DelayOrder {
            min: 10.0,
            max: 5.0
        }
    );
}

#[test]
fn status_before_the_start_lists_every_process() {
    let monitor = monitor_of(
        vec![ProcessSpec::new("a", "true"), ProcessSpec::new("b", "true")],
        RestartPolicy::default(),
    );
    let status = monitor.status();
    assert_eq!(
        status.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(status.iter().all(|s| s.pid.is_none()
        && s.restarts == 0
        && s.last_exit.is_none()
        && s.backoff.is_zero()));
    let service: &dyn Service = &monitor;
    assert_eq!(service.summary().as_deref(), Some("2 processes: a, b"));
}

fn full_monitor() -> ProcessMonitor {
    let spec = ProcessSpec::new("sleeper", "sleep")
        .with_args(["100"])
        .with_env("B", "2")
        .with_env("A", "1")
        .with_cwd("/");
    monitor_of(
        vec![spec],
        RestartPolicy {
            min_restart_delay: 0.5,
            max_restart_delay: 60.0,
            threshold: 2.0,
            kill_time: 3.0,
        },
    )
}

#[test]
fn the_spec_round_trips_through_json_without_live_state() {
    let boxed = Child::named("procmon", Box::new(full_monitor())).unwrap();
    let value = serde_json::to_value(&boxed).unwrap();
    assert_eq!(
        value,
        json!({
            "type": "rtwisted.ProcessMonitor",
            "name": "procmon",
            "processes": [{
                "name": "sleeper",
                "command": "sleep",
                "args": ["100"],
                "env": {"A": "1", "B": "2"},
                "cwd": "/",
            }],
            "min_restart_delay": 0.5,
            "max_restart_delay": 60.0,
            "threshold": 2.0,
            "kill_time": 3.0,
        })
    );
    let back: Child = serde_json::from_value(value.clone()).unwrap();
    assert!(!back.running());
    let monitor = back.service().downcast_ref::<ProcessMonitor>().unwrap();
    assert_eq!(monitor.processes(), full_monitor().processes());
    assert_eq!(monitor.policy(), full_monitor().policy());
    assert_eq!(serde_json::to_value(&back).unwrap(), value);

    let info = rtwisted_core::registry::lookup("rtwisted.ProcessMonitor").unwrap();
    assert_eq!(
        (info.kind, info.version),
        (rtwisted_core::registry::TypeKind::Service, 1)
    );
}

#[test]
fn a_minimal_snapshot_gets_the_default_policy() {
    let service: Child = serde_json::from_value(json!({
        "type": "rtwisted.ProcessMonitor",
        "name": "procmon",
        "processes": [{"name": "quick", "command": "true"}],
    }))
    .unwrap();
    let monitor = service.service().downcast_ref::<ProcessMonitor>().unwrap();
    assert_eq!(monitor.policy(), RestartPolicy::default());
    assert_eq!(monitor.processes(), [ProcessSpec::new("quick", "true")]);
}

#[tokio::test]
async fn a_running_monitor_serializes_like_a_stopped_one() {
    let before =
        serde_json::to_value(Child::named("procmon", Box::new(full_monitor())).unwrap()).unwrap();
    let mut root = started(full_monitor()).await;
    eventually("a pid", || status(&root, "sleeper").pid).await;
    assert_eq!(
        serde_json::to_value(root.get("procmon").unwrap()).unwrap(),
        before
    );
    stop(&mut root).await;
}
