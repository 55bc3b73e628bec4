//! A view of a service tree for people and scripts: every node's path, type, name, running flag
//! and own fields.
//!
//! [`Node::from_tree`] builds the view from a live tree; [`Node::from_value`] builds the same
//! view from a snapshot's decoded data, without needing the types to be linked, so a snapshot
//! can always be inspected. [`Node::walk`] yields every node depth-first, parents before
//! children, children in order.
//!
//! ```
//! use rtwisted_core::{tree::Node, MultiService};
//! let mut root = MultiService::new();
//! root.insert_named("web", Box::new(MultiService::new())).unwrap();
//! let view = Node::from_tree(&root).unwrap();
//! let paths: Vec<_> = view.walk().map(|node| node.path.clone()).collect();
//! assert_eq!(paths, ["/", "web"]);
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::child::Child;
use crate::multi::MultiService;
use crate::path::{PathSegment, ServicePath};
use crate::registry;

pub use crate::codec::{NAME_KEY, TYPE_KEY};

/// The key that holds a collection's children in serialized data.
pub const CHILDREN_KEY: &str = "children";
/// The tag of the root collection, which is stored without one.
pub const ROOT_TAG: &str = MultiService::TAG;

/// One node of a tree view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// The node's path from the root (`/` for the root).
    pub path: String,
    /// The type tag, e.g. `rtwisted.StreamServer`.
    #[serde(rename = "type")]
    pub type_tag: String,
    /// The service's name, if it has one.
    pub name: Option<String>,
    /// Whether the service is running (always false for a snapshot).
    pub running: bool,
    /// The service's own persisted fields (without its type, name and children).
    pub fields: Map<String, Value>,
    /// The children, for collections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<Node>>,
    /// False when this binary does not link the node's type (only from snapshot data).
    #[serde(skip)]
    pub known: bool,
}

impl Node {
    /// The view of a live tree rooted at `root`.
    pub fn from_tree(root: &MultiService) -> Result<Node, serde_json::Error> {
        Ok(Node {
            path: ServicePath::root().to_string(),
            type_tag: ROOT_TAG.to_owned(),
            name: None,
            running: root.running(),
            fields: Map::new(),
            children: Some(Self::children_of(root, &ServicePath::root())?),
            known: true,
        })
    }

    fn children_of(
        collection: &MultiService,
        path: &ServicePath,
    ) -> Result<Vec<Node>, serde_json::Error> {
        let mut nodes = Vec::with_capacity(collection.len());
        for (index, child) in collection.iter().enumerate() {
            let child_path = path.join(PathSegment::for_child(index, child.name()));
            nodes.push(Self::child_node(child, &child_path)?);
        }
        Ok(nodes)
    }

    fn child_node(child: &Child, path: &ServicePath) -> Result<Node, serde_json::Error> {
        let mut fields = match serde_json::to_value(child)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        fields.shift_remove(TYPE_KEY);
        fields.shift_remove(NAME_KEY);
        let children = match child.service().collection() {
            Some(collection) => {
                fields.shift_remove(CHILDREN_KEY);
                Some(Self::children_of(collection, path)?)
            }
            None => None,
        };
        Ok(Node {
            path: path.to_string(),
            type_tag: child.service().type_tag().to_owned(),
            name: child.name().map(str::to_owned),
            running: child.running(),
            fields,
            children,
            known: true,
        })
    }

    /// The view of a tree from its serialized form (the `services` value of a snapshot), which
    /// works whether or not this binary links the types. The root carries no tag, so it is
    /// shown as a `rtwisted.MultiService`.
    pub fn from_value(root: &Value) -> Node {
        Self::value_node(root, &ServicePath::root(), Some(ROOT_TAG))
    }

    fn value_node(value: &Value, path: &ServicePath, implied_tag: Option<&str>) -> Node {
        let mut fields = match value {
            Value::Object(map) => map.clone(),
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other.clone());
                map
            }
        };
        let type_tag = match fields.shift_remove(TYPE_KEY) {
            Some(Value::String(tag)) => tag,
            _ => implied_tag.unwrap_or("?").to_owned(),
        };
        let name = match fields.shift_remove(NAME_KEY) {
            Some(Value::String(name)) => Some(name),
            _ => None,
        };
        let children = match fields.shift_remove(CHILDREN_KEY) {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let child_name = item.get(NAME_KEY).and_then(Value::as_str);
                        let child_path = path.join(PathSegment::for_child(index, child_name));
                        Self::value_node(item, &child_path, None)
                    })
                    .collect(),
            ),
            Some(other) => {
                fields.insert(CHILDREN_KEY.into(), other);
                None
            }
            None => None,
        };
        Node {
            path: path.to_string(),
            known: registry::lookup(&type_tag).is_some(),
            type_tag,
            name,
            running: false,
            fields,
            children,
        }
    }

    /// Every node, depth-first: this node, then each child's subtree in order.
    pub fn walk(&self) -> impl Iterator<Item = &Node> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            if let Some(children) = &node.children {
                stack.extend(children.iter().rev());
            }
            Some(node)
        })
    }

    /// A short description for a tree view: the endpoint, if the node has one, else nothing.
    pub fn endpoint(&self) -> Option<&str> {
        self.fields.get("endpoint").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lifecycle, MultiService};

    fn tree() -> MultiService {
        let mut web = MultiService::new();
        web.insert_unnamed(Box::new(MultiService::new())).unwrap();
        web.insert_named("http", Box::new(MultiService::new()))
            .unwrap();
        let mut root = MultiService::new();
        root.insert_named("web", Box::new(web)).unwrap();
        root
    }

    #[tokio::test]
    async fn the_walk_yields_every_node_with_path_type_name_and_running() {
        let mut root = tree();
        Lifecycle::default().start(&mut root).await.unwrap();
        let view = Node::from_tree(&root).unwrap();
        let rows: Vec<_> = view
            .walk()
            .map(|n| {
                (
                    n.path.as_str(),
                    n.type_tag.as_str(),
                    n.name.as_deref(),
                    n.running,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("/", ROOT_TAG, None, true),
                ("web", ROOT_TAG, Some("web"), true),
                ("web/#0", ROOT_TAG, None, true),
                ("web/http", ROOT_TAG, Some("http"), true),
            ]
        );
        assert!(view.walk().all(|n| n.fields.is_empty() && n.known));
    }

    #[test]
    fn the_view_from_data_matches_the_view_from_the_live_tree() {
        let root = tree();
        let live = Node::from_tree(&root).unwrap();
        let data = Node::from_value(&serde_json::to_value(&root).unwrap());
        assert_eq!(live, data);
    }

    #[test]
    fn unknown_tags_in_data_are_marked() {
        let data = serde_json::json!({"name": null, "children": [
            {"type": "acme.Thing", "name": "x", "size": 3}
        ]});
        let view = Node::from_value(&data);
        let thing = &view.children.as_ref().unwrap()[0];
        assert_eq!(thing.type_tag, "acme.Thing");
        assert!(!thing.known);
        assert_eq!(thing.fields["size"], 3);
    }
}
