//! `TimerService`: runs a task once at start and then every period (Twisted's `TimerService`),
//! never two runs at once; stop waits for a run in progress.
//!
//! Tasks are serializable trait objects ([`TimerTask`]) like protocol factories. Built in:
//! [`LogLine`] (log a message), [`RunCommand`] (run a program and log how it ended) and
//! [`TouchFile`] (create a file or update its modification time: a heartbeat a monitor can
//! watch); [`Checkpoint`] asks `rtwistd` to save the running tree.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use rtwisted_core::context::CheckpointRequester;
use rtwisted_core::{Service, ServiceError, StartContext, StopContext};

/// Work a [`TimerService`] runs every period. A failed run is logged; the timer keeps going.
///
/// Every task is `Any` (as every `'static` type is), so that snapshots can write the built-in
/// tasks without going through typetag.
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait TimerTask: std::any::Any + Send + Sync + fmt::Debug {
    /// Runs once.
    async fn run(&self, cx: &TaskContext) -> Result<(), TaskError>;
}

/// Why a run of a task failed: whatever the task reports (the timer logs it and goes on).
pub type TaskError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a run of a task gets from its timer.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    checkpoints: CheckpointRequester,
}

impl TaskContext {
    /// A context whose checkpoint requests go to `checkpoints`.
    pub fn new(checkpoints: CheckpointRequester) -> Self {
        TaskContext { checkpoints }
    }

    /// Asks the runner for a checkpoint of the running tree.
    pub fn checkpoints(&self) -> &CheckpointRequester {
        &self.checkpoints
    }
}

/// A built-in task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskFailure {
    /// The program could not be started.
    #[error("cannot run '{program}': {}", rtwisted_core::describe_io(.error))]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        error: std::io::Error,
    },
    /// The program ran and failed.
    #[error("'{program}' failed: {status}")]
    Exit {
        /// The program.
        program: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// A file could not be touched.
    #[error("cannot touch '{}': {}", .path.display(), rtwisted_core::describe_io(.error))]
    Touch {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A checkpoint was asked for, but nothing saves them.
    #[error("nothing saves checkpoints here: run the application with rtwistd")]
    NoCheckpoints,
}

/// A timer: period and task are persisted; the schedule is not.
#[derive(Debug, Serialize, Deserialize)]
pub struct TimerService {
    /// Seconds between the starts of two runs.
    period: f64,
    #[serde(with = "crate::codec::task")]
    task: Arc<dyn TimerTask>,
    #[serde(skip)]
    live: Live,
}

#[derive(Default)]
struct Live {
    stop: Option<CancellationToken>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("scheduled", &self.task.is_some())
            .finish()
    }
}

/// A period that is not a positive, finite number of seconds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a timer period must be a positive number of seconds, got {0}")]
pub struct PeriodError(pub f64);

impl TimerService {
    /// An unnamed timer running `task` every `period` seconds.
    pub fn new(period: f64, task: Arc<dyn TimerTask>) -> Result<Self, PeriodError> {
        if !(period > 0.0 && period.is_finite()) {
            return Err(PeriodError(period));
        }
        Ok(TimerService {
            period,
            task,
            live: Live::default(),
        })
    }
}

#[typetag::serde(name = TimerService::TAG)]
#[async_trait]
impl Service for TimerService {
    async fn start(&mut self, cx: &mut StartContext) -> Result<(), ServiceError> {
        if !(self.period > 0.0 && self.period.is_finite()) {
            return Err(PeriodError(self.period).into());
        }
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = Arc::clone(&self.task);
        let period = Duration::from_secs_f64(self.period);
        let label = crate::net::log_label(cx.path(), "timer");
        let task_cx = TaskContext {
            checkpoints: cx.checkpoints().clone(),
        };
        let counters = cx.counters().clone();
        let runs = counters.counter("runs_total");
        let errors = counters.counter("errors_total");
        self.live.task = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            // A run longer than the period delays the next one instead of bunching them up.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                // A run is never interrupted: stop waits for it.
                let outcome = task.run(&task_cx).await;
                runs.add(1);
                counters.set_fact(
                    "last_run",
                    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                );
                if let Err(error) = outcome {
                    errors.add(1);
                    counters.set_fact("last_error", error.to_string());
                    tracing::warn!("{label}: {error}");
                }
            }
        }));
        self.live.stop = Some(stop);
        Ok(())
    }

    async fn stop(&mut self, _cx: &StopContext) -> Result<(), ServiceError> {
        let (stop, task) = (self.live.stop.take(), self.live.task.take());
        Ok(crate::net::end_task(stop, task).await?)
    }

    fn summary(&self) -> Option<String> {
        Some(format!("every {}s", self.period))
    }
}

rtwisted_core::register_type!(service TimerService = "rtwisted.TimerService", version 1);

/// Logs a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The line.
    pub message: String,
}

#[typetag::serde(name = LogLine::TAG)]
#[async_trait]
impl TimerTask for LogLine {
    async fn run(&self, _cx: &TaskContext) -> Result<(), TaskError> {
        tracing::info!("{}", self.message);
        Ok(())
    }
}

rtwisted_core::register_type!(task LogLine = "rtwisted.LogLine", version 1);

/// Runs a program with arguments (no shell) and logs how it ended; a non-zero exit is a failed
/// run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCommand {
    /// The program.
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

#[typetag::serde(name = RunCommand::TAG)]
#[async_trait]
impl TimerTask for RunCommand {
    async fn run(&self, _cx: &TaskContext) -> Result<(), TaskError> {
        let status = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .map_err(|error| TaskFailure::Spawn {
                program: self.program.clone(),
                error,
            })?;
        if status.success() {
            tracing::debug!("'{}' finished", self.program);
            Ok(())
        } else {
            Err(TaskFailure::Exit {
                program: self.program.clone(),
                status,
            }
            .into())
        }
    }
}

rtwisted_core::register_type!(task RunCommand = "rtwisted.RunCommand", version 1);

/// Creates a file, or sets its modification time to now: a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchFile {
    /// The file.
    pub path: PathBuf,
}

#[typetag::serde(name = TouchFile::TAG)]
#[async_trait]
impl TimerTask for TouchFile {
    async fn run(&self, _cx: &TaskContext) -> Result<(), TaskError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.set_modified(std::time::SystemTime::now())
        })
        .await?
        .map_err(|error| {
            TaskFailure::Touch {
                path: self.path.clone(),
                error,
            }
            .into()
        })
    }
}

rtwisted_core::register_type!(task TouchFile = "rtwisted.TouchFile", version 1);

/// A timer task that asks the runner for a checkpoint of the running tree each run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {}

#[typetag::serde(name = Checkpoint::TAG)]
#[async_trait]
impl TimerTask for Checkpoint {
    async fn run(&self, cx: &TaskContext) -> Result<(), TaskError> {
        if cx.checkpoints().request() {
            Ok(())
        } else {
            Err(TaskFailure::NoCheckpoints.into())
        }
    }
}

rtwisted_core::register_type!(task Checkpoint = "rtwisted.Checkpoint", version 1);
