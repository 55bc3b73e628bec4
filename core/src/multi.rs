//! `MultiService`: a service that holds an ordered collection of child services.
//!
//! The rules are Twisted's, with the gaps closed:
//! - children keep their insertion order; iteration and start follow it, stop reverses it;
//! - a name is unique among siblings: adding a clash is an error and changes nothing;
//! - a child's name cannot change while it is in the collection;
//! - children are addressed by name, by index (`#2`), or by path (`web/http`) from the root;
//! - this module only changes the *structure* of a stopped collection ([`MultiService::insert`],
//!   [`MultiService::remove`]). Adding to or removing from a *running* collection goes through
//!   [`Lifecycle::add_service`](crate::Lifecycle::add_service) and
//!   [`Lifecycle::remove_service`](crate::Lifecycle::remove_service), which start or stop the
//!   child as Twisted does.
//!
//! ```
//! use rtwisted_core::{MultiService, ServiceMeta};
//! let mut web = MultiService::named("web").unwrap();
//! web.insert(Box::new(MultiService::named("http").unwrap())).unwrap();
//! let mut root = MultiService::new();
//! root.insert(Box::new(web)).unwrap();
//! assert!(root.find(&"web/http".parse().unwrap()).is_some());
//! assert!(root.insert(Box::new(MultiService::named("web").unwrap())).is_err());
//! assert_eq!(root.len(), 1);
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};

use crate::path::{PathSegment, ServicePath};
use crate::service::{LifecycleState, NameError, Service, ServiceMeta};

/// A change to a tree's structure was refused.
#[derive(Debug, thiserror::Error)]
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
/// Serialized as its name and its children, in order; the name index is rebuilt (and checked
/// for duplicates) when a snapshot is thawed.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "MultiServiceRepr")]
pub struct MultiService {
    #[serde(rename = "name")]
    meta: ServiceMeta,
    children: Vec<Box<dyn Service>>,
    #[serde(skip)]
    names: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct MultiServiceRepr {
    #[serde(rename = "name", default)]
    meta: ServiceMeta,
    #[serde(default)]
    children: Vec<Box<dyn Service>>,
}

impl TryFrom<MultiServiceRepr> for MultiService {
    type Error = TreeError;

    fn try_from(repr: MultiServiceRepr) -> Result<Self, TreeError> {
        // What `push_child` does for each child, without moving the children again.
        let mut children = repr.children;
        let mut names = HashMap::with_capacity(children.len());
        for (index, child) in children.iter_mut().enumerate() {
            if let Some(name) = child.name() {
                match names.entry(name.to_owned()) {
                    Entry::Occupied(clash) => {
                        return Err(TreeError::DuplicateName {
                            name: clash.key().clone(),
                        });
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                    }
                }
            }
            child.meta_mut().has_parent = true;
        }
        Ok(MultiService {
            meta: repr.meta,
            children,
            names,
        })
    }
}

impl MultiService {
    /// An empty, unnamed collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty collection with a name.
    pub fn named(name: impl Into<String>) -> Result<Self, NameError> {
        Ok(MultiService {
            meta: ServiceMeta::named(name)?,
            ..Self::default()
        })
    }

    /// The collection's own metadata.
    pub fn meta(&self) -> &ServiceMeta {
        &self.meta
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
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &dyn Service> + ExactSizeIterator {
        self.children.iter().map(|child| &**child)
    }

    /// The child at `index`.
    pub fn child_at(&self, index: usize) -> Option<&dyn Service> {
        self.children.get(index).map(|child| &**child)
    }

    /// Mutable access to the child at `index`.
    pub fn child_at_mut(&mut self, index: usize) -> Option<&mut (dyn Service + 'static)> {
        self.children.get_mut(index).map(|child| &mut **child)
    }

    /// The child with this name (Twisted's `getServiceNamed`).
    pub fn get(&self, name: &str) -> Option<&dyn Service> {
        self.names.get(name).and_then(|&index| self.child_at(index))
    }

    /// Mutable access to the child with this name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut (dyn Service + 'static)> {
        let index = *self.names.get(name)?;
        self.child_at_mut(index)
    }

    /// The index of the child a segment addresses.
    pub fn index_of(&self, segment: &PathSegment) -> Option<usize> {
        match segment {
            PathSegment::Name(name) => self.names.get(name).copied(),
            PathSegment::Index(index) => (*index < self.children.len()).then_some(*index),
        }
    }

    /// The segment that addresses the child at `index`: its name, or `#index`.
    pub fn segment_of(&self, index: usize) -> Option<PathSegment> {
        self.child_at(index)
            .map(|child| PathSegment::for_child(index, child.name()))
    }

    /// The service at `path` below this collection (the empty path is not a child, so it is
    /// `None`; use the collection itself).
    pub fn find(&self, path: &ServicePath) -> Option<&dyn Service> {
        let (first, rest) = path.segments().split_first()?;
        let mut node = self.child_at(self.index_of(first)?)?;
        for segment in rest {
            let collection = node.collection()?;
            node = collection.child_at(collection.index_of(segment)?)?;
        }
        Some(node)
    }

    /// Mutable access to the service at `path` below this collection.
    pub fn find_mut(&mut self, path: &ServicePath) -> Option<&mut (dyn Service + 'static)> {
        let (first, rest) = path.segments().split_first()?;
        let index = self.index_of(first)?;
        let mut node = self.child_at_mut(index)?;
        for segment in rest {
            let collection = node.collection_mut()?;
            let index = collection.index_of(segment)?;
            node = collection.child_at_mut(index)?;
        }
        Some(node)
    }

    /// The collection at `path` (the empty path is this collection), with an error that says
    /// which part of the path was wrong.
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
                .collection_mut()
                .ok_or(TreeError::NotACollection { path: found }),
        }
    }

    /// Adds a child at the end of a *stopped* collection, as when building a tree.
    ///
    /// A name clash is an error and leaves the collection unchanged. A running collection
    /// refuses: use [`Lifecycle::add_service`](crate::Lifecycle::add_service), which also starts
    /// the child.
    pub fn insert(&mut self, child: Box<dyn Service>) -> Result<(), TreeError> {
        self.ensure_stopped()?;
        self.push_child(child)
    }

    /// Removes the child a segment addresses from a *stopped* collection and returns it.
    pub fn remove(&mut self, segment: &PathSegment) -> Result<Box<dyn Service>, TreeError> {
        self.ensure_stopped()?;
        let index = self.index_of(segment).ok_or_else(|| TreeError::NotFound {
            path: ServicePath::root().join(segment.clone()),
        })?;
        Ok(self.remove_at(index))
    }

    fn ensure_stopped(&self) -> Result<(), TreeError> {
        let state = self.meta.state();
        if state != LifecycleState::Stopped || self.meta.holds_resources {
            return Err(TreeError::NotStopped { state });
        }
        Ok(())
    }

    /// Appends a child after checking its name; the lifecycle driver calls this for running
    /// collections and starts the child itself.
    pub(crate) fn push_child(&mut self, mut child: Box<dyn Service>) -> Result<(), TreeError> {
        if let Some(name) = child.name() {
            match self.names.entry(name.to_owned()) {
                Entry::Occupied(clash) => {
                    return Err(TreeError::DuplicateName {
                        name: clash.key().clone(),
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(self.children.len());
                }
            }
        }
        child.meta_mut().has_parent = true;
        self.children.push(child);
        Ok(())
    }

    pub(crate) fn remove_at(&mut self, index: usize) -> Box<dyn Service> {
        let mut child = self.children.remove(index);
        child.meta_mut().has_parent = false;
        if let Some(name) = child.name() {
            self.names.remove(name);
        }
        for position in self.names.values_mut() {
            if *position > index {
                *position -= 1;
            }
        }
        child
    }
}

#[typetag::serde(name = "rtwisted.MultiService")]
#[async_trait::async_trait]
impl Service for MultiService {
    fn meta(&self) -> &ServiceMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ServiceMeta {
        &mut self.meta
    }

    fn collection(&self) -> Option<&MultiService> {
        Some(self)
    }

    fn collection_mut(&mut self) -> Option<&mut MultiService> {
        Some(self)
    }
}

crate::register_type!(service "rtwisted.MultiService", version 1);

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Box<dyn Service> {
        Box::new(MultiService::named(name).unwrap())
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
        let names: Vec<_> = root.iter().map(|c| c.name().unwrap()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn name_cannot_change_while_the_service_has_a_parent() {
        let mut root = MultiService::new();
        root.insert(named("a")).unwrap();
        let child = root.get_mut("a").unwrap();
        let err = child.meta_mut().set_name(Some("b".into())).unwrap_err();
        assert!(matches!(err, NameError::HasParent { .. }), "{err}");
        assert!(root.get("a").is_some());
        let mut removed = root.remove(&PathSegment::Name("a".into())).unwrap();
        removed.meta_mut().set_name(Some("b".into())).unwrap();
        assert_eq!(removed.name(), Some("b"));
    }

    #[test]
    fn lookup_by_name_index_and_path() {
        let mut web = MultiService::named("web").unwrap();
        web.insert(Box::new(MultiService::new())).unwrap();
        web.insert(named("http")).unwrap();
        let mut root = MultiService::new();
        root.insert(Box::new(web)).unwrap();

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
        let names: Vec<_> = root.iter().map(|c| c.name().unwrap()).collect();
        assert_eq!(names, ["c", "a", "b"]);
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
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", "a/b", "#1"] {
            assert!(MultiService::named(bad).is_err(), "{bad:?} was accepted");
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
