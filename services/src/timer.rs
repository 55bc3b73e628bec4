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

use rtwisted_core::service::{NameError, Service, ServiceError, ServiceMeta, StopReason};

/// Work a [`TimerService`] runs every period. A failed run is logged; the timer keeps going.
///
/// Every task is `Any` (as every `'static` type is), so that snapshots can write the built-in
/// tasks without going through typetag.
#[typetag::serde(tag = "type")]
#[async_trait]
pub trait TimerTask: std::any::Any + Send + Sync + fmt::Debug {
    /// Runs once.
    async fn run(&self) -> Result<(), String>;
}

/// A timer: period and task are persisted; the schedule is not.
#[derive(Debug, Serialize, Deserialize)]
pub struct TimerService {
    #[serde(rename = "name", default)]
    meta: ServiceMeta,
    /// Seconds between the starts of two runs.
    period: f64,
    #[serde(
        serialize_with = "crate::dispatch::serialize_task",
        deserialize_with = "crate::dispatch::deserialize_task"
    )]
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
            meta: ServiceMeta::unnamed(),
            period,
            task,
            live: Live::default(),
        })
    }

    /// The same timer with a name.
    pub fn named(mut self, name: impl Into<String>) -> Result<Self, NameError> {
        self.meta = ServiceMeta::named(name)?;
        Ok(self)
    }
}

#[typetag::serde(name = "rtwisted.TimerService")]
#[async_trait]
impl Service for TimerService {
    fn meta(&self) -> &ServiceMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ServiceMeta {
        &mut self.meta
    }

    async fn start(&mut self) -> Result<(), ServiceError> {
        if !(self.period > 0.0 && self.period.is_finite()) {
            return Err(PeriodError(self.period).into());
        }
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = Arc::clone(&self.task);
        let period = Duration::from_secs_f64(self.period);
        let label = self.meta.name().unwrap_or("timer").to_owned();
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
                if let Err(error) = task.run().await {
                    tracing::warn!("{label}: {error}");
                }
            }
        }));
        self.live.stop = Some(stop);
        Ok(())
    }

    async fn stop(&mut self, _reason: StopReason) -> Result<(), ServiceError> {
        if let Some(stop) = self.live.stop.take() {
            stop.cancel();
        }
        if let Some(task) = self.live.task.take() {
            task.await?;
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(format!("every {}s", self.period))
    }
}

rtwisted_core::register_type!(service "rtwisted.TimerService", version 1);

/// Logs a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The line.
    pub message: String,
}

#[typetag::serde(name = "rtwisted.LogLine")]
#[async_trait]
impl TimerTask for LogLine {
    async fn run(&self) -> Result<(), String> {
        tracing::info!("{}", self.message);
        Ok(())
    }
}

rtwisted_core::register_type!(task "rtwisted.LogLine", version 1);

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

#[typetag::serde(name = "rtwisted.RunCommand")]
#[async_trait]
impl TimerTask for RunCommand {
    async fn run(&self) -> Result<(), String> {
        let status = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .map_err(|error| format!("cannot run '{}': {error}", self.program))?;
        if status.success() {
            tracing::debug!("'{}' finished", self.program);
            Ok(())
        } else {
            Err(format!("'{}' failed: {status}", self.program))
        }
    }
}

rtwisted_core::register_type!(task "rtwisted.RunCommand", version 1);

/// Creates a file, or sets its modification time to now: a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchFile {
    /// The file.
    pub path: PathBuf,
}

#[typetag::serde(name = "rtwisted.TouchFile")]
#[async_trait]
impl TimerTask for TouchFile {
    async fn run(&self) -> Result<(), String> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.set_modified(std::time::SystemTime::now())
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| {
            format!(
                "cannot touch '{}': {}",
                self.path.display(),
                rtwisted_core::describe_io(&error)
            )
        })
    }
}

rtwisted_core::register_type!(task "rtwisted.TouchFile", version 1);

/// A timer task that asks the runner for a checkpoint of the running tree each run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {}

#[typetag::serde(name = "rtwisted.Checkpoint")]
#[async_trait]
impl TimerTask for Checkpoint {
    async fn run(&self) -> Result<(), String> {
        if rtwisted_core::checkpoint::request() {
            Ok(())
        } else {
            Err("nothing saves checkpoints here: run the application with rtwistd".into())
        }
    }
}

rtwisted_core::register_type!(task "rtwisted.Checkpoint", version 1);
