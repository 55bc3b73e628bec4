//! The lifecycle driver: the only code that calls service hooks and changes `running`.
//!
//! [`Lifecycle`] walks a tree depth-first and keeps each service's [`LifecycleState`]:
//!
//! - **privileged start** runs each service's `privileged_start` in insertion order (parent
//!   before children), while the process may still hold root;
//! - **start** runs each service's `start` (its `privileged_start` first, if that has not run),
//!   parent before children, children in insertion order. If any service fails, everything
//!   that had started (or privileged-started) is stopped again in reverse order with
//!   [`StopReason::Rollback`], and the error names the failing service's path;
//! - **stop** stops children in reverse order, then the parent. Each service's own stop hook
//!   has a deadline; a service that fails or hangs is reported by path and the stop goes on,
//!   so every service gets its turn;
//! - starting a running service and stopping a stopped one are no-ops, so nothing is ever
//!   started twice (Twisted #4366, #4649) and nothing that never started is stopped
//!   (Twisted #6202, #6206).
//!
//! A collection shared between tasks is wrapped in a `tokio::sync::Mutex`: a task that adds a
//! child while another task is starting the tree waits for the lock, then sees the parent
//! running and starts the child exactly once.
//!
//! ```
//! use rtwisted_core::{Lifecycle, MultiService, Service, StopReason};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut root = MultiService::new();
//! root.insert(Box::new(MultiService::named("child").unwrap())).unwrap();
//! let lifecycle = Lifecycle::default();
//! lifecycle.start(&mut root).await.unwrap();
//! assert!(root.get("child").unwrap().running());
//! lifecycle.stop(&mut root, StopReason::Shutdown).await.unwrap();
//! assert!(!root.get("child").unwrap().running());
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::multi::{MultiService, TreeError};
use crate::path::{PathSegment, ServicePath};
use crate::service::{LifecycleState, Service, ServiceError, StopReason};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The default deadline for one service's own stop hook.
pub const DEFAULT_STOP_DEADLINE: Duration = Duration::from_secs(10);

tokio::task_local! {
    static STOP_DEADLINE: tokio::time::Instant;
}

/// Inside a service's `stop` hook: the moment the driver abandons it. A service that drains
/// work gracefully (a server letting connections finish) plans its stop around it. `None`
/// outside a stop hook.
pub fn stop_deadline() -> Option<tokio::time::Instant> {
    STOP_DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Which hook failed during a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPhase {
    /// `privileged_start`.
    Privileged,
    /// `start`.
    Start,
}

/// A service failed to start; everything that had started was stopped again.
#[derive(Debug, thiserror::Error)]
#[error("service '{path}' failed to start: {source}{}", rollback_text(.rollback))]
pub struct StartError {
    /// The failing service's path from the service the start was called on (for
    /// `add_service`, from the parent).
    pub path: ServicePath,
    /// The hook that failed.
    pub phase: StartPhase,
    /// What the service reported.
    #[source]
    pub source: ServiceError,
    /// Failures while undoing the partial start, if any.
    pub rollback: Option<StopError>,
}

fn rollback_text(rollback: &Option<StopError>) -> String {
    match rollback {
        Some(error) => format!(" (and while undoing the start: {error})"),
        None => String::new(),
    }
}

/// How one service failed to stop.
#[derive(Debug)]
pub enum StopFailureKind {
    /// Its stop hook returned an error.
    Failed(ServiceError),
    /// Its stop hook was still running when the deadline passed; it was abandoned.
    TimedOut(Duration),
}

/// One service that failed to stop cleanly.
#[derive(Debug)]
pub struct StopFailure {
    /// The service, relative to the service the stop was called on.
    pub path: ServicePath,
    /// What went wrong.
    pub kind: StopFailureKind,
}

impl fmt::Display for StopFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StopFailureKind::Failed(error) => write!(f, "'{}' failed to stop: {error}", self.path),
            StopFailureKind::TimedOut(deadline) => write!(
                f,
                "'{}' did not stop within {:.1}s and was abandoned",
                self.path,
                deadline.as_secs_f64()
            ),
        }
    }
}

/// Every service that failed to stop; the others were stopped.
#[derive(Debug)]
pub struct StopError {
    /// The failures, in the order the services were stopped.
    pub failures: Vec<StopFailure>,
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StopError {}

/// Adding a child to a collection failed; the collection is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The child could not be added (a name clash, for instance).
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The parent was running and the child failed to start; it was taken out again.
    #[error("{error}")]
    Start {
        /// Why the child failed to start (its path includes the child's own segment).
        error: StartError,
        /// The child, handed back stopped.
        service: Box<dyn Service>,
    },
}

/// Removing a child failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// Nothing to remove at that segment.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The child was removed, but did not stop cleanly.
    #[error("{error}")]
    Stop {
        /// The stop failures (paths include the child's own segment).
        error: StopError,
        /// The removed child.
        service: Box<dyn Service>,
    },
}

/// Drives services through their lifecycle; see the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    stop_deadline: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            stop_deadline: DEFAULT_STOP_DEADLINE,
        }
    }
}

impl Lifecycle {
    /// A driver that gives each service's own stop hook `stop_deadline` to finish.
    pub fn new(stop_deadline: Duration) -> Self {
        Lifecycle { stop_deadline }
    }

    /// The deadline for each service's own stop hook.
    pub fn stop_deadline(&self) -> Duration {
        self.stop_deadline
    }

    /// Runs `privileged_start` over the tree, parent before children, in insertion order.
    /// Services that already ran it are skipped. On failure, what was acquired is released.
    pub async fn privileged_start(&self, service: &mut dyn Service) -> Result<(), StartError> {
        self.privileged_node(service, ServicePath::root()).await
    }

    /// Starts the tree: parent before children, children in insertion order.
    /// On failure, everything that had started is stopped again in reverse order.
    pub async fn start(&self, service: &mut dyn Service) -> Result<(), StartError> {
        self.start_node(service, ServicePath::root()).await
    }

    /// Stops the tree: children in reverse order, then the parent, each with its deadline.
    /// Every service gets its turn; the error lists each one that failed or hung.
    pub async fn stop(
        &self,
        service: &mut dyn Service,
        reason: StopReason,
    ) -> Result<(), StopError> {
        self.stop_node(service, ServicePath::root(), reason).await
    }

    /// Adds `child` to `parent` (Twisted's `addService`): a name clash is an error and changes
    /// nothing; if the parent is running, the child is started at once, and if that fails the
    /// child is taken out again and handed back in the error.
    pub async fn add_service(
        &self,
        parent: &mut MultiService,
        child: Box<dyn Service>,
    ) -> Result<(), AddError> {
        parent.push_child(child)?;
        let index = parent.len() - 1;
        let parent_state = parent.meta().state();
        let parent_holds = parent.meta().holds_resources;
        let Some(added) = parent.child_at_mut(index) else {
            return Ok(());
        };
        let path = ServicePath::root().join(PathSegment::for_child(index, added.name()));
        let result = match parent_state {
            LifecycleState::Running => self.start_node(added, path).await,
            LifecycleState::Stopped if parent_holds => self.privileged_node(added, path).await,
            // A collection that is starting will reach the new child itself (it walks the
            // live list); one that is stopping or stopped has nothing to do.
            _ => Ok(()),
        };
        if let Err(error) = result {
            let service = parent.remove_at(index);
            return Err(AddError::Start { error, service });
        }
        Ok(())
    }

    /// Removes the child `segment` addresses from `parent` (Twisted's `removeService`) and
    /// returns it; if it was running (or held resources), it is stopped with
    /// [`StopReason::Removed`].
    pub async fn remove_service(
        &self,
        parent: &mut MultiService,
        segment: &PathSegment,
    ) -> Result<Box<dyn Service>, RemoveError> {
        let index = parent
            .index_of(segment)
            .ok_or_else(|| TreeError::NotFound {
                path: ServicePath::root().join(segment.clone()),
            })?;
        let path = ServicePath::root().join(PathSegment::for_child(
            index,
            parent.child_at(index).and_then(|child| child.name()),
        ));
        let mut service = parent.remove_at(index);
        match self
            .stop_node(&mut *service, path, StopReason::Removed)
            .await
        {
            Ok(()) => Ok(service),
            Err(error) => Err(RemoveError::Stop { error, service }),
        }
    }

    fn privileged_node<'a>(
        &'a self,
        service: &'a mut dyn Service,
        path: ServicePath,
    ) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            if service.meta().state() != LifecycleState::Stopped {
                return Ok(());
            }
            if !service.meta().holds_resources {
                if let Err(source) = service.privileged_start().await {
                    return Err(StartError {
                        path,
                        phase: StartPhase::Privileged,
                        source,
                        rollback: None,
                    });
                }
                service.meta_mut().holds_resources = true;
            }
            self.children(service, &path, StartPhase::Privileged).await
        })
    }

    fn start_node<'a>(
        &'a self,
        service: &'a mut dyn Service,
        path: ServicePath,
    ) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            match service.meta().state() {
                LifecycleState::Running | LifecycleState::Starting => return Ok(()),
                LifecycleState::Stopped | LifecycleState::Stopping => {}
            }
            let began = Instant::now();
            service.meta_mut().set_state(LifecycleState::Starting);
            if !service.meta().holds_resources {
                if let Err(source) = service.privileged_start().await {
                    service.meta_mut().set_state(LifecycleState::Stopped);
                    return Err(StartError {
                        path,
                        phase: StartPhase::Privileged,
                        source,
                        rollback: None,
                    });
                }
                service.meta_mut().holds_resources = true;
            }
            if let Err(source) = service.start().await {
                let rollback = self
                    .stop_node(service, path.clone(), StopReason::Rollback)
                    .await
                    .err();
                return Err(StartError {
                    path,
                    phase: StartPhase::Start,
                    source,
                    rollback,
                });
            }
            tracing::info!(
                "started {} [{}] in {}",
                path,
                service.type_tag(),
                elapsed(began)
            );
            self.children(service, &path, StartPhase::Start).await?;
            service.meta_mut().set_state(LifecycleState::Running);
            Ok(())
        })
    }

    /// Runs `phase` over `service`'s children in insertion order. If a child fails, `service`
    /// is stopped again (its children in reverse, then itself) and the child's error returned.
    async fn children(
        &self,
        service: &mut dyn Service,
        path: &ServicePath,
        phase: StartPhase,
    ) -> Result<(), StartError> {
        // Walk the live list by index, so a child added while this loop runs is started once,
        // when the loop reaches it.
        let mut index = 0;
        while let Some(child) = service
            .collection_mut()
            .and_then(|collection| collection.child_at_mut(index))
        {
            let child_path = path.join(PathSegment::for_child(index, child.name()));
            let result = match phase {
                StartPhase::Privileged => self.privileged_node(child, child_path).await,
                StartPhase::Start => self.start_node(child, child_path).await,
            };
            if let Err(mut error) = result {
                let rollback = self
                    .stop_node(service, path.clone(), StopReason::Rollback)
                    .await
                    .err();
                error.rollback = merge(error.rollback, rollback);
                return Err(error);
            }
            index += 1;
        }
        Ok(())
    }

    fn stop_node<'a>(
        &'a self,
        service: &'a mut dyn Service,
        path: ServicePath,
        reason: StopReason,
    ) -> BoxFuture<'a, Result<(), StopError>> {
        Box::pin(async move {
            let meta = service.meta();
            if meta.state() == LifecycleState::Stopped && !meta.holds_resources {
                return Ok(());
            }
            let began = Instant::now();
            service.meta_mut().set_state(LifecycleState::Stopping);
            let mut failures = Vec::new();
            let count = service.collection().map_or(0, MultiService::len);
            for index in (0..count).rev() {
                let Some(collection) = service.collection_mut() else {
                    break;
                };
                let Some(segment) = collection.segment_of(index) else {
                    continue;
                };
                let Some(child) = collection.child_at_mut(index) else {
                    continue;
                };
                if let Err(error) = self.stop_node(child, path.join(segment), reason).await {
                    failures.extend(error.failures);
                }
            }
            let deadline = tokio::time::Instant::now() + self.stop_deadline;
            let outcome = tokio::time::timeout_at(
                deadline,
                STOP_DEADLINE.scope(deadline, service.stop(reason)),
            )
            .await;
            let meta = service.meta_mut();
            meta.set_state(LifecycleState::Stopped);
            meta.holds_resources = false;
            match outcome {
                Ok(Ok(())) => tracing::info!(
                    "stopped {} [{}] in {} ({reason})",
                    path,
                    service.type_tag(),
                    elapsed(began)
                ),
                Ok(Err(error)) => failures.push(StopFailure {
                    path,
                    kind: StopFailureKind::Failed(error),
                }),
                Err(_elapsed) => failures.push(StopFailure {
                    path,
                    kind: StopFailureKind::TimedOut(self.stop_deadline),
                }),
            }
            if failures.is_empty() {
                Ok(())
            } else {
                Err(StopError { failures })
            }
        })
    }
}

fn elapsed(began: Instant) -> String {
    let elapsed = began.elapsed();
    if elapsed < Duration::from_millis(1) {
        format!("{}µs", elapsed.as_micros())
    } else {
        format!("{:.1}ms", elapsed.as_secs_f64() * 1000.0)
    }
}

fn merge(first: Option<StopError>, second: Option<StopError>) -> Option<StopError> {
    match (first, second) {
        (None, other) | (other, None) => other,
        (Some(mut a), Some(b)) => {
            a.failures.extend(b.failures);
            Some(a)
        }
    }
}
