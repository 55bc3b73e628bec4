//! Making a running tree equal another tree, touching only what differs (a live apply).
//!
//! [`Lifecycle::apply`] matches the two trees by path (children by name; unnamed ones by
//! position) and then, collection by collection:
//! - stops and removes the services the new tree does not have (in reverse order);
//! - replaces each service whose saved form differs (type or any field) with the new one: the
//!   old one stops, the new one starts in the same place under the same name;
//! - recurses into collections both trees have, so a change deep in the tree touches only the
//!   services that changed;
//! - adds and starts the services only the new tree has, and puts the children in the new
//!   tree's order.
//!
//! Unnamed children are matched by position, so name the services you mean to change live.
//! Services that did not change are not touched at all: their connections keep flowing. If
//! any step fails, everything done so far is undone in reverse order (added services stop,
//! replaced ones get their old version back, removed ones start again) and the error says what
//! failed and whether the undo was clean.
//!
//! ```
//! use rtwisted_core::{Lifecycle, MultiService};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut running = MultiService::new();
//! running.insert_named("a", Box::new(MultiService::new())).unwrap();
//! let lifecycle = Lifecycle::default();
//! lifecycle.start(&mut running).await.unwrap();
//!
//! let mut wanted = MultiService::new();
//! wanted.insert_named("a", Box::new(MultiService::new())).unwrap();
//! wanted.insert_named("b", Box::new(MultiService::new())).unwrap();
//! let report = lifecycle.apply(&mut running, wanted).await.unwrap();
//! assert_eq!(report.added, ["b".parse().unwrap()]);
//! assert!(running.get("b").unwrap().running());
//! # });
//! ```

use std::fmt;

use crate::child::Child;
use crate::lifecycle::{AddError, Lifecycle, RemoveError, ReplaceError};
use crate::multi::{MultiService, TreeError};
use crate::path::{PathSegment, ServicePath};

/// What an apply changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Services added (and started, if their parent runs).
    pub added: Vec<ServicePath>,
    /// Services stopped and removed.
    pub removed: Vec<ServicePath>,
    /// Services replaced by a new version of themselves.
    pub replaced: Vec<ServicePath>,
    /// Services (and collections) left as they were.
    pub unchanged: usize,
}

impl ApplyReport {
    /// True when the trees were already equal.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.replaced.is_empty()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |paths: &[ServicePath]| {
            paths
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("added {}", list(&self.added)));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", list(&self.removed)));
        }
        if !self.replaced.is_empty() {
            parts.push(format!("replaced {}", list(&self.replaced)));
        }
        if parts.is_empty() {
            parts.push("nothing to change".to_owned());
        }
        write!(f, "{}; {} untouched", parts.join("; "), self.unchanged)
    }
}

/// An apply failed; the running tree was put back as it was (see `undo`).
#[derive(Debug, thiserror::Error)]
#[error("{step}{}", undo_text(.undo))]
pub struct ApplyError {
    /// The step that failed.
    pub step: StepError,
    /// What went wrong while undoing the steps done before it, if anything did.
    pub undo: Vec<StepError>,
}

fn undo_text(undo: &[StepError]) -> String {
    if undo.is_empty() {
        "; the running tree is as it was".to_owned()
    } else {
        let failures: Vec<String> = undo.iter().map(ToString::to_string).collect();
        format!(
            "; undoing the apply failed too, so the tree may differ from before: {}",
            failures.join("; ")
        )
    }
}

/// One step of an apply (or of its undo) that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// Adding a service failed.
    #[error("cannot add '{path}': {error}")]
    Add {
        /// Where.
        path: ServicePath,
        /// Why.
        error: Box<AddError>,
    },
    /// Removing a service failed.
    #[error("cannot remove '{path}': {error}")]
    Remove {
        /// Where.
        path: ServicePath,
        /// Why.
        error: Box<RemoveError>,
    },
    /// Replacing a service failed.
    #[error("cannot replace '{path}': {error}")]
    Replace {
        /// Where.
        path: ServicePath,
        /// Why.
        error: Box<ReplaceError>,
    },
    /// The tree's structure refused a step.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl StepError {
    /// Makes the error of a failed add at `path`.
    fn add(path: &ServicePath) -> impl FnOnce(AddError) -> StepError + '_ {
        |error| StepError::Add {
            path: path.clone(),
            error: Box::new(error),
        }
    }

    /// Makes the error of a failed removal at `path`.
    fn remove(path: &ServicePath) -> impl FnOnce(RemoveError) -> StepError + '_ {
        |error| StepError::Remove {
            path: path.clone(),
            error: Box::new(error),
        }
    }

    /// Makes the error of a failed replacement at `path`.
    fn replace(path: &ServicePath) -> impl FnOnce(ReplaceError) -> StepError + '_ {
        |error| StepError::Replace {
            path: path.clone(),
            error: Box::new(error),
        }
    }
}

/// A step done, and how to undo it.
enum Done {
    /// Added at `path`: remove it again.
    Added(ServicePath),
    /// Replaced at `path`: the old child, to put back.
    Replaced(ServicePath, Child),
    /// Removed from `parent`: the child, to add back.
    Removed(ServicePath, Child),
    /// The collection at `path` is being changed: its children's order before.
    Reordered(ServicePath, Vec<PathSegment>),
}

impl Lifecycle {
    /// Makes the tree at `root` equal `wanted`, touching only what differs; see the
    /// [module docs](crate::apply).
    pub async fn apply(
        &self,
        root: &mut MultiService,
        wanted: MultiService,
    ) -> Result<ApplyReport, ApplyError> {
        self.apply_from(root, None, wanted).await
    }

    /// Carries an edit over to the running tree: `base` is the tree the edit started from and
    /// `wanted` the edited one. Only what the edit changed is applied: a service the edit left
    /// alone keeps its live self, whatever it did since `base` was taken (a table's new items,
    /// say), and a service added to the running tree since then stays.
    pub async fn apply_edit(
        &self,
        root: &mut MultiService,
        base: &MultiService,
        wanted: MultiService,
    ) -> Result<ApplyReport, ApplyError> {
        self.apply_from(root, Some(base), wanted).await
    }

    async fn apply_from(
        &self,
        root: &mut MultiService,
        base: Option<&MultiService>,
        wanted: MultiService,
    ) -> Result<ApplyReport, ApplyError> {
        let mut report = ApplyReport::default();
        let mut done = Vec::new();
        match self
            .apply_collection(
                root,
                &ServicePath::root(),
                base,
                wanted,
                &mut report,
                &mut done,
            )
            .await
        {
            Ok(()) => Ok(report),
            Err(step) => {
                let undo = self.undo(root, done).await;
                Err(ApplyError { step, undo })
            }
        }
    }

    /// Applies `wanted` to the collection at `path` (which exists and is a collection); with a
    /// `base`, only what differs between `base` and `wanted` (see [`Lifecycle::apply_edit`]).
    fn apply_collection<'a>(
        &'a self,
        root: &'a mut MultiService,
        path: &'a ServicePath,
        base: Option<&'a MultiService>,
        mut wanted: MultiService,
        report: &'a mut ApplyReport,
        done: &'a mut Vec<Done>,
    ) -> crate::lifecycle::BoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let before = keys(root.collection_at(path)?);
            let wanted_keys = keys(&wanted);
            let base_keys = base.map(keys);
            let in_base =
                |key: &PathSegment| base_keys.as_ref().is_none_or(|keys| keys.contains(key));
            // Undone last: whatever happens below, the children end in their old order.
            done.push(Done::Reordered(path.clone(), before.clone()));
            // Removals first, last child first, so indexes of the others stay put. With a
            // base, only what the edit removed (a service added since stays).
            for key in before.iter().rev() {
                if wanted_keys.contains(key) || !in_base(key) {
                    continue;
                }
                let child_path = path.join(key.clone());
                let removed = self
                    .remove_service(root, &child_path)
                    .await
                    .map_err(StepError::remove(&child_path))?;
                report.removed.push(child_path);
                done.push(Done::Removed(path.clone(), removed));
            }
            for (key, mut child) in wanted_keys.iter().cloned().zip(wanted.take_children()) {
                let child_path = path.join(key.clone());
                let existing = root.collection_at(path)?.index_of(&key);
                let base_child = base
                    .and_then(|base| base.index_of(&key).and_then(|index| base.child_at(index)));
                if existing.is_none()
                    && base_child.is_some_and(|base_child| same(base_child, &child))
                {
                    // Removed from the running tree since the base was taken, and not
                    // changed by the edit: that removal stands.
                    report.unchanged += 1;
                    continue;
                }
                let Some(index) = existing else {
                    self.add_service(root, path, child)
                        .await
                        .map_err(StepError::add(&child_path))?;
                    report.added.push(child_path.clone());
                    done.push(Done::Added(child_path));
                    continue;
                };
                let collection = root.collection_at(path)?;
                let Some(current) = collection.child_at(index) else {
                    continue;
                };
                let both_collections = current.service().downcast_ref::<MultiService>().is_some()
                    && child.service().downcast_ref::<MultiService>().is_some();
                let unchanged = match (base, base_child) {
                    (Some(_), Some(base_child)) => same(base_child, &child),
                    _ => same(current, &child),
                };
                if both_collections {
                    let inner = child
                        .service_mut()
                        .collection_mut()
                        .map(std::mem::take)
                        .unwrap_or_default();
                    let inner_base = match (base, base_child) {
                        (Some(_), Some(base_child)) => base_child.service().collection(),
                        // A collection the edit added wholesale: apply it as it is.
                        _ => None,
                    };
                    report.unchanged += 1;
                    self.apply_collection(root, &child_path, inner_base, inner, report, done)
                        .await?;
                } else if unchanged {
                    report.unchanged += 1;
                } else {
                    let old = self
                        .replace_service(root, &child_path, child.into_service())
                        .await
                        .map_err(StepError::replace(&child_path))?;
                    report.replaced.push(child_path.clone());
                    done.push(Done::Replaced(child_path, old));
                }
            }
            let collection = root.collection_at_mut(path)?;
            let order_edited = base_keys.as_ref().is_none_or(|base| *base != wanted_keys);
            if order_edited && keys(collection) != wanted_keys {
                collection.reorder(&wanted_keys)?;
            }
            Ok(())
        })
    }

    /// Undoes `done`, last step first; returns what failed.
    async fn undo(&self, root: &mut MultiService, done: Vec<Done>) -> Vec<StepError> {
        let mut failures = Vec::new();
        for step in done.into_iter().rev() {
            let result = match step {
                Done::Added(path) => self
                    .remove_service(root, &path)
                    .await
                    .map(drop)
                    .map_err(StepError::remove(&path)),
                Done::Replaced(path, old) => self
                    .replace_service(root, &path, old.into_service())
                    .await
                    .map(drop)
                    .map_err(StepError::replace(&path)),
                Done::Removed(parent, child) => {
                    let path = parent.join(PathSegment::for_child(0, child.name()));
                    self.add_service(root, &parent, child)
                        .await
                        .map_err(StepError::add(&path))
                }
                Done::Reordered(path, order) => root
                    .collection_at_mut(&path)
                    .and_then(|collection| collection.reorder(&order))
                    .map_err(StepError::from),
            };
            if let Err(error) = result {
                failures.push(error);
            }
        }
        failures
    }
}

/// How each child of a collection is matched: its name, or its position when unnamed.
fn keys(collection: &MultiService) -> Vec<PathSegment> {
    collection
        .iter()
        .enumerate()
        .map(|(index, child)| PathSegment::for_child(index, child.name()))
        .collect()
}

/// True when two children would be saved identically.
fn same(a: &Child, b: &Child) -> bool {
    a.service().type_tag() == b.service().type_tag()
        && matches!(
            (serde_json::to_value(a), serde_json::to_value(b)),
            (Ok(a), Ok(b)) if a == b
        )
}
