//! `MultiService`: a service that holds an ordered collection of child services.
//!
//! The rules are Twisted's, with the gaps closed:
//! - children keep their insertion order; iteration and start follow it, stop reverses it;
//! - a name is unique among siblings: adding a clash is an error and changes nothing;
//! - a child's name cannot change while it is in the collection: the name sits beside the
//!   service in its [`Child`], out of the service's reach;
//! - children are addressed by name, by index (`#2`), or by path (`web/http`) from the root;
//! - this module only changes the *structure* of a stopped collection ([`MultiService::insert`],
//!   [`MultiService::remove`]). Adding to or removing from a *running* collection goes through
//!   [`Lifecycle::add_service`](crate::Lifecycle::add_service) and
//!   [`Lifecycle::remove_service`](crate::Lifecycle::remove_service), which start or stop the
//!   child as Twisted does.
//!
//! ```
//! use rtwisted_core::MultiService;
//! let mut web = MultiService::new();
//! web.insert_named("http", Box::new(MultiService::new())).unwrap();
//! let mut root = MultiService::new();
//! root.insert_named("web", Box::new(web)).unwrap();
//! assert!(root.find(&"web/http".parse().unwrap()).is_some());
//! assert!(root.insert_named("web", Box::new(MultiService::new())).is_err());
//! assert_eq!(root.len(), 1);
//! ```

use crate::child::Child;
use crate::name_index::NameIndex;
use crate::path::{PathSegment, ServicePath};
use crate::service::{LifecycleState, NameError, Service};

/// A change to a tree's structure was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// Twisted's rule: names are unique among siblings.
    #[error("cannot have two services with the same name '{name}'")]
    DuplicateName {
        /// The clashing name.
        name: String,
    },
    /// Nothing lives at that path.
    #[error("no service at '{path}'")]
    NotFound {
        /// The path that was looked up.
        path: ServicePath,
    },
    /// The path goes through a service that has no children.
    #[error("service '{path}' is not a collection, so it has no children")]
    NotACollection {
        /// The leaf that was asked for children.
        path: ServicePath,
    },
    /// A plain insert or remove would bypass starting or stopping the child.
    #[error(
        "the collection is {state}: add or remove children through Lifecycle::add_service / remove_service so they start or stop too"
    )]
    NotStopped {
        /// The collection's state.
        state: LifecycleState,
    },
    /// A name was invalid.
    #[error(transparent)]
    Name(#[from] NameError),
}

/// An ordered collection of child services, itself a service (Twisted's `MultiService`).
///
/// Each child is a [`Child`]: the service with its name and lifecycle state beside it. A
/// collection is serialized as its children, in order (each with its name); the name index is
/// rebuilt, and checked for duplicates, when a snapshot is thawed.
#[derive(Debug, Default)]
pub struct MultiService {
    children: Vec<Child>,
    names: NameIndex,
    /// The collection's own lifecycle state. For the root of a tree this is its state; for a
    /// collection held by a parent, the parent's record is the truth and the lifecycle driver
    /// keeps this copy in step, so that structural changes are refused while it runs.
    pub(crate) state: LifecycleState,
    /// Kept in step like `state`: whether a privileged start left resources to release.
    pub(crate) holds_resources: bool,
}

impl MultiService {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection holding `children`, in order; fails on a duplicate name.
    pub fn from_children(children: Vec<Child>) -> Result<Self, TreeError> {
        let mut names = NameIndex::with_capacity(children.len());
        for (index, child) in children.iter().enumerate() {
            if !names.insert(&children, index) {
                return Err(TreeError::DuplicateName {
                    name: child.name().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(MultiService {
            children,
            names,
            state: LifecycleState::Stopped,
            holds_resources: false,
        })
    }

    /// The collection's own lifecycle state (meaningful for the root of a tree; a nested
    /// collection's state is its [`Child`]'s).
    pub fn state(&self) -> LifecycleState {
        self.state
    }

    /// True while the collection runs.
    pub fn running(&self) -> bool {
        self.state == LifecycleState::Running
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when there are no children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The children in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, Child> {
        self.children.iter()
    }

    /// The children, mutably: each child's service, never its name or state.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Child> + ExactSizeIterator {
        self.children.iter_mut()
    }

    /// The child at `index`.
    pub fn child_at(&self, index: usize) -> Option<&Child> {
        self.children.get(index)
    }

    /// Mutable access to the child at `index`.
    pub fn child_at_mut(&mut self, index: usize) -> Option<&mut Child> {
        self.children.get_mut(index)
    }

    /// The child with this name (Twisted's `getServiceNamed`).
    pub fn get(&self, name: &str) -> Option<&Child> {
        self.names
            .find(&self.children, name)
            .and_then(|index| self.child_at(index))
    }

    /// Mutable access to the child with this name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Child> {
        let index = self.names.find(&self.children, name)?;
        self.child_at_mut(index)
    }

    /// The index of the child a segment addresses.
    pub fn index_of(&self, segment: &PathSegment) -> Option<usize> {
        match segment {
            PathSegment::Name(name) => self.names.find(&self.children, name),
            PathSegment::Index(index) => (*index < self.children.len()).then_some(*index),
        }
    }

    /// The segment that addresses the child at `index`: its name, or `#index`.
    pub fn segment_of(&self, index: usize) -> Option<PathSegment> {
        self.child_at(index)
            .map(|child| PathSegment::for_child(index, child.name()))
    }

    /// The child at `path` below this collection (the empty path is not a child, so it is
    /// `None`; use the collection itself).
    pub fn find(&self, path: &ServicePath) -> Option<&Child> {
        let (first, rest) = path.segments().split_first()?;
        let mut node = self.child_at(self.index_of(first)?)?;
        for segment in rest {
            let collection = node.service().collection()?;
            node = collection.child_at(collection.index_of(segment)?)?;
        }
        Some(node)
    }

    /// Mutable access to the child at `path` below this collection.
    pub fn find_mut(&mut self, path: &ServicePath) -> Option<&mut Child> {
        let (first, rest) = path.segments().split_first()?;
        let index = self.index_of(first)?;
        let mut node = self.child_at_mut(index)?;
        for segment in rest {
            let collection = node.service_mut().collection_mut()?;
            let index = collection.index_of(segment)?;
            node = collection.child_at_mut(index)?;
        }
        Some(node)
    }

    /// The collection at `path` (the empty path is this collection), with an error that says
    /// which part of the path was wrong.
    pub fn collection_at(&self, path: &ServicePath) -> Result<&MultiService, TreeError> {
        if path.is_root() {
            return Ok(self);
        }
        match self.find(path) {
            None => Err(TreeError::NotFound { path: path.clone() }),
            Some(node) => node
                .service()
                .collection()
                .ok_or_else(|| TreeError::NotACollection { path: path.clone() }),
        }
    }

    /// The collection at `path`, mutably (the empty path is this collection).
    pub fn collection_at_mut(
        &mut self,
        path: &ServicePath,
    ) -> Result<&mut MultiService, TreeError> {
        if path.is_root() {
            return Ok(self);
        }
        let found = path.clone();
        match self.find_mut(path) {
            None => Err(TreeError::NotFound { path: found }),
            Some(node) => node
                .service_mut()
                .collection_mut()
                .ok_or(TreeError::NotACollection { path: found }),
        }
    }

    /// Adds a child at the end of a *stopped* collection, as when building a tree.
    ///
    /// A name clash is an error and leaves the collection unchanged. A running collection
    /// refuses: use [`Lifecycle::add_service`](crate::Lifecycle::add_service), which also starts
    /// the child.
    pub fn insert(&mut self, child: Child) -> Result<(), TreeError> {
        self.ensure_stopped()?;
        self.push_child(child)
    }

    /// Adds `service` under `name` (see [`insert`](Self::insert)).
    pub fn insert_named(
        &mut self,
        name: impl Into<String>,
        service: Box<dyn Service>,
    ) -> Result<(), TreeError> {
        self.insert(Child::named(name, service)?)
    }

    /// Adds an unnamed `service` (see [`insert`](Self::insert)).
    pub fn insert_unnamed(&mut self, service: Box<dyn Service>) -> Result<(), TreeError> {
        self.insert(Child::unnamed(service))
    }

    /// Removes the child a segment addresses from a *stopped* collection and returns it.
    pub fn remove(&mut self, segment: &PathSegment) -> Result<Child, TreeError> {
        self.ensure_stopped()?;
        let index = self.index_of(segment).ok_or_else(|| TreeError::NotFound {
            path: ServicePath::root().join(segment.clone()),
        })?;
        Ok(self.remove_at(index))
    }

    fn ensure_stopped(&self) -> Result<(), TreeError> {
        let holds = self.children.iter().any(|child| child.meta.holds_resources);
        if self.state != LifecycleState::Stopped || self.holds_resources || holds {
            return Err(TreeError::NotStopped { state: self.state });
        }
        Ok(())
    }

    /// Appends a child after checking its name; the lifecycle driver calls this for running
    /// collections and starts the child itself.
    pub(crate) fn push_child(&mut self, child: Child) -> Result<(), TreeError> {
        self.refuse_taken_name(&child)?;
        self.children.push(child);
        self.names.insert(&self.children, self.children.len() - 1);
        Ok(())
    }

    /// Fails if a child already here has `child`'s name.
    fn refuse_taken_name(&self, child: &Child) -> Result<(), TreeError> {
        match child.name() {
            Some(name) if self.names.find(&self.children, name).is_some() => {
                Err(TreeError::DuplicateName {
                    name: name.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Puts `child` back at `index` (undoing [`remove_at`](Self::remove_at)); the name must be
    /// free.
    pub(crate) fn put_back(&mut self, index: usize, child: Child) -> Result<(), TreeError> {
        let index = index.min(self.children.len());
        self.refuse_taken_name(&child)?;
        self.children.insert(index, child);
        self.names.shift_from(index, 1);
        self.names.insert(&self.children, index);
        Ok(())
    }

    pub(crate) fn remove_at(&mut self, index: usize) -> Child {
        if let Some(name) = self.children[index].name() {
            self.names.remove(&self.children, name);
        }
        let child = self.children.remove(index);
        self.names.shift_from(index + 1, -1);
        child
    }

    /// Takes every child out, leaving the collection empty (for building another tree).
    pub(crate) fn take_children(&mut self) -> Vec<Child> {
        self.names.clear();
        std::mem::take(&mut self.children)
    }

    /// Puts the children in the order `keys` gives: a name picks that child, and each `#N`
    /// picks the next unnamed child in the current order. A key that picks nothing is skipped;
    /// children no key picked keep their order, after the others.
    pub(crate) fn reorder(&mut self, keys: &[PathSegment]) -> Result<(), TreeError> {
        let mut slots: Vec<Option<Child>> = self.take_children().into_iter().map(Some).collect();
        let mut ordered = Vec::with_capacity(slots.len());
        for key in keys {
            let found = slots.iter().position(|slot| match (slot, key) {
                (Some(child), PathSegment::Name(name)) => child.name() == Some(name.as_str()),
                (Some(child), PathSegment::Index(_)) => child.name().is_none(),
                (None, _) => false,
            });
            if let Some(child) = found.and_then(|position| slots[position].take()) {
                ordered.push(child);
            }
        }
        // Nothing is ever lost: children no key picked follow, in their old order.
        ordered.extend(slots.into_iter().flatten());
        *self = MultiService {
            state: self.state,
            holds_resources: self.holds_resources,
            ..MultiService::from_children(ordered)?
        };
        Ok(())
    }

    /// The children, for the codec.
    pub(crate) fn children(&self) -> &[Child] {
        &self.children
    }
}

#[typetag::serde(name = MultiService::TAG)]
#[async_trait::async_trait]
impl Service for MultiService {
    fn collection(&self) -> Option<&MultiService> {
        Some(self)
    }

    fn collection_mut(&mut self) -> Option<&mut MultiService> {
        Some(self)
    }
}

crate::register_type!(service MultiService = "rtwisted.MultiService", version 1);

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Child {
        Child::named(name, Box::new(MultiService::new())).unwrap()
    }

    fn names(root: &MultiService) -> Vec<&str> {
        root.iter().map(|c| c.name().unwrap()).collect()
    }

    #[test]
    fn adding_a_clashing_name_leaves_parent_unchanged() {
        let mut root = MultiService::new();
        root.insert(named("a")).unwrap();
        root.insert(named("b")).unwrap();
        let err = root.insert(named("a")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot have two services with the same name 'a'"
        );
        assert_eq!(root.len(), 2);
        assert_eq!(names(&root), ["a", "b"]);
    }

    #[test]
    fn a_child_renamed_only_by_removing_it_first() {
        let mut root = MultiService::new();
        root.insert(named("a")).unwrap();
        root.insert(named("b")).unwrap();
        // Nothing reachable through the parent can change the name it indexes by.
        let child = root.get_mut("a").unwrap();
        let _service: &mut dyn Service = child.service_mut();
        assert_eq!(root.get("a").unwrap().name(), Some("a"));
        let removed = root.remove(&PathSegment::Name("a".into())).unwrap();
        let renamed = removed.renamed(Some("b".into())).unwrap();
        assert!(
            root.insert(renamed).is_err(),
            "the clash with 'b' is caught"
        );
        assert_eq!(names(&root), ["b"]);
    }

    #[test]
    fn lookup_by_name_index_and_path() {
        let mut web = MultiService::new();
        web.insert(Child::unnamed(Box::new(MultiService::new())))
            .unwrap();
        web.insert(named("http")).unwrap();
        let mut root = MultiService::new();
        root.insert_named("web", Box::new(web)).unwrap();

        assert_eq!(root.get("web").unwrap().name(), Some("web"));
        let http = root.find(&"web/http".parse().unwrap()).unwrap();
        assert_eq!(http.name(), Some("http"));
        let unnamed = root.find(&"web/#0".parse().unwrap()).unwrap();
        assert_eq!(unnamed.name(), None);
        assert_eq!(
            root.find(&"web/#1".parse().unwrap()).unwrap().name(),
            Some("http")
        );
        assert!(root.find(&"web/ftp".parse().unwrap()).is_none());
        assert!(root.find(&"web/#2".parse().unwrap()).is_none());
        assert!(root.find(&"web/http/deeper".parse().unwrap()).is_none());
    }

    #[test]
    fn iteration_is_in_insertion_order_and_count_matches() {
        let mut root = MultiService::new();
        for name in ["c", "a", "b"] {
            root.insert(named(name)).unwrap();
        }
        assert_eq!(names(&root), ["c", "a", "b"]);
        assert_eq!(root.len(), 3);
    }

    #[test]
    fn removing_a_child_reindexes_the_names_after_it() {
        let mut root = MultiService::new();
        for name in ["a", "b", "c"] {
            root.insert(named(name)).unwrap();
        }
        root.remove(&PathSegment::Index(0)).unwrap();
        assert_eq!(root.get("c").unwrap().name(), Some("c"));
        assert_eq!(root.index_of(&PathSegment::Name("c".into())), Some(1));
        root.insert(named("a")).unwrap();
        assert_eq!(root.len(), 3);
        let b = root.remove_at(0);
        root.put_back(0, b).unwrap();
        assert_eq!(names(&root), ["b", "c", "a"]);
        assert_eq!(root.get("a").unwrap().name(), Some("a"));
    }

    #[test]
    fn the_name_index_follows_every_insert_removal_and_put_back() {
        // A fixed pseudo-random run of changes, each checked against a plain search of the
        // children: every name finds its own position, and a removed name finds nothing.
        let mut root = MultiService::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for _ in 0..3_000 {
            let name = format!("n{}", next(40));
            match next(3) {
                0 => {
                    let clash = root.get(&name).is_some();
                    assert_eq!(root.insert(named(&name)).is_err(), clash);
                }
                1 if !root.is_empty() => {
                    root.remove_at(next(root.len()));
                }
                _ if !root.is_empty() => {
                    let child = root.remove_at(next(root.len()));
                    root.put_back(next(root.len() + 1), child).unwrap();
                }
                _ => {}
            }
            for n in 0..40 {
                let name = format!("n{n}");
                let searched = root.iter().position(|child| child.name() == Some(&name));
                assert_eq!(root.index_of(&PathSegment::Name(name.clone())), searched);
            }
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", "a/b", "#1"] {
            assert!(
                Child::named(bad, Box::new(MultiService::new())).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn thawing_duplicate_sibling_names_is_an_error() {
        let json = r#"{"name": null, "children": [
            {"type": "rtwisted.MultiService", "name": "a", "children": []},
            {"type": "rtwisted.MultiService", "name": "a", "children": []}]}"#;
        let err = serde_json::from_str::<MultiService>(json).unwrap_err();
        assert!(err.to_string().contains("same name 'a'"), "{err}");
    }
}
