//! One supervisor task per monitored process: spawn, wait, back off, respawn; on shutdown,
//! `SIGTERM`, then `SIGKILL` after the kill time, and always reap the child.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::{ExitReport, ProcessSpec};

/// A checked [`RestartPolicy`](super::RestartPolicy), as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timings {
    pub(super) min_restart_delay: Duration,
    pub(super) max_restart_delay: Duration,
    pub(super) threshold: Duration,
    pub(super) kill_time: Duration,
}

/// What a supervisor reports about its process; read by `ProcessMonitor::status`.
#[derive(Debug, Clone, Default)]
pub(super) struct ProcessState {
    pub(super) pid: Option<u32>,
    pub(super) restarts: u64,
    pub(super) last_exit: Option<ExitReport>,
    pub(super) backoff: Duration,
}

impl ProcessState {
    /// One line for `rtap status`: `pid 1234, 2 restarts, last exited with code 1`.
    pub(super) fn describe(&self) -> String {
        let mut text = match self.pid {
            Some(pid) => format!("pid {pid}"),
            None => "not running".to_owned(),
        };
        text.push_str(&format!(
            ", {} restart{}",
            self.restarts,
            if self.restarts == 1 { "" } else { "s" }
        ));
        if let Some(exit) = &self.last_exit {
            text.push_str(&format!(", last {exit}"));
        }
        text
    }
}

/// Twisted's procmon backoff: the wait starts at the minimum, doubles after each quick death
/// up to the maximum, and goes back to the minimum after a long run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max: max.max(min),
        }
    }

    /// The wait before the next start, after a run that was `quick` (no longer than the
    /// threshold, or not spawned at all) or not.
    pub(super) fn after_run(&mut self, quick: bool) -> Duration {
        if quick {
            let wait = self.next;
            self.next = self.next.saturating_mul(2).min(self.max);
            wait
        } else {
            self.next = self.min;
            self.min
        }
    }
}

/// Everything one supervisor task needs.
pub(super) struct Supervisor {
    /// The monitor's name, for log lines.
    pub(super) label: String,
    pub(super) spec: ProcessSpec,
    pub(super) timings: Timings,
    pub(super) state: Arc<Mutex<ProcessState>>,
    pub(super) shutdown: CancellationToken,
    /// The monitor's live counters: each process shows there as a fact.
    pub(super) counters: rtwisted_core::context::Counters,
}

impl Supervisor {
    /// Runs the process until the shutdown token is cancelled; then stops the child, if one
    /// runs, and returns once it is reaped.
    pub(super) async fn run(self) {
        let Supervisor {
            label,
            spec,
            timings,
            state,
            shutdown,
            counters,
        } = self;
        let name = spec.name.as_str();
        let fact = format!("process {name}");
        let update = |change: &dyn Fn(&mut ProcessState)| {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            change(&mut state);
            counters.set_fact(fact.clone(), state.describe());
        };
        let mut backoff = Backoff::new(timings.min_restart_delay, timings.max_restart_delay);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let began = Instant::now();
            let (report, quick) = match spawn(&spec) {
                Err(error) => {
                    tracing::warn!("{label}: cannot start {name} ({}): {error}", spec.command);
                    (ExitReport::SpawnFailed(error.to_string()), true)
                }
                Ok(mut child) => {
                    let pid = child.id();
                    let shown = pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string());
                    tracing::info!("{label}: started {name} (pid {shown})");
                    update(&|state| state.pid = pid);
                    let exited = tokio::select! {
                        status = child.wait() => Some(status),
                        () = shutdown.cancelled() => None,
                    };
                    let Some(status) = exited else {
                        let report = terminate(&mut child, timings.kill_time, &label, name).await;
                        tracing::info!("{label}: {name} (pid {shown}) stopped: {report}");
                        update(&|state| {
                            state.pid = None;
                            state.last_exit = Some(report.clone());
                        });
                        return;
                    };
                    // A failed wait drops the child here, which kills it (kill_on_drop).
                    let report = report_of_wait(status);
                    let ran = began.elapsed();
                    if report == ExitReport::Code(0) {
                        tracing::info!(
                            "{label}: {name} (pid {shown}) {report} after {:.2}s",
                            ran.as_secs_f64()
                        );
                    } else {
                        tracing::warn!(
                            "{label}: {name} (pid {shown}) {report} after {:.2}s",
                            ran.as_secs_f64()
                        );
                    }
                    (report, ran <= timings.threshold)
                }
            };
            update(&|state| {
                state.pid = None;
                state.last_exit = Some(report.clone());
            });
            if shutdown.is_cancelled() {
                return;
            }
            let wait = backoff.after_run(quick);
            update(&|state| state.backoff = wait);
            tracing::info!("{label}: restarting {name} in {:.2}s", wait.as_secs_f64());
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            update(&|state| state.restarts += 1);
        }
    }
}

fn spawn(spec: &ProcessSpec) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.command);
    command
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::null())
        // Its own process group: signals from the terminal reach the daemon only, and a stop
        // reaches the child's own children too.
        .process_group(0)
        // Only if the supervisor itself is dropped (runtime shutdown, panic): never leave a
        // child running unsupervised.
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command.spawn()
}

/// Stops a running child: `SIGTERM` to its group, `SIGKILL` after `kill_time`; returns once
/// the child is reaped.
async fn terminate(child: &mut Child, kill_time: Duration, label: &str, name: &str) -> ExitReport {
    // The pid is known until the child is reaped, and only this task reaps it, so the signals
    // below cannot reach an unrelated process that reused the pid.
    if let Some(pid) = child.id() {
        signal_group(pid, Signal::SIGTERM);
        match tokio::time::timeout(kill_time, child.wait()).await {
            Ok(status) => return report_of_wait(status),
            Err(_elapsed) => {
                tracing::warn!(
                    "{label}: {name} (pid {pid}) did not exit {:.2}s after SIGTERM; sending SIGKILL",
                    kill_time.as_secs_f64()
                );
                if !signal_group(pid, Signal::SIGKILL) {
                    let _ = child.start_kill();
                }
            }
        }
    }
    report_of_wait(child.wait().await)
}

/// Sends `signal` to the process group `pid` leads, or to `pid` alone if that fails.
fn signal_group(pid: u32, signal: Signal) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let pid = Pid::from_raw(raw);
    killpg(pid, signal).is_ok() || kill(pid, signal).is_ok()
}

fn report_of_wait(status: std::io::Result<ExitStatus>) -> ExitReport {
    match status {
        Ok(status) => report_of(status),
        Err(error) => ExitReport::Other(format!("could not be waited for: {error}")),
    }
}

fn report_of(status: ExitStatus) -> ExitReport {
    if let Some(code) = status.code() {
        ExitReport::Code(code)
    } else if let Some(signal) = status.signal() {
        ExitReport::Signal(signal)
    } else {
        ExitReport::Other(format!("ended: {status}"))
    }
}
