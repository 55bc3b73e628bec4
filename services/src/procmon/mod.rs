//! `ProcessMonitor`: keeps child processes running, restarting them with backoff (Twisted's
//! `twisted.runner.procmon.ProcessMonitor`).
//!
//! The monitor persists *what* to run ([`ProcessSpec`]: a name, a command, its arguments, extra
//! environment variables and a working directory) and *how* to restart it ([`RestartPolicy`]).
//! Nothing about the running children is persisted: a thawed monitor is stopped, and its start
//! runs every process afresh.
//!
//! # Behaviour
//!
//! - **Start** spawns one supervisor task per process. Each child runs with its arguments, the
//!   daemon's environment plus the spec's variables, the spec's working directory, stdin on
//!   `/dev/null` and stdout and stderr inherited (so they go wherever the daemon's go). Each
//!   child is the leader of its own process group, so a terminal's Ctrl-C reaches the daemon
//!   only and the daemon decides how its children stop.
//! - **Restarts.** When a child exits, the supervisor logs how, waits, and runs it again. The
//!   wait follows Twisted's backoff: it starts at `min_restart_delay`, doubles after each *quick
//!   death* (a run no longer than `threshold`, or a command that could not be spawned at all),
//!   is capped at `max_restart_delay`, and goes back to `min_restart_delay` after a run longer
//!   than `threshold`. (Twisted restarts a long-lived process at once; here it waits
//!   `min_restart_delay`, which is why that delay must be above zero.)
//! - **A command that cannot be spawned** (not found, not executable, a missing working
//!   directory) is logged and retried like a quick death; it never fails the service.
//! - **Stop** cancels every supervisor. A supervisor with a running child sends `SIGTERM` to
//!   the child's process group, waits up to `kill_time` for the child to exit, then sends
//!   `SIGKILL` to the group, and always waits for the child, so no zombie is left behind. A
//!   supervisor sleeping in its backoff ends at once. The stop returns when every child is gone
//!   and every supervisor has ended; keep `kill_time` below the lifecycle's stop deadline
//!   (`rtwistd --stop-timeout`, 10 seconds by default). Members of a group that outlive its
//!   leader (a daemonizing grandchild that ignores `SIGTERM`) are not waited for.
//! - [`ProcessMonitor::status`] shows, per process, its current pid, how often it was
//!   restarted, how its last run ended and the latest backoff delay.
//!
//! The default `max_restart_delay` is Twisted's: one hour.
//!
//! ```
//! use rtwisted_services::procmon::{ProcessMonitor, ProcessSpec};
//!
//! let monitor = ProcessMonitor::new()
//!     .with_process(ProcessSpec::new("sleeper", "sleep").with_args(["60"]))
//!     .unwrap();
//! assert_eq!(monitor.status()[0].name, "sleeper");
//! assert_eq!(monitor.status()[0].pid, None);
//! ```

mod supervisor;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use rtwisted_core::{Service, ServiceError, StartContext, StopContext};
use supervisor::{ProcessState, Supervisor, Timings};

/// The default `min_restart_delay`, in seconds (Twisted's).
pub const DEFAULT_MIN_RESTART_DELAY: f64 = 1.0;
/// The default `max_restart_delay`, in seconds (Twisted's: one hour).
pub const DEFAULT_MAX_RESTART_DELAY: f64 = 3600.0;
/// The default `threshold`, in seconds (Twisted's).
pub const DEFAULT_THRESHOLD: f64 = 1.0;
/// The default `kill_time`, in seconds (Twisted's).
pub const DEFAULT_KILL_TIME: f64 = 5.0;

/// The name a monitor without a name of its own uses in its log lines.
const DEFAULT_LABEL: &str = "procmon";

/// A monitor's configuration was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcmonError {
    /// A policy value is not a usable number of seconds.
    #[error("{field} must be a finite number of seconds, at least 0, got {value}")]
    Seconds {
        /// The policy field, e.g. `kill_time`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// `min_restart_delay` is zero.
    #[error(
        "min_restart_delay must be above 0 (a zero delay restarts a crashing process in a busy loop)"
    )]
    ZeroDelay,
    /// `min_restart_delay` is larger than `max_restart_delay`.
    #[error("min_restart_delay ({min}s) must not exceed max_restart_delay ({max}s)")]
    DelayOrder {
        /// `min_restart_delay`.
        min: f64,
        /// `max_restart_delay`.
        max: f64,
    },
    /// A process has an empty name.
    #[error("a process needs a non-empty name")]
    EmptyName,
    /// A process has an empty command.
    #[error("process '{0}' has an empty command")]
    EmptyCommand(String),
    /// Two processes share a name.
    #[error("there is already a process named '{0}'")]
    DuplicateName(String),
}

/// One process to keep running. Persisted as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The process's name, unique within its monitor; used in logs and [`ProcessStatus`].
    pub name: String,
    /// The program: a path, or a name looked up in `PATH`.
    pub command: String,
    /// The arguments, not including the program.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables added to (or replacing those of) the daemon's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory; the daemon's when absent.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

impl ProcessSpec {
    /// A process named `name` that runs `command` with no arguments.
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        ProcessSpec {
            name: name.into(),
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// The same process with these arguments appended.
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The same process with one more environment variable.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The same process run in `dir`.
    pub fn with_cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    fn validate(&self) -> Result<(), ProcmonError> {
        if self.name.is_empty() {
            return Err(ProcmonError::EmptyName);
        }
        if self.command.is_empty() {
            return Err(ProcmonError::EmptyCommand(self.name.clone()));
        }
        Ok(())
    }
}

/// How a monitor restarts and stops its processes; every value is in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// The first wait before restarting a process that died quickly, and the wait after a long
    /// run. Must be above zero.
    pub min_restart_delay: f64,
    /// The longest wait: the doubling stops here.
    pub max_restart_delay: f64,
    /// A run longer than this resets the wait to `min_restart_delay`; a shorter one doubles it.
    pub threshold: f64,
    /// How long a stopping child has between `SIGTERM` and `SIGKILL`.
    pub kill_time: f64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            min_restart_delay: DEFAULT_MIN_RESTART_DELAY,
            max_restart_delay: DEFAULT_MAX_RESTART_DELAY,
            threshold: DEFAULT_THRESHOLD,
            kill_time: DEFAULT_KILL_TIME,
        }
    }
}

impl RestartPolicy {
    /// Checks every value: finite and non-negative seconds, a positive minimum delay, and
    /// `min_restart_delay <= max_restart_delay`.
    pub fn validate(&self) -> Result<(), ProcmonError> {
        self.timings().map(|_| ())
    }

    fn timings(&self) -> Result<Timings, ProcmonError> {
        let seconds = |field: &'static str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|_| ProcmonError::Seconds { field, value })
        };
        let timings = Timings {
            min_restart_delay: seconds("min_restart_delay", self.min_restart_delay)?,
            max_restart_delay: seconds("max_restart_delay", self.max_restart_delay)?,
            threshold: seconds("threshold", self.threshold)?,
            kill_time: seconds("kill_time", self.kill_time)?,
        };
        if timings.min_restart_delay.is_zero() {
            return Err(ProcmonError::ZeroDelay);
        }
        if timings.min_restart_delay > timings.max_restart_delay {
            return Err(ProcmonError::DelayOrder {
                min: self.min_restart_delay,
                max: self.max_restart_delay,
            });
        }
        Ok(timings)
    }
}

/// How a process's last run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReport {
    /// It exited with this status code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// It could not be spawned at all (the operating system's error).
    SpawnFailed(String),
    /// Waiting for it failed, or it ended in a way that has no code and no signal.
    Other(String),
}

impl fmt::Display for ExitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReport::Code(code) => write!(f, "exited with code {code}"),
            ExitReport::Signal(signal) => match nix::sys::signal::Signal::try_from(*signal) {
                Ok(name) => write!(f, "killed by signal {signal} ({name})"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
            ExitReport::SpawnFailed(error) => write!(f, "could not be started: {error}"),
            ExitReport::Other(what) => f.write_str(what),
        }
    }
}

/// What a monitor knows about one of its processes right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    /// The process's name.
    pub name: String,
    /// The pid of the running child; `None` while it is not running (before the start, while
    /// waiting to restart, after the stop).
    pub pid: Option<u32>,
    /// How many times the process was started again since the monitor's start (failed spawns
    /// included).
    pub restarts: u64,
    /// How the last run ended, if one did.
    pub last_exit: Option<ExitReport>,
    /// The wait before the latest (or the upcoming) restart; zero before the first one.
    pub backoff: Duration,
}

/// Keeps a set of child processes running, restarting each with backoff when it exits, and
/// stops them (`SIGTERM`, then `SIGKILL` after `kill_time`) when the service stops. See the
/// [module docs](self).
///
/// Persisted: the name, the processes and the policy. The children, their supervisors and
/// their status are not.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProcessMonitor {
    #[serde(default)]
    processes: Vec<ProcessSpec>,
    #[serde(default = "default_min_restart_delay")]
    min_restart_delay: f64,
    #[serde(default = "default_max_restart_delay")]
    max_restart_delay: f64,
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default = "default_kill_time")]
    kill_time: f64,
    #[serde(skip)]
    live: Live,
}

fn default_min_restart_delay() -> f64 {
    DEFAULT_MIN_RESTART_DELAY
}

fn default_max_restart_delay() -> f64 {
    DEFAULT_MAX_RESTART_DELAY
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

fn default_kill_time() -> f64 {
    DEFAULT_KILL_TIME
}

type SharedState = Arc<Mutex<ProcessState>>;

/// The running part: the supervisors, how to stop them, and what they report.
#[derive(Default)]
struct Live {
    /// How logs name the monitor (its path), from the start on.
    label: Option<String>,
    shutdown: Option<CancellationToken>,
    supervisors: Vec<JoinHandle<()>>,
    /// Per process name; kept after a stop so the last exits stay visible.
    states: Vec<(String, SharedState)>,
}

impl Drop for Live {
    /// A monitor dropped while running still stops its children (while the runtime lives).
    fn drop(&mut self) {
        if let Some(shutdown) = &self.shutdown {
            shutdown.cancel();
        }
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("supervisors", &self.supervisors.len())
            .finish()
    }
}

impl Default for ProcessMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessMonitor {
    /// An unnamed monitor with no processes and the default policy.
    pub fn new() -> Self {
        let policy = RestartPolicy::default();
        ProcessMonitor {
            processes: Vec::new(),
            min_restart_delay: policy.min_restart_delay,
            max_restart_delay: policy.max_restart_delay,
            threshold: policy.threshold,
            kill_time: policy.kill_time,
            live: Live::default(),
        }
    }

    /// The same monitor with one more process; see [`add_process`](Self::add_process).
    pub fn with_process(mut self, spec: ProcessSpec) -> Result<Self, ProcmonError> {
        self.add_process(spec)?;
        Ok(self)
    }

    /// Adds a process. Its name must be non-empty and unique in this monitor, its command
    /// non-empty. A process added while the monitor runs starts with the next start.
    pub fn add_process(&mut self, spec: ProcessSpec) -> Result<(), ProcmonError> {
        spec.validate()?;
        if self.processes.iter().any(|other| other.name == spec.name) {
            return Err(ProcmonError::DuplicateName(spec.name));
        }
        self.processes.push(spec);
        Ok(())
    }

    /// The monitored processes, in the order they were added.
    pub fn processes(&self) -> &[ProcessSpec] {
        &self.processes
    }

    /// The same monitor with another policy (checked first).
    pub fn with_policy(mut self, policy: RestartPolicy) -> Result<Self, ProcmonError> {
        self.set_policy(policy)?;
        Ok(self)
    }

    /// Replaces the policy once it is checked; a running monitor uses it from its next start.
    pub fn set_policy(&mut self, policy: RestartPolicy) -> Result<(), ProcmonError> {
        policy.validate()?;
        self.min_restart_delay = policy.min_restart_delay;
        self.max_restart_delay = policy.max_restart_delay;
        self.threshold = policy.threshold;
        self.kill_time = policy.kill_time;
        Ok(())
    }

    /// The policy.
    pub fn policy(&self) -> RestartPolicy {
        RestartPolicy {
            min_restart_delay: self.min_restart_delay,
            max_restart_delay: self.max_restart_delay,
            threshold: self.threshold,
            kill_time: self.kill_time,
        }
    }

    /// The status of every process, in the order they were added.
    pub fn status(&self) -> Vec<ProcessStatus> {
        self.processes
            .iter()
            .map(|spec| {
                let live = self
                    .live
                    .states
                    .iter()
                    .find(|(name, _)| *name == spec.name)
                    .map(|(_, state)| state.lock().unwrap_or_else(PoisonError::into_inner).clone())
                    .unwrap_or_default();
                ProcessStatus {
                    name: spec.name.clone(),
                    pid: live.pid,
                    restarts: live.restarts,
                    last_exit: live.last_exit,
                    backoff: live.backoff,
                }
            })
            .collect()
    }

    fn label(&self) -> String {
        self.live
            .label
            .clone()
            .unwrap_or_else(|| DEFAULT_LABEL.to_owned())
    }

    /// Checks what a snapshot may hold but the builders refuse.
    fn validate(&self) -> Result<Timings, ProcmonError> {
        let timings = self.policy().timings()?;
        for (index, spec) in self.processes.iter().enumerate() {
            spec.validate()?;
            if self.processes[..index]
                .iter()
                .any(|other| other.name == spec.name)
            {
                return Err(ProcmonError::DuplicateName(spec.name.clone()));
            }
        }
        Ok(timings)
    }
}

#[typetag::serde(name = ProcessMonitor::TAG)]
#[async_trait::async_trait]
impl Service for ProcessMonitor {
    async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        let timings = self.validate()?;
        let label = crate::net::log_label(cx.path(), DEFAULT_LABEL);
        let shutdown = CancellationToken::new();
        let mut supervisors = Vec::with_capacity(self.processes.len());
        let mut states = Vec::with_capacity(self.processes.len());
        for spec in &self.processes {
            let state = SharedState::default();
            let supervisor = Supervisor {
                label: label.clone(),
                spec: spec.clone(),
                timings,
                state: Arc::clone(&state),
                shutdown: shutdown.clone(),
                counters: cx.counters().clone(),
            };
            supervisors.push(tokio::spawn(supervisor.run()));
            states.push((spec.name.clone(), state));
        }
        self.live = Live {
            label: Some(label),
            shutdown: Some(shutdown),
            supervisors,
            states,
        };
        Ok(())
    }

    async fn stop(&mut self, cx: &StopContext) -> Result<(), ServiceError> {
        let reason = cx.reason();
        if let Some(shutdown) = self.live.shutdown.take() {
            shutdown.cancel();
        }
        // Every supervisor is already stopping its child; wait for each of them in turn. If
        // this future is dropped (the stop deadline), the rest finish on their own.
        let supervisors = std::mem::take(&mut self.live.supervisors);
        let count = supervisors.len();
        let mut failed = 0;
        for supervisor in supervisors {
            if let Err(error) = supervisor.await {
                tracing::error!("{}: a supervisor task failed: {error}", self.label());
                failed += 1;
            }
        }
        tracing::info!(
            "{}: stopped {count} process{} ({reason})",
            self.label(),
            if count == 1 { "" } else { "es" }
        );
        if failed > 0 {
            return Err(format!("{failed} of {count} supervisor tasks failed").into());
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        let names: Vec<&str> = self
            .processes
            .iter()
            .map(|spec| spec.name.as_str())
            .collect();
        Some(match names.len() {
            0 => "no processes".to_owned(),
            1 => format!("1 process: {}", names.join(", ")),
            n => format!("{n} processes: {}", names.join(", ")),
        })
    }
}

rtwisted_core::register_type!(service ProcessMonitor = "rtwisted.ProcessMonitor", version 1);
