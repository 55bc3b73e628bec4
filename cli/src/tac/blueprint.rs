//! The application a TAC program is building, kept outside the Starlark heap.
//!
//! Every object a TAC file makes (the application, collections, services, factories, timer
//! tasks) is a node here; the Starlark values are small handles naming a node. Twisted's tree
//! rules are checked as the program runs, so an error points at the line that broke them: a
//! name is unique among siblings, a service has one parent (setting another moves it, as in
//! Twisted), a name cannot change while the service has a parent, and a collection cannot be
//! put inside itself. At the end the application node is written out as the same JSON a `tas`
//! snapshot holds, and typed from that.

use std::sync::{Arc, Mutex, MutexGuard};

use rtwisted_core::service::validate_name;
use serde_json::{Map, Value, json};

use super::python::ProtocolSpec;

/// A blueprint shared by the handles of one evaluation.
pub type Shared = Arc<Mutex<Blueprint>>;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The application: settings plus a root collection.
    Application,
    /// A `MultiService`: a service that holds services.
    Collection,
    /// Any other service.
    Service,
    /// A protocol factory or a timer task: a value given to a service, not a service.
    Part,
}

/// One object a TAC file made.
#[derive(Debug)]
struct Node {
    role: Role,
    /// What to call it in messages: `StreamServer`, `Application 'echo'`.
    label: String,
    /// Its persisted fields, `type` included; for the application, its settings.
    fields: Map<String, Value>,
    name: Option<String>,
    parent: Option<usize>,
    children: Vec<usize>,
    /// For Twisted's factories (`protocol.ServerFactory()`): `Some`, holding the protocol once
    /// `factory.protocol = wire.Echo` sets it.
    twisted_factory: Option<Option<&'static ProtocolSpec>>,
    /// Given to a service already (its fields were copied there).
    given: bool,
}

/// Every node made so far.
#[derive(Debug, Default)]
pub struct Blueprint {
    nodes: Vec<Node>,
}

/// Locks a shared blueprint; a poisoned lock (a panic elsewhere) is reported, not propagated.
pub fn lock(shared: &Shared) -> anyhow::Result<MutexGuard<'_, Blueprint>> {
    shared
        .lock()
        .map_err(|_| anyhow::anyhow!("internal error: the TAC blueprint is unusable"))
}

impl Blueprint {
    /// Adds a node and returns its id.
    pub fn add(
        &mut self,
        role: Role,
        label: impl Into<String>,
        fields: Map<String, Value>,
        name: Option<String>,
    ) -> usize {
        self.nodes.push(Node {
            role,
            label: label.into(),
            fields,
            name,
            parent: None,
            children: Vec::new(),
            twisted_factory: None,
            given: false,
        });
        self.nodes.len() - 1
    }

    /// Adds one of Twisted's factories (`Factory()`, `ServerFactory()`), its protocol unset.
    pub fn add_twisted_factory(&mut self, label: &str) -> usize {
        let id = self.add(Role::Part, label, Map::new(), None);
        if let Some(node) = self.nodes.get_mut(id) {
            node.twisted_factory = Some(None);
        }
        id
    }

    /// The protocol of a Twisted factory: `None` for any other node, `Some(None)` while unset.
    pub fn twisted_protocol(
        &self,
        id: usize,
    ) -> anyhow::Result<Option<Option<&'static ProtocolSpec>>> {
        Ok(self.node(id)?.twisted_factory)
    }

    /// `factory.protocol = wire.Echo`: the factory becomes `fields` (the protocol's rtwisted
    /// factory). Refused for other nodes, and once the factory was given to a service, whose
    /// copy would not follow (in Python it would).
    pub fn set_protocol(
        &mut self,
        id: usize,
        protocol: &'static ProtocolSpec,
        fields: Map<String, Value>,
    ) -> anyhow::Result<()> {
        let description = self.describe(id)?;
        let node = self.node_mut(id)?;
        if node.twisted_factory.is_none() {
            anyhow::bail!("{description} has no settable attribute 'protocol'");
        }
        if node.given {
            anyhow::bail!(
                "set {description}'s protocol before giving it to a service: the service holds a copy of the factory as it was"
            );
        }
        node.twisted_factory = Some(Some(protocol));
        node.fields = fields;
        Ok(())
    }

    /// Notes that a node's fields were given to a service.
    pub fn mark_given(&mut self, id: usize) -> anyhow::Result<()> {
        self.node_mut(id)?.given = true;
        Ok(())
    }

    fn node(&self, id: usize) -> anyhow::Result<&Node> {
        self.nodes
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("internal error: no TAC object #{id}"))
    }

    fn node_mut(&mut self, id: usize) -> anyhow::Result<&mut Node> {
        self.nodes
            .get_mut(id)
            .ok_or_else(|| anyhow::anyhow!("internal error: no TAC object #{id}"))
    }

    /// The node's role.
    pub fn role(&self, id: usize) -> anyhow::Result<Role> {
        Ok(self.node(id)?.role)
    }

    /// The node's name, if it has one.
    pub fn name(&self, id: usize) -> anyhow::Result<Option<String>> {
        Ok(self.node(id)?.name.clone())
    }

    /// How messages refer to the node: its type, and its name when it has one.
    pub fn describe(&self, id: usize) -> anyhow::Result<String> {
        let node = self.node(id)?;
        Ok(match (&node.role, &node.name) {
            (Role::Application, _) | (_, None) => node.label.clone(),
            (_, Some(name)) => format!("{} '{name}'", node.label),
        })
    }

    /// Twisted's `setName`: refused while the service has a parent.
    pub fn set_name(&mut self, id: usize, name: &str) -> anyhow::Result<()> {
        let node = self.node(id)?;
        match node.role {
            Role::Application => anyhow::bail!(
                "an application's name is given when it is made: Application(\"{name}\")"
            ),
            Role::Part => {
                anyhow::bail!("{} is not a service, so it has no name", self.describe(id)?)
            }
            Role::Collection | Role::Service => {}
        }
        if node.parent.is_some() {
            anyhow::bail!(
                "cannot rename {} while it has a parent; call setName before setServiceParent",
                self.describe(id)?
            );
        }
        validate_name(name)?;
        self.node_mut(id)?.name = Some(name.to_owned());
        Ok(())
    }

    /// Twisted's `setServiceParent`: `child` joins `parent` (leaving any parent it had).
    pub fn set_parent(&mut self, child: usize, parent: usize) -> anyhow::Result<()> {
        match self.role(parent)? {
            Role::Application | Role::Collection => {}
            _ => anyhow::bail!(
                "{} cannot hold services; the parent must be the application or a MultiService",
                self.describe(parent)?
            ),
        }
        match self.role(child)? {
            Role::Collection | Role::Service => {}
            Role::Application => {
                anyhow::bail!("the application is the root; it cannot have a parent")
            }
            Role::Part => anyhow::bail!(
                "{} is not a service; give it to a service, e.g. TCPServer(7001, factory)",
                self.describe(child)?
            ),
        }
        let mut ancestor = Some(parent);
        while let Some(id) = ancestor {
            if id == child {
                anyhow::bail!("{} cannot be put inside itself", self.describe(child)?);
            }
            ancestor = self.node(id)?.parent;
        }
        if self.node(child)?.parent == Some(parent) {
            return Ok(());
        }
        if let Some(name) = self.node(child)?.name.clone() {
            for &sibling in &self.node(parent)?.children {
                if self.node(sibling)?.name.as_deref() == Some(name.as_str()) {
                    anyhow::bail!(
                        "cannot have two services named '{name}' in {}",
                        self.describe(parent)?
                    );
                }
            }
        }
        self.disown(child)?;
        self.node_mut(child)?.parent = Some(parent);
        self.node_mut(parent)?.children.push(child);
        Ok(())
    }

    /// Twisted's `disownServiceParent`: the service leaves its parent, if it has one.
    pub fn disown(&mut self, child: usize) -> anyhow::Result<()> {
        if let Some(parent) = self.node_mut(child)?.parent.take() {
            self.node_mut(parent)?.children.retain(|&id| id != child);
        }
        Ok(())
    }

    /// The child of a collection with this name (Twisted's `getServiceNamed`).
    pub fn child_named(&self, parent: usize, name: &str) -> anyhow::Result<usize> {
        for &child in &self.node(parent)?.children {
            if self.node(child)?.name.as_deref() == Some(name) {
                return Ok(child);
            }
        }
        anyhow::bail!("{} has no service named '{name}'", self.describe(parent)?)
    }

    /// The children of a collection, in order.
    pub fn children(&self, parent: usize) -> anyhow::Result<Vec<usize>> {
        Ok(self.node(parent)?.children.clone())
    }

    /// Sets one of the application's settings (`process` or `persistence` section).
    pub fn set_setting(
        &mut self,
        id: usize,
        section: &str,
        key: &str,
        value: Value,
    ) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        match node.fields.get_mut(section).and_then(Value::as_object_mut) {
            Some(settings) => {
                settings.insert(key.to_owned(), value);
                Ok(())
            }
            None => anyhow::bail!("internal error: no '{section}' settings"),
        }
    }

    /// One of the application's settings.
    pub fn setting(&self, id: usize, section: &str, key: &str) -> anyhow::Result<Value> {
        Ok(self
            .node(id)?
            .fields
            .get(section)
            .and_then(|settings| settings.get(key))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// The node as snapshot JSON: a service with its name and children, a part as it is, the
    /// application with its root collection.
    pub fn to_json(&self, id: usize) -> anyhow::Result<Value> {
        let node = self.node(id)?;
        if matches!(node.twisted_factory, Some(None)) {
            anyhow::bail!(
                "{} has no protocol: set it first (factory.protocol = wire.Echo), or make the factory with protocol.Factory.forProtocol(wire.Echo)",
                node.label
            );
        }
        let children = node
            .children
            .iter()
            .map(|&child| self.to_json(child))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        let mut fields = node.fields.clone();
        match node.role {
            Role::Application => {
                fields.insert(
                    "services".into(),
                    json!({ "name": null, "children": children }),
                );
            }
            Role::Collection => {
                fields.insert("name".into(), json!(node.name));
                fields.insert("children".into(), Value::Array(children));
            }
            Role::Service => {
                fields.insert("name".into(), json!(node.name));
            }
            Role::Part => {}
        }
        Ok(Value::Object(fields))
    }
}
