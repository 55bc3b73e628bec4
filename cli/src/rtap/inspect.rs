//! `rtap inspect FILE`: the header and the service tree, for people or (`--json`) scripts.
//!
//! It works from the snapshot's generic data, so a snapshot whose types this binary does not
//! link is still shown, those nodes marked unknown. A TAC file (`.tac`, `.py`) is run, and the
//! application it defines is shown as its snapshot would be; nothing is written or started.

use rtwisted_core::tree::Node;
use rtwisted_core::{PathSegment, ServicePath};
use rtwisted_persist::RawSnapshot;
use serde_json::{Value, json};

use super::InspectArgs;
use crate::error::CliError;
use crate::snapshots::{self, Access, Location};

/// Prints the snapshot the arguments name.
pub fn run(args: &InspectArgs, access: &Access) -> Result<(), CliError> {
    let detail = if args.all {
        rtwisted_persist::view::Detail::Everything
    } else {
        rtwisted_persist::view::Detail::Summaries
    };
    if args.live.live {
        // The running tree as a snapshot, shown like any other; nothing is written.
        let socket =
            super::live::socket(Some(&args.file), args.live.control.as_deref(), "inspect")?;
        let bytes = super::live::fetch(&socket)?;
        let raw = rtwisted_persist::decode_raw_as(&bytes, &access.load_options(None, detail))
            .map_err(|error| {
                CliError::failed(format!(
                    "the running tree sent by {}: {error}",
                    socket.display()
                ))
            })?;
        let shown = format!("the running tree of {} (live)", socket.display());
        return show(args, &shown, bytes.len() as u64, &raw, false);
    }
    let location = Location::new(&args.file, args.store.store.as_deref())?;
    let from_tac = matches!(&location, Location::File(path) if crate::tac_source::is_tac(path));
    let raw = match &location {
        Location::File(path) if from_tac => {
            let app = crate::tac_source::evaluate(path)?;
            let style = app.persistence().style;
            let (bytes, _) = rtwisted_persist::encode(&app, style)
                .map_err(|error| CliError::failed(format!("{}: {error}", path.display())))?;
            rtwisted_persist::decode_raw(&bytes)
                .map_err(|error| CliError::failed(format!("{}: {error}", path.display())))?
        }
        _ => snapshots::open_raw_at(&location, access, detail)?,
    };
    let size = match &location {
        Location::File(path) if !from_tac => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    };
    show(args, &location.to_string(), size, &raw, from_tac)
}

/// Prints `raw`, which came from `shown` (`size` bytes, 0 when unknown).
fn show(
    args: &InspectArgs,
    shown: &str,
    size: u64,
    raw: &RawSnapshot,
    from_tac: bool,
) -> Result<(), CliError> {
    if !raw.unknown_types.is_empty() {
        eprintln!(
            "rtap: warning: this binary does not link {}; those services are shown from their raw data",
            raw.unknown_types.join(", ")
        );
    }
    let tree = Node::from_value(raw.application.get("services").unwrap_or(&Value::Null));
    let services = match &args.path {
        None => tree,
        Some(text) => {
            let wanted = super::document::parse_path("inspect", text)?;
            node_at(&tree, &wanted)
                .cloned()
                .ok_or_else(|| CliError::failed(format!("no service at '{wanted}' in {shown}")))?
        }
    };
    if args.json {
        let mut document = json_document(raw, &services);
        if from_tac {
            // Not a snapshot: there is no file header, creation time or checksum to report.
            document["source"] = json!("tac");
            for key in ["created", "producer", "checksum", "format_version"] {
                document[key] = Value::Null;
            }
        }
        crate::output::println(
            serde_json::to_string_pretty(&document)
                .map_err(|error| CliError::failed(error.to_string()))?,
        )?;
    } else {
        crate::output::print(text_report(shown, size, raw, &services, from_tac))?;
    }
    Ok(())
}

/// The node at `path`, by the rule every command follows: a name picks the child with that
/// name, `#N` the child at index N, named or not.
fn node_at<'a>(root: &'a Node, path: &ServicePath) -> Option<&'a Node> {
    let mut node = root;
    for segment in path.segments() {
        let children = node.children.as_deref()?;
        node = match segment {
            PathSegment::Index(index) => children.get(*index)?,
            PathSegment::Name(name) => children
                .iter()
                .find(|child| child.name.as_deref() == Some(name.as_str()))?,
        };
    }
    Some(node)
}

fn json_document(raw: &RawSnapshot, services: &Node) -> Value {
    let header = &raw.header;
    json!({
        "app": header.fields.app,
        "style": header.fields.style,
        "format_version": header.format_version,
        "created": header.fields.created,
        "producer": header.fields.producer,
        "checksum": header.checksum,
        "encrypted": raw.encrypted,
        "manifest": header.fields.manifest,
        "parent": header.fields.parent,
        "unknown_types": raw.unknown_types,
        "process": raw.application.get("process").cloned().unwrap_or(Value::Null),
        "services": services,
    })
}

fn text_report(
    location: &str,
    size: u64,
    raw: &RawSnapshot,
    services: &Node,
    from_tac: bool,
) -> String {
    let header = &raw.header;
    let process = raw.application.get("process");
    let setting = |key: &str, octal: bool| match process.and_then(|p| p.get(key)) {
        Some(Value::Number(n)) if octal => n.as_u64().map_or(n.to_string(), |n| format!("{n:04o}")),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "-".to_owned(),
    };
    let types: Vec<String> = header
        .fields
        .manifest
        .iter()
        .map(|entry| {
            let kind = serde_json::to_value(entry.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{} ({kind} v{})", entry.tag, entry.version)
        })
        .collect();
    let mut out = String::new();
    if from_tac {
        out.push_str(&format!(
            "tac       {location} (evaluated, not saved; saves as {})\n",
            header.fields.style
        ));
        out.push_str(&format!("app       {}\n", header.fields.app));
    } else {
        out.push_str(&format!(
            "snapshot  {location} ({}style {}, format {})\n",
            if size > 0 {
                format!("{size} bytes, ")
            } else {
                String::new()
            },
            super::convert::describe(header.fields.style, raw.encrypted),
            header.format_version
        ));
        out.push_str(&format!("app       {}\n", header.fields.app));
        out.push_str(&format!(
            "created   {} by {}\n",
            header.fields.created, header.fields.producer
        ));
        out.push_str(&format!("checksum  {} (verified)\n", header.checksum));
        if let Some(parent) = &header.fields.parent {
            match parent.store {
                Some(number) => out.push_str(&format!(
                    "parent    {}@{number} ({})\n",
                    header.fields.app, parent.checksum
                )),
                None => out.push_str(&format!("parent    {}\n", parent.checksum)),
            }
        }
    }
    out.push_str(&format!(
        "process   uid {}  gid {}  name {}  umask {}\n",
        setting("uid", false),
        setting("gid", false),
        setting("process_name", false),
        setting("umask", true)
    ));
    out.push_str(&format!("types     {}\n\n", types.join(", ")));
    out.push_str(&tree(services).to_string());
    out
}

fn tree(node: &Node) -> termtree::Tree<String> {
    let mut tree = termtree::Tree::new(label(node));
    for (mount, resource) in web_resources(node) {
        tree.push(termtree::Tree::new(format!("{mount}  {resource}")));
    }
    for child in node.children.iter().flatten() {
        tree.push(self::tree(child));
    }
    tree
}

/// A web site's resources (a server whose factory has `resources`), one line each, from the
/// raw data, so they show whether or not this binary links the web service.
fn web_resources(node: &Node) -> Vec<(String, String)> {
    let Some(Value::Object(resources)) = node
        .fields
        .get("factory")
        .and_then(|factory| factory.get("resources"))
    else {
        return Vec::new();
    };
    let text = |resource: &Value, key: &str| {
        resource
            .get(key)
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    resources
        .iter()
        .map(|(mount, resource)| {
            let kind = text(resource, "kind");
            let shown = match kind.as_str() {
                "static" => {
                    let mut shown = format!("static {}", text(resource, "path"));
                    if resource.get("listing") == Some(&Value::Bool(false)) {
                        shown.push_str(" (no listing)");
                    }
                    if resource.get("follow_symlinks") == Some(&Value::Bool(true)) {
                        shown.push_str(" (follows symlinks)");
                    }
                    shown
                }
                "proxy" => format!("proxy {}{}", text(resource, "dest"), text(resource, "path")),
                "redirect" => format!(
                    "redirect {} {}",
                    text(resource, "code"),
                    text(resource, "to")
                ),
                "data" => format!("data {}", text(resource, "content_type")),
                other => other.to_owned(),
            };
            (mount.clone(), shown)
        })
        .collect()
}

fn label(node: &Node) -> String {
    let shown = if node.path == "/" {
        "/".to_owned()
    } else {
        node.path
            .rsplit('/')
            .next()
            .unwrap_or(&node.path)
            .to_owned()
    };
    let mut parts = vec![shown, format!("[{}]", node.type_tag)];
    if let Some(endpoint) = node.endpoint() {
        parts.push(endpoint.to_owned());
    }
    parts.push(if node.running { "running" } else { "stopped" }.to_owned());
    if !node.known {
        parts.push("(unknown type)".to_owned());
    }
    let mut summaries = Vec::new();
    for (field, value) in &node.fields {
        summarized(field, value, &mut summaries);
    }
    if !summaries.is_empty() {
        parts.push(format!("({})", summaries.join("; ")));
    }
    parts.join("  ")
}

/// `field.path: 1,000,000 entries, 39 MB` for every summarized value under `value`.
fn summarized(at: &str, value: &Value, out: &mut Vec<String>) {
    if let Some(summary) = rtwisted_persist::view::describe_summary(value) {
        out.push(format!("{at}: {summary}"));
        return;
    }
    if let Value::Object(map) = value {
        for (key, inner) in map {
            summarized(&format!("{at}.{key}"), inner, out);
        }
    }
}
