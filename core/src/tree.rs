//! A view of a service tree for people and scripts: every node's path, type, name, running flag
//! and own fields.
//!
//! [`Node::from_service`] builds the view from a live tree; [`Node::from_value`] builds the same
//! view from a snapshot's decoded data, without needing the types to be linked, so a snapshot
//! can always be inspected. [`Node::walk`] yields every node depth-first, parents before
//! children, children in order.
//!
//! ```
//! use rtwisted_core::{tree::Node, MultiService, Service};
//! let mut root = MultiService::new();
//! root.insert(Box::new(MultiService::named("web").unwrap())).unwrap();
//! let view = Node::from_service(&root).unwrap();
//! let paths: Vec<_> = view.walk().map(|node| node.path.clone()).collect();
//! assert_eq!(paths, ["/", "web"]);
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::path::{PathSegment, ServicePath};
use crate::registry;
use crate::service::Service;

/// The key that holds a trait object's type tag in serialized data.
pub const TYPE_KEY: &str = "type";
/// The key that holds a collection's children in serialized data.
pub const CHILDREN_KEY: &str = "children";
/// The key that holds a service's name in serialized data.
pub const NAME_KEY: &str = "name";
/// The tag of the root collection, which is stored without one.
pub const ROOT_TAG: &str = "rtwisted.MultiService";

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
    pub fn from_service(root: &dyn Service) -> Result<Node, serde_json::Error> {
        Self::service_node(root, &ServicePath::root())
    }

    fn service_node(service: &dyn Service, path: &ServicePath) -> Result<Node, serde_json::Error> {
        let mut fields = match serde_json::to_value(service)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        fields.shift_remove(TYPE_KEY);
        fields.shift_remove(NAME_KEY);
        let children = match service.collection() {
            Some(collection) => {
                fields.shift_remove(CHILDREN_KEY);
                let mut nodes = Vec::with_capacity(collection.len());
                for (index, child) in collection.iter().enumerate() {
                    let child_path = path.join(PathSegment::for_child(index, child.name()));
                    nodes.push(Self::service_node(child, &child_path)?);
                }
                Some(nodes)
            }
            None => None,
        };
        Ok(Node {
            path: path.to_string(),
            type_tag: service.type_tag().to_owned(),
            name: service.name().map(str::to_owned),
            running: service.running(),
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
        let mut web = MultiService::named("web").unwrap();
        web.insert(Box::new(MultiService::new())).unwrap();
        web.insert(Box::new(MultiService::named("http").unwrap()))
            .unwrap();
        let mut root = MultiService::new();
        root.insert(Box::new(web)).unwrap();
        root
    }

    #[tokio::test]
    async fn the_walk_yields_every_node_with_path_type_name_and_running() {
        let mut root = tree();
        Lifecycle::default().start(&mut root).await.unwrap();
        let view = Node::from_service(&root).unwrap();
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
        let live = Node::from_service(&root).unwrap();
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
