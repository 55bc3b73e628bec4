//! `twisted.web` in TAC files: `Site(root)`, `File(path)`, `ReverseProxyResource(host, port,
//! path)`, `Data(data, type)`, `Redirect(url)`, `Health()`, `Resource()`, and
//! `resource.putChild(b"name", child)`: globals, as the rest of the TAC builtins, and the
//! members of `twisted.web.server`, `.static`, `.proxy`, `.util` and `.resource` for files
//! that import them (see `python/mod.rs`).
//!
//! ```python
//! root = File("/srv/www")
//! root.putChild(b"api", ReverseProxyResource("127.0.0.1", 8000, b""))
//! TCPServer(8080, Site(root)).setServiceParent(application)
//! ```
//!
//! `Site(root)` flattens the tree into the site's mounts (`/`, `/api`, `/api/v2`), as the
//! snapshot holds them. A resource already given to a `Site` cannot get more children (the
//! site would not see them); the error says to call `putChild` first.
#![allow(non_snake_case)]

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rtwisted_services::web::Site as SiteType;
use serde_json::{Map, Value as Json, json};
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::bytes::StarlarkBytes;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::{StarlarkValue, Value, ValueLike, starlark_value};

use super::builtins::{blueprint_of, construct};
use super::handle::Handle;
pub use super::values::WebResource;

/// A resource and its children.
#[derive(Debug, Default)]
pub struct ResourceNode {
    /// What it serves (a resource's JSON, with its `kind`), or nothing (`Resource()`).
    resource: Option<Json>,
    /// `putChild`'s children, in order.
    children: Vec<(String, Arc<Mutex<ResourceNode>>)>,
    /// What it is, for messages.
    label: String,
    /// Set once a `Site` flattened it.
    frozen: bool,
}

starlark_simple_value!(WebResource);

impl fmt::Display for WebResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.lock().unwrap_or_else(PoisonError::into_inner);
        write!(f, "<{}>", node.label)
    }
}

#[starlark_value(type = "Resource")]
impl<'v> StarlarkValue<'v> for WebResource {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("Resource", resource_methods);
        Some(RES.methods())
    }
}

fn resource(label: String, value: Option<Json>) -> WebResource {
    WebResource {
        node: Arc::new(Mutex::new(ResourceNode {
            resource: value,
            children: Vec::new(),
            label,
            frozen: false,
        })),
    }
}

/// A path segment given as bytes (Twisted's spelling) or text.
fn segment(value: Value) -> anyhow::Result<String> {
    let text = if let Some(bytes) = value.downcast_ref::<StarlarkBytes>() {
        String::from_utf8(bytes.as_bytes().to_vec())
            .map_err(|_| anyhow::anyhow!("putChild: the path must be UTF-8"))?
    } else if let Some(text) = value.unpack_str() {
        text.to_owned()
    } else {
        anyhow::bail!("putChild: the path must be bytes or a string, like b\"api\"");
    };
    if text.is_empty() || text.contains(['/', '%', '?', '#']) || text == "." || text == ".." {
        anyhow::bail!(
            "putChild: {text:?} is not one path segment; nest resources for deeper paths"
        );
    }
    Ok(text)
}

fn text_of(value: Value, what: &str) -> anyhow::Result<String> {
    if let Some(bytes) = value.downcast_ref::<StarlarkBytes>() {
        return String::from_utf8(bytes.as_bytes().to_vec())
            .map_err(|_| anyhow::anyhow!("{what} must be UTF-8"));
    }
    value
        .unpack_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{what} must be bytes or a string"))
}

#[starlark_module]
fn resource_methods(builder: &mut MethodsBuilder) {
    /// Twisted's `putChild(path, child)`: `child` answers at `path` under this resource.
    fn putChild<'v>(
        this: &WebResource,
        path: Value<'v>,
        child: Value<'v>,
    ) -> anyhow::Result<NoneType> {
        let name = segment(path)?;
        let child = child
            .downcast_ref::<WebResource>()
            .ok_or_else(|| anyhow::anyhow!("putChild: the child must be a resource (File, ReverseProxyResource, Data, ...), not {}", child.get_type()))?;
        if Arc::ptr_eq(&this.node, &child.node) {
            anyhow::bail!("putChild: a resource cannot be its own child");
        }
        let mut node = this.node.lock().unwrap_or_else(PoisonError::into_inner);
        if node.frozen {
            anyhow::bail!(
                "putChild({name:?}) on a resource already given to Site(): call putChild before Site(root)"
            );
        }
        node.children.retain(|(known, _)| *known != name);
        node.children.push((name, Arc::clone(&child.node)));
        Ok(NoneType)
    }
}

/// Walks the tree under `node` at `path`, adding each resource to `mounts`.
fn flatten(
    node: &Arc<Mutex<ResourceNode>>,
    path: &str,
    mounts: &mut Map<String, Json>,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > 64 {
        anyhow::bail!(
            "Site(): the resource tree is deeper than 64 levels (a resource inside itself?)"
        );
    }
    let mut node = node.lock().unwrap_or_else(PoisonError::into_inner);
    node.frozen = true;
    if let Some(resource) = &node.resource {
        mounts.insert(path.to_owned(), resource.clone());
    }
    for (name, child) in &node.children {
        let child_path = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        flatten(child, &child_path, mounts, depth + 1)?;
    }
    Ok(())
}

#[starlark_module]
pub(super) fn web_names(builder: &mut GlobalsBuilder) {
    /// `server.Site(resource, logPath=None)`: the HTTP factory that serves the tree.
    fn Site<'v>(
        #[starlark(require = pos)] resource: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] logPath: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] timeout: NoneOr<u32>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        let root = resource.downcast_ref::<WebResource>().ok_or_else(|| {
            anyhow::anyhow!(
                "Site(): the root must be a resource (File, ReverseProxyResource, ...), not {}",
                resource.get_type()
            )
        })?;
        let mut mounts = Map::new();
        flatten(&root.node, "/", &mut mounts, 0)?;
        let mut arguments = vec![("resources".to_owned(), Json::Object(mounts))];
        if let NoneOr::Other(path) = logPath {
            arguments.push(("access_log".to_owned(), json!({ "file": path })));
        }
        if let NoneOr::Other(seconds) = timeout {
            arguments.push(("http".to_owned(), json!({ "header_timeout_secs": seconds })));
        }
        construct(&blueprint_of(eval)?, SiteType::TAG, arguments)
    }

    /// `static.File(path)`: a folder (listed, no symlinks out) or a single file.
    fn File<'v>(
        #[starlark(require = pos)] path: Value<'v>,
        #[starlark(require = named, default = true)] listing: bool,
        #[starlark(require = named, default = false)] follow_symlinks: bool,
    ) -> anyhow::Result<WebResource> {
        let path = text_of(path, "File(): the path")?;
        Ok(resource(
            format!("File {path}"),
            Some(json!({
                "kind": "static", "path": path, "listing": listing, "follow_symlinks": follow_symlinks,
            })),
        ))
    }

    /// `proxy.ReverseProxyResource(host, port, path)`: requests under it go to `host:port`,
    /// with `path` before the rest of theirs.
    fn ReverseProxyResource<'v>(
        #[starlark(require = pos)] host: &str,
        #[starlark(require = pos)] port: u32,
        #[starlark(require = pos)] path: Value<'v>,
    ) -> anyhow::Result<WebResource> {
        let path = text_of(path, "ReverseProxyResource(): the path")?;
        let port = u16::try_from(port)
            .map_err(|_| anyhow::anyhow!("ReverseProxyResource(): port {port} is not 0..65535"))?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Ok(resource(
            format!("ReverseProxyResource {host}:{port}"),
            Some(json!({
                "kind": "proxy", "dest": format!("tcp:host={host}:port={port}"), "path": path,
            })),
        ))
    }

    /// `static.Data(data, type)`: these bytes, with this content type.
    fn Data<'v>(
        #[starlark(require = pos)] data: Value<'v>,
        #[starlark(require = pos)] r#type: &str,
    ) -> anyhow::Result<WebResource> {
        let data = if let Some(bytes) = data.downcast_ref::<StarlarkBytes>() {
            match std::str::from_utf8(bytes.as_bytes()) {
                Ok(text) => json!(text),
                Err(_) => json!(bytes.as_bytes()),
            }
        } else {
            json!(text_of(data, "Data(): the data")?)
        };
        Ok(resource(
            format!("Data {type}", type = r#type),
            Some(json!({ "kind": "data", "data": data, "content_type": r#type })),
        ))
    }

    /// `util.Redirect(url)`: 302 Found to `url` (`code=` for 301, 303, 307, 308).
    fn Redirect<'v>(
        #[starlark(require = pos)] url: Value<'v>,
        #[starlark(require = named, default = 302)] code: u32,
    ) -> anyhow::Result<WebResource> {
        let url = text_of(url, "Redirect(): the URL")?;
        Ok(resource(
            format!("Redirect {url}"),
            Some(json!({ "kind": "redirect", "to": url, "code": code })),
        ))
    }

    /// `Health()`: `200 ok` while the server runs.
    fn Health() -> anyhow::Result<WebResource> {
        Ok(resource("Health".into(), Some(json!({ "kind": "health" }))))
    }

    /// `resource.Resource()`: serves nothing itself; a parent for `putChild`.
    fn Resource() -> anyhow::Result<WebResource> {
        Ok(resource("Resource".into(), None))
    }
}
