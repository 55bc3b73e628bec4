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
//! Each hook gets a context ([`StartContext`], [`StopContext`]): the service's path, the
//! runner's checkpoint handle and the child's live counters at a start; the reason and the
//! deadline at a stop.
//!
//! A collection shared between tasks is wrapped in a `tokio::sync::Mutex`: a task that adds a
//! child while another task is starting the tree waits for the lock, then sees the parent
//! running and starts the child exactly once.
//!
//! ```
//! use rtwisted_core::{Lifecycle, MultiService, StopReason};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut root = MultiService::new();
//! root.insert_named("child", Box::new(MultiService::new())).unwrap();
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

use crate::child::Child;
use crate::context::{CheckpointRequester, StartContext, StopContext};
use crate::multi::{MultiService, TreeError};
use crate::path::{PathSegment, ServicePath};
use crate::service::{LifecycleState, Service, ServiceError, StopReason};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The start (or privileged start) of one node of the tree, boxed as it recurses.
type Starting<'a> = BoxFuture<'a, Result<(), StartError>>;

/// The default deadline for one service's own stop hook.
pub const DEFAULT_STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Which hook failed during a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// What the service reported (shown in the message, so not a `source()`).
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
#[non_exhaustive]
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
#[non_exhaustive]
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
        child: Box<Child>,
    },
}

/// Removing a child failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        child: Box<Child>,
    },
}

/// Replacing a child failed; the old one is back in its place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplaceError {
    /// Nothing to replace there.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The new service failed to start; the old one was put back.
    #[error("{error}{}", restore_text(.restored))]
    Start {
        /// Why the new service failed.
        error: StartError,
        /// Why the old one did not start again, if it did not.
        restored: Option<StartError>,
    },
    /// The new service could not be made from the old one; the old one was put back.
    #[error("cannot change '{path}': {cause}{}", restore_text(.restored))]
    Build {
        /// The service's path.
        path: ServicePath,
        /// Why.
        cause: ServiceError,
        /// Why the old one did not start again, if it did not.
        restored: Option<StartError>,
    },
}

fn restore_text(restored: &Option<StartError>) -> String {
    match restored {
        Some(error) => format!("; the old service could not start again either: {error}"),
        None => "; the old service runs again".to_owned(),
    }
}

impl From<crate::service::NameError> for ReplaceError {
    fn from(error: crate::service::NameError) -> Self {
        ReplaceError::Tree(TreeError::Name(error))
    }
}

/// Drives services through their lifecycle; see the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    stop_deadline: Duration,
    checkpoints: CheckpointRequester,
    inherited: crate::context::Inherited,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new(DEFAULT_STOP_DEADLINE)
    }
}

impl Lifecycle {
    /// A driver that gives each service's own stop hook `stop_deadline` to finish.
    pub fn new(stop_deadline: Duration) -> Self {
        Lifecycle {
            stop_deadline,
            checkpoints: CheckpointRequester::default(),
            inherited: crate::context::Inherited::default(),
        }
    }

    /// The same driver, handing `checkpoints` to every service it starts.
    pub fn with_checkpoints(mut self, checkpoints: CheckpointRequester) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// The same driver, offering sockets a predecessor handed over to the services it starts.
    pub fn with_inherited(mut self, inherited: crate::context::Inherited) -> Self {
        self.inherited = inherited;
        self
    }

    /// The listening sockets of every running service, for a successor (see
    /// [`Service::handover_sockets`]). Each key is qualified by the service's path, as
    /// [`StartContext::take_inherited`](crate::StartContext::take_inherited) asks: two
    /// services with the same endpoint description (two `tcp:0`) keep their own sockets.
    pub fn handover_sockets<'a>(
        &self,
        root: &'a MultiService,
    ) -> Vec<crate::service::HandoverSocket<'a>> {
        fn walk<'a>(
            collection: &'a MultiService,
            path: &ServicePath,
            out: &mut Vec<crate::service::HandoverSocket<'a>>,
        ) {
            for (index, child) in collection.iter().enumerate() {
                let child_path = path.join(PathSegment::for_child(index, child.name()));
                if child.meta.holds_resources {
                    out.extend(
                        child
                            .service()
                            .handover_sockets()
                            .into_iter()
                            .map(|mut socket| {
                                socket.key =
                                    crate::context::inherited_key(&child_path, &socket.key);
                                socket
                            }),
                    );
                }
                if let Some(inner) = child.service().collection() {
                    walk(inner, &child_path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, &ServicePath::root(), &mut out);
        out
    }

    /// The deadline for each service's own stop hook.
    pub fn stop_deadline(&self) -> Duration {
        self.stop_deadline
    }

    /// Runs `privileged_start` over the tree, parent before children, in insertion order.
    /// Services that already ran it are skipped. On failure, what was acquired is released.
    pub async fn privileged_start(&self, root: &mut MultiService) -> Result<(), StartError> {
        if root.state != LifecycleState::Stopped {
            return Ok(());
        }
        let root_path = ServicePath::root();
        if let Err(mut error) = self
            .each_child(root, &root_path, StartPhase::Privileged)
            .await
        {
            let rollback = self
                .stop_children(root, &root_path, StopReason::Rollback)
                .await;
            error.rollback = merge(error.rollback, rollback.err());
            return Err(error);
        }
        root.holds_resources = true;
        Ok(())
    }

    /// Starts the tree: parent before children, children in insertion order.
    /// On failure, everything that had started is stopped again in reverse order.
    pub async fn start(&self, root: &mut MultiService) -> Result<(), StartError> {
        if matches!(
            root.state,
            LifecycleState::Running | LifecycleState::Starting
        ) {
            return Ok(());
        }
        root.state = LifecycleState::Starting;
        let root_path = ServicePath::root();
        if let Err(mut error) = self.each_child(root, &root_path, StartPhase::Start).await {
            let rollback = self
                .stop_children(root, &root_path, StopReason::Rollback)
                .await;
            error.rollback = merge(error.rollback, rollback.err());
            root.state = LifecycleState::Stopped;
            root.holds_resources = false;
            return Err(error);
        }
        root.holds_resources = true;
        root.state = LifecycleState::Running;
        Ok(())
    }

    /// Stops the tree: children in reverse order, each with its deadline. Every service gets
    /// its turn; the error lists each one that failed or hung.
    pub async fn stop(&self, root: &mut MultiService, reason: StopReason) -> Result<(), StopError> {
        if root.state == LifecycleState::Stopped && !root.holds_resources {
            // Children may still hold what a privileged start gave them.
            return self.stop_children(root, &ServicePath::root(), reason).await;
        }
        root.state = LifecycleState::Stopping;
        let result = self.stop_children(root, &ServicePath::root(), reason).await;
        root.state = LifecycleState::Stopped;
        root.holds_resources = false;
        result
    }

    /// Adds `child` to the collection at `parent` (Twisted's `addService`): a name clash is an
    /// error and changes nothing; if the parent is running, the child is started at once, and
    /// if that fails the child is taken out again and handed back in the error.
    pub async fn add_service(
        &self,
        root: &mut MultiService,
        parent: &ServicePath,
        child: Child,
    ) -> Result<(), AddError> {
        let (state, holds) = node_state(root, parent)?;
        let collection = root.collection_at_mut(parent)?;
        collection.push_child(child)?;
        let index = collection.len() - 1;
        let Some(added) = collection.child_at_mut(index) else {
            return Ok(());
        };
        let path = parent.join(PathSegment::for_child(index, added.name()));
        let result = match state {
            LifecycleState::Running => self.start_node(added, path).await,
            LifecycleState::Stopped if holds => self.privileged_node(added, path).await,
            // A collection that is starting reaches the new child itself (it walks the live
            // list); one that is stopping or stopped has nothing to do.
            _ => Ok(()),
        };
        if let Err(error) = result {
            let child = Box::new(collection.remove_at(index));
            return Err(AddError::Start { error, child });
        }
        Ok(())
    }

    /// Removes the child at `path` (Twisted's `removeService`) and returns it; if it was
    /// running (or held resources), it is stopped with [`StopReason::Removed`].
    pub async fn remove_service(
        &self,
        root: &mut MultiService,
        path: &ServicePath,
    ) -> Result<Child, RemoveError> {
        let (parent, _, collection, index) = child_slot(root, path)?;
        let (child, _, stopped) = self
            .take_out(collection, &parent, index, StopReason::Removed)
            .await;
        match stopped {
            Ok(()) => Ok(child),
            Err(error) => Err(RemoveError::Stop {
                error,
                child: Box::new(child),
            }),
        }
    }

    /// Replaces the service at `path` with `service`, in the same place and under the same name
    /// (a live change of one service): the old one stops with [`StopReason::Replaced`], then
    /// the new one starts if its parent runs. If the new one fails to start, the old one is put
    /// back and started again, and the error says whether that worked. Returns the old child.
    pub async fn replace_service(
        &self,
        root: &mut MultiService,
        path: &ServicePath,
        service: Box<dyn Service>,
    ) -> Result<Child, ReplaceError> {
        self.replace_service_with(root, path, |_| Ok(service)).await
    }

    /// Like [`replace_service`](Self::replace_service), but the new service is made by
    /// `make` from the old child *after* the old one stopped, so it can carry every change the
    /// old one saw (a live edit of one field keeps every item a table stored until the
    /// moment of the change). If `make` fails, the old one starts again.
    pub async fn replace_service_with(
        &self,
        root: &mut MultiService,
        path: &ServicePath,
        make: impl FnOnce(&Child) -> Result<Box<dyn Service>, ServiceError>,
    ) -> Result<Child, ReplaceError> {
        let (parent, (state, holds), collection, index) = child_slot(root, path)?;
        let (mut old, child_path, stopped) = self
            .take_out(collection, &parent, index, StopReason::Replaced)
            .await;
        let name = old.name().map(str::to_owned);
        let made = make(&old).and_then(|service| Child::new(name, service).map_err(Into::into));
        let mut new = match made {
            Ok(new) => new,
            Err(cause) => {
                let restarted = self
                    .restart_in_place(&mut old, &child_path, state, holds)
                    .await;
                collection.put_back(index, old)?;
                return Err(ReplaceError::Build {
                    path: child_path,
                    cause,
                    restored: restarted.err(),
                });
            }
        };
        // Counters keep counting across the change, as they do across a restart.
        new.meta.keep_counters_of(&old.meta);
        let started = match state {
            LifecycleState::Running => self.start_node(&mut new, child_path.clone()).await,
            LifecycleState::Stopped if holds => {
                self.privileged_node(&mut new, child_path.clone()).await
            }
            _ => Ok(()),
        };
        match started {
            Ok(()) => {
                collection.put_back(index, new)?;
                if let Err(error) = stopped {
                    for failure in &error.failures {
                        tracing::warn!("while replacing {child_path}: {failure}");
                    }
                }
                Ok(old)
            }
            Err(error) => {
                let restarted = match state {
                    LifecycleState::Running => self.start_node(&mut old, child_path.clone()).await,
                    LifecycleState::Stopped if holds => {
                        self.privileged_node(&mut old, child_path.clone()).await
                    }
                    _ => Ok(()),
                };
                collection.put_back(index, old)?;
                Err(ReplaceError::Start {
                    error,
                    restored: restarted.err(),
                })
            }
        }
    }

    /// Quiesces every running service of the tree (children before their parents, so a
    /// collection is final once its children are); see [`Service::quiesce`]. On a failure the
    /// services already quiesced are resumed and the error names the one that failed.
    pub async fn quiesce(&self, root: &mut MultiService) -> Result<(), QuiesceError> {
        let mut done = Vec::new();
        let result = quiesce_collection(root, &ServicePath::root(), &mut done).await;
        if result.is_err() {
            self.resume_paths(root, done).await;
        }
        result
    }

    /// Resumes every running service of the tree (parents before children).
    pub async fn resume(&self, root: &mut MultiService) {
        let mut paths = Vec::new();
        running_paths(root, &ServicePath::root(), &mut paths);
        for path in paths {
            if let Some(child) = root.find_mut(&path) {
                child.service.resume().await;
            }
        }
    }

    async fn resume_paths(&self, root: &mut MultiService, done: Vec<ServicePath>) {
        for path in done.into_iter().rev() {
            if let Some(child) = root.find_mut(&path) {
                child.service.resume().await;
            }
        }
    }

    /// Takes a stopped child back to where its parent's state says it should be.
    async fn restart_in_place(
        &self,
        child: &mut Child,
        path: &ServicePath,
        parent_state: LifecycleState,
        parent_holds: bool,
    ) -> Result<(), StartError> {
        match parent_state {
            LifecycleState::Running => self.start_node(child, path.clone()).await,
            LifecycleState::Stopped if parent_holds => {
                self.privileged_node(child, path.clone()).await
            }
            _ => Ok(()),
        }
    }

    /// Renames the child at `path` to `name`, in the same place: as Twisted allows no rename
    /// under a parent, it is removed (stopped), renamed and added again (started). A clash with
    /// a sibling is refused before anything stops; a failed start puts the old name back.
    pub async fn rename_service(
        &self,
        root: &mut MultiService,
        path: &ServicePath,
        name: &str,
    ) -> Result<(), ReplaceError> {
        crate::service::validate_name(name)?;
        let (parent, (state, holds), collection, index) = child_slot(root, path)?;
        if collection.get(name).is_some() {
            return Err(TreeError::DuplicateName {
                name: name.to_owned(),
            }
            .into());
        }
        let (old, old_path, stopped) = self
            .take_out(collection, &parent, index, StopReason::Replaced)
            .await;
        let old_name = old.name().map(str::to_owned);
        if let Err(error) = stopped {
            for failure in &error.failures {
                tracing::warn!("while renaming {old_path}: {failure}");
            }
        }
        let counters = old.meta.clone();
        let mut renamed = old.renamed(Some(name.to_owned()))?;
        renamed.meta.keep_counters_of(&counters);
        let new_path = parent.join(PathSegment::Name(name.to_owned()));
        match self
            .restart_in_place(&mut renamed, &new_path, state, holds)
            .await
        {
            Ok(()) => {
                collection.put_back(index, renamed)?;
                Ok(())
            }
            Err(error) => {
                let mut back = renamed.renamed(old_name)?;
                let restarted = self
                    .restart_in_place(&mut back, &old_path, state, holds)
                    .await;
                collection.put_back(index, back)?;
                Err(ReplaceError::Start {
                    error,
                    restored: restarted.err(),
                })
            }
        }
    }

    fn start_context(&self, child: &mut Child, path: &ServicePath) -> StartContext {
        StartContext::new(
            path.clone(),
            self.checkpoints.clone(),
            child.meta.counters_or_new(),
        )
        .with_inherited(self.inherited.clone())
    }

    fn privileged_node<'a>(&'a self, child: &'a mut Child, path: ServicePath) -> Starting<'a> {
        Box::pin(async move {
            if child.meta.state != LifecycleState::Stopped {
                return Ok(());
            }
            if !child.meta.holds_resources {
                let mut cx = self.start_context(child, &path);
                acquire(child, &mut cx, &path).await?;
            }
            self.start_children(child, &path, StartPhase::Privileged)
                .await
        })
    }

    fn start_node<'a>(&'a self, child: &'a mut Child, path: ServicePath) -> Starting<'a> {
        Box::pin(async move {
            match child.meta.state {
                LifecycleState::Running | LifecycleState::Starting => return Ok(()),
                LifecycleState::Stopped | LifecycleState::Stopping => {}
            }
            let began = Instant::now();
            set_state(child, LifecycleState::Starting);
            child.meta.set_last_error(None);
            let mut cx = self.start_context(child, &path);
            if let Err(error) = acquire(child, &mut cx, &path).await {
                set_state(child, LifecycleState::Stopped);
                return Err(error);
            }
            if let Err(source) = child.service.start(&mut cx).await {
                let rollback = self.roll_back(child, &path).await;
                return Err(start_failed(
                    child,
                    path,
                    StartPhase::Start,
                    source,
                    rollback,
                ));
            }
            tracing::info!(
                service = %path,
                r#type = child.service.type_tag(),
                "started {} [{}] in {}",
                path,
                child.service.type_tag(),
                elapsed(began)
            );
            self.start_children(child, &path, StartPhase::Start).await?;
            set_state(child, LifecycleState::Running);
            Ok(())
        })
    }

    /// Starts (in `phase`) the children of `child`, when it is a collection; when one fails,
    /// `child` is stopped again and what that stop reports joins the error.
    async fn start_children(
        &self,
        child: &mut Child,
        path: &ServicePath,
        phase: StartPhase,
    ) -> Result<(), StartError> {
        let Some(collection) = child.service.collection_mut() else {
            return Ok(());
        };
        let Err(mut error) = self.each_child(collection, path, phase).await else {
            return Ok(());
        };
        error.rollback = merge(error.rollback, self.roll_back(child, path).await);
        Err(error)
    }

    /// Takes the child at `index` out of `collection` (under `parent`) and stops it for
    /// `reason`: the child, the path it had, and how its stop went.
    async fn take_out(
        &self,
        collection: &mut MultiService,
        parent: &ServicePath,
        index: usize,
        reason: StopReason,
    ) -> (Child, ServicePath, Result<(), StopError>) {
        let mut child = collection.remove_at(index);
        let path = parent.join(PathSegment::for_child(index, child.name()));
        let stopped = self.stop_node(&mut child, path.clone(), reason).await;
        (child, path, stopped)
    }

    /// Stops `child` to undo its partial start; what failed in that stop, if anything.
    async fn roll_back(&self, child: &mut Child, path: &ServicePath) -> Option<StopError> {
        self.stop_node(child, path.clone(), StopReason::Rollback)
            .await
            .err()
    }

    async fn each_child(
        &self,
        collection: &mut MultiService,
        path: &ServicePath,
        phase: StartPhase,
    ) -> Result<(), StartError> {
        // Walk the live list by index, so a child added while this loop runs is started once,
        // when the loop reaches it.
        let mut index = 0;
        while let Some(child) = collection.child_at_mut(index) {
            let child_path = path.join(PathSegment::for_child(index, child.name()));
            match phase {
                StartPhase::Privileged => self.privileged_node(child, child_path).await?,
                StartPhase::Start => self.start_node(child, child_path).await?,
            }
            index += 1;
        }
        Ok(())
    }

    /// Stops `collection`'s children in reverse order; every child gets its turn.
    async fn stop_children(
        &self,
        collection: &mut MultiService,
        path: &ServicePath,
        reason: StopReason,
    ) -> Result<(), StopError> {
        let mut failures = Vec::new();
        for index in (0..collection.len()).rev() {
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
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StopError { failures })
        }
    }

    fn stop_node<'a>(
        &'a self,
        child: &'a mut Child,
        path: ServicePath,
        reason: StopReason,
    ) -> BoxFuture<'a, Result<(), StopError>> {
        Box::pin(async move {
            if child.meta.state == LifecycleState::Stopped && !child.meta.holds_resources {
                return Ok(());
            }
            let began = Instant::now();
            set_state(child, LifecycleState::Stopping);
            let mut failures = Vec::new();
            if let Some(collection) = child.service.collection_mut()
                && let Err(error) = self.stop_children(collection, &path, reason).await
            {
                failures.extend(error.failures);
            }
            let deadline = tokio::time::Instant::now() + self.stop_deadline;
            let cx = StopContext::new(path.clone(), reason, deadline);
            let outcome = tokio::time::timeout_at(deadline, child.service.stop(&cx)).await;
            set_state(child, LifecycleState::Stopped);
            set_holds(child, false);
            match outcome {
                Ok(Ok(())) => tracing::info!(
                    service = %path,
                    r#type = child.service.type_tag(),
                        %reason,
                    "stopped {} [{}] in {} ({reason})",
                    path,
                    child.service.type_tag(),
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

/// A service could not quiesce before a hand-over.
#[derive(Debug, thiserror::Error)]
#[error("service '{path}' could not quiesce for the hand-over: {source}")]
pub struct QuiesceError {
    /// The service.
    pub path: ServicePath,
    /// What it reported (shown in the message, so not a `source()`).
    pub source: ServiceError,
}

/// Quiesces the running children of `collection` (and theirs), deepest first; `done` gathers
/// the paths quiesced, in order.
fn quiesce_collection<'a>(
    collection: &'a mut MultiService,
    path: &'a ServicePath,
    done: &'a mut Vec<ServicePath>,
) -> BoxFuture<'a, Result<(), QuiesceError>> {
    Box::pin(async move {
        for (index, child) in collection.iter_mut().enumerate() {
            if !child.running() {
                continue;
            }
            let child_path = path.join(PathSegment::for_child(index, child.name()));
            if let Some(inner) = child.service.collection_mut() {
                quiesce_collection(inner, &child_path, done).await?;
            }
            child
                .service
                .quiesce()
                .await
                .map_err(|source| QuiesceError {
                    path: child_path.clone(),
                    source,
                })?;
            done.push(child_path);
        }
        Ok(())
    })
}

/// The paths of every running service below `collection`, parents first.
fn running_paths(collection: &MultiService, path: &ServicePath, paths: &mut Vec<ServicePath>) {
    for (index, child) in collection.iter().enumerate() {
        if !child.running() {
            continue;
        }
        let child_path = path.join(PathSegment::for_child(index, child.name()));
        paths.push(child_path.clone());
        if let Some(inner) = child.service().collection() {
            running_paths(inner, &child_path, paths);
        }
    }
}

/// The state of the collection at `path` and whether it holds resources (for the root, its
/// own record; for a nested collection, its parent's record of it).
/// Where a child sits: its parent's path, the parent's state and whether it holds
/// resources, the parent's collection, and the child's index in it.
type ChildSlot<'r> = (
    ServicePath,
    (LifecycleState, bool),
    &'r mut MultiService,
    usize,
);

/// Where the child at `path` sits (see [`ChildSlot`]).
fn child_slot<'r>(
    root: &'r mut MultiService,
    path: &ServicePath,
) -> Result<ChildSlot<'r>, TreeError> {
    let not_found = || TreeError::NotFound { path: path.clone() };
    let (last, parent) = path.split_last().ok_or_else(not_found)?;
    let parent_state = node_state(root, &parent)?;
    let collection = root.collection_at_mut(&parent)?;
    let index = collection.index_of(last).ok_or_else(not_found)?;
    Ok((parent, parent_state, collection, index))
}

fn node_state(
    root: &MultiService,
    path: &ServicePath,
) -> Result<(LifecycleState, bool), TreeError> {
    if path.is_root() {
        return Ok((root.state, root.holds_resources));
    }
    let child = root
        .find(path)
        .ok_or_else(|| TreeError::NotFound { path: path.clone() })?;
    if child.service().collection().is_none() {
        return Err(TreeError::NotACollection { path: path.clone() });
    }
    Ok((child.meta.state, child.meta.holds_resources))
}

/// Moves a child to `state`, keeping a collection's own copy of it in step.
fn set_state(child: &mut Child, state: LifecycleState) {
    child.meta.set_state(state);
    if let Some(collection) = child.service.collection_mut() {
        collection.state = state;
    }
}

fn set_holds(child: &mut Child, holds: bool) {
    child.meta.holds_resources = holds;
    if let Some(collection) = child.service.collection_mut() {
        collection.holds_resources = holds;
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

/// Runs `child`'s privileged start with `cx`, unless it already holds what that acquires;
/// from then on it does.
async fn acquire(
    child: &mut Child,
    cx: &mut StartContext,
    path: &ServicePath,
) -> Result<(), StartError> {
    if child.meta.holds_resources {
        return Ok(());
    }
    if let Err(source) = child.service.privileged_start(cx).await {
        let phase = StartPhase::Privileged;
        return Err(start_failed(child, path.clone(), phase, source, None));
    }
    set_holds(child, true);
    Ok(())
}

/// Records `source` as `child`'s last error, and makes the error of its failed start.
fn start_failed(
    child: &mut Child,
    path: ServicePath,
    phase: StartPhase,
    source: ServiceError,
    rollback: Option<StopError>,
) -> StartError {
    child.meta.set_last_error(Some(source.to_string()));
    StartError {
        path,
        phase,
        source,
        rollback,
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
