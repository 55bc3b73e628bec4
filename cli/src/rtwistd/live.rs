//! What a running rtwistd does with a control request that reads or changes its tree.
//!
//! The main loop owns the running [`Application`]; each request is answered here, one at a
//! time, with the lifecycle driver the tree was started with. Changes are whole or nothing:
//! an apply that fails is undone, a field that does not exist is refused before anything
//! stops, a replacement that fails to start puts the old service back.

use std::time::SystemTime;

use rtwisted_core::{Application, Child, Lifecycle, ServicePath, Style};
use serde_json::{Map, Value, json};

use crate::control::protocol::{self, Request};
use crate::control::status::{
    CheckpointRecord, SnapshotOrigin, Status, process_status, services_of,
};
use crate::fields;

/// What the daemon knows about itself beyond its tree.
#[derive(Debug)]
pub(super) struct Facts {
    /// When the process started.
    pub(super) started: SystemTime,
    /// Where the tree came from.
    pub(super) origin: SnapshotOrigin,
    /// The last checkpoint (or live-change save).
    pub(super) last_checkpoint: Option<CheckpointRecord>,
    /// Each checkpoint as it is recorded, for whoever watches (the fleet member's record).
    checkpoints: tokio::sync::watch::Sender<Option<CheckpointRecord>>,
}

impl Facts {
    pub(super) fn new(origin: SnapshotOrigin) -> Self {
        Facts {
            started: SystemTime::now(),
            origin,
            last_checkpoint: None,
            checkpoints: tokio::sync::watch::Sender::new(None),
        }
    }

    /// Records the outcome of a checkpoint (or live-change save) and tells the watchers.
    pub(super) fn record_checkpoint(&mut self, record: CheckpointRecord) {
        self.checkpoints.send_replace(Some(record.clone()));
        self.last_checkpoint = Some(record);
    }

    /// A receiver of every checkpoint recorded from now on.
    #[cfg(feature = "etcd")]
    pub(super) fn watch_checkpoints(
        &self,
    ) -> tokio::sync::watch::Receiver<Option<CheckpointRecord>> {
        self.checkpoints.subscribe()
    }
}

/// `status`: the live tree and the process.
pub(super) fn status(app: &Application, facts: &Facts) -> Value {
    let status = Status {
        app: app.name().to_owned(),
        process: process_status(facts.started),
        snapshot: facts.origin.clone(),
        last_checkpoint: facts.last_checkpoint.clone(),
        services: services_of(app),
    };
    serde_json::to_value(status).unwrap_or(Value::Null)
}

/// `snapshot`: the running tree as a plain `tap` snapshot, written nowhere.
pub(super) fn snapshot(app: &Application) -> Result<Value, String> {
    let (bytes, header) = rtwisted_persist::encode(app, Style::Tap)
        .map_err(|error| format!("cannot encode the running tree: {error}"))?;
    Ok(json!({
        "snapshot": protocol::encode_bytes(&bytes),
        "checksum": header.checksum,
    }))
}

/// True for the requests [`change`] carries out.
pub(super) fn is_change(request: &Request) -> bool {
    matches!(
        request,
        Request::Apply { .. }
            | Request::Set { .. }
            | Request::Add { .. }
            | Request::Remove { .. }
            | Request::Rename { .. }
    )
}

/// Carries out a change of the running tree; the result says what changed.
pub(super) async fn change(
    app: &mut Application,
    lifecycle: &Lifecycle,
    request: Request,
) -> Result<Value, String> {
    match request {
        Request::Apply { snapshot, base } => {
            apply(app, lifecycle, &snapshot, base.as_deref()).await
        }
        Request::Set { path, fields } => set(app, lifecycle, &path, fields).await,
        Request::Add { parent, child } => add(app, lifecycle, &parent, &child).await,
        Request::Remove { path } => {
            let path = parse_path(&path)?;
            let removed = lifecycle
                .remove_service(app.services_mut(), &path)
                .await
                .map_err(|error| error.to_string())?;
            Ok(json!({
                "summary": format!("removed {path} ({})", removed.service().type_tag()),
                "removed": [path.to_string()],
            }))
        }
        Request::Rename { path, name } => {
            let path = parse_path(&path)?;
            lifecycle
                .rename_service(app.services_mut(), &path, &name)
                .await
                .map_err(|error| error.to_string())?;
            Ok(json!({
                "summary": format!("renamed {path} to {name}"),
                "renamed": [path.to_string(), name],
            }))
        }
        _ => Err("internal error: not a change".to_owned()),
    }
}

fn parse_path(text: &str) -> Result<ServicePath, String> {
    let path: ServicePath = text.parse().map_err(|error| format!("{error}"))?;
    if path.is_root() {
        return Err("the root '/' cannot be changed this way: give a service's path".to_owned());
    }
    Ok(path)
}

/// Decodes a snapshot sent by a client (plain bytes, either style).
fn decode(encoded: &str) -> Result<rtwisted_persist::Snapshot, String> {
    let bytes = protocol::decode_bytes(encoded)?;
    rtwisted_persist::decode(&bytes)
        .map_err(|error| format!("the snapshot sent is not valid: {error}"))
}

async fn apply(
    app: &mut Application,
    lifecycle: &Lifecycle,
    encoded: &str,
    base: Option<&str>,
) -> Result<Value, String> {
    let mut wanted = decode(encoded)?.app;
    let base = base.map(decode).transpose()?.map(|snapshot| snapshot.app);
    if wanted.name() != app.name() {
        return Err(format!(
            "the snapshot is of application '{}', and this rtwistd runs '{}'",
            wanted.name(),
            app.name()
        ));
    }
    if wanted.process() != app.process() {
        return Err(
            "the snapshot's process settings (uid, gid, process name, umask) differ from the running ones; they change only at a start: rtap restart runs the new ones"
                .to_owned(),
        );
    }
    let services = std::mem::take(wanted.services_mut());
    let report = match &base {
        Some(base) => {
            lifecycle
                .apply_edit(app.services_mut(), base.services(), services)
                .await
        }
        None => lifecycle.apply(app.services_mut(), services).await,
    }
    .map_err(|error| error.to_string())?;
    let paths = |list: &[ServicePath]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
    Ok(json!({
        "summary": report.to_string(),
        "added": paths(&report.added),
        "removed": paths(&report.removed),
        "replaced": paths(&report.replaced),
        "unchanged": report.unchanged,
    }))
}

async fn set(
    app: &mut Application,
    lifecycle: &Lifecycle,
    path: &str,
    assignments: Map<String, Value>,
) -> Result<Value, String> {
    let path = parse_path(path)?;
    let child = app
        .services()
        .find(&path)
        .ok_or_else(|| format!("no service at '{path}'"))?;
    if child.service().collection().is_some() {
        return Err(format!(
            "'{path}' is a collection: change its children with add, remove and rename"
        ));
    }
    // Refuse a bad field before anything stops: try the edit on the current saved form.
    edited(child, &assignments)?;
    let mut changes = Vec::new();
    lifecycle
        .replace_service_with(app.services_mut(), &path, |old| {
            // The old service is stopped now, so its saved form holds every last change.
            let (child, made) = edited(old, &assignments)?;
            changes = made;
            Ok(child.into_service())
        })
        .await
        .map_err(|error| error.to_string())?;
    let shown: Vec<String> = changes
        .iter()
        .map(|change| format!("{path} {}: {} -> {}", change.field, change.old, change.new))
        .collect();
    Ok(json!({
        "summary": shown.join("; "),
        "changes": shown,
    }))
}

/// `child`'s saved form with `assignments` made, typed again (so a bad value is refused).
fn edited(
    child: &Child,
    assignments: &Map<String, Value>,
) -> Result<(Child, Vec<fields::FieldChange>), String> {
    let mut saved = match serde_json::to_value(child) {
        Ok(Value::Object(saved)) => saved,
        Ok(_) => return Err("the service does not save as fields".to_owned()),
        Err(error) => return Err(format!("cannot read the service's fields: {error}")),
    };
    let mut changes = Vec::new();
    for (field, value) in assignments {
        changes.push(fields::set_dotted(&mut saved, field, value.clone())?);
    }
    let child: Child = serde_json::from_value(Value::Object(saved))
        .map_err(|error| format!("the new value does not fit: {error}"))?;
    Ok((child, changes))
}

async fn add(
    app: &mut Application,
    lifecycle: &Lifecycle,
    parent: &str,
    encoded: &str,
) -> Result<Value, String> {
    let parent: ServicePath = parent.parse().map_err(|error| format!("{error}"))?;
    let mut carrier = decode(encoded)?.app;
    let mut children = std::mem::take(carrier.services_mut());
    if children.len() != 1 {
        return Err(format!(
            "the snapshot sent to add holds {} services; it must hold exactly one",
            children.len()
        ));
    }
    let child = children
        .remove(&rtwisted_core::PathSegment::Index(0))
        .map_err(|error| error.to_string())?;
    let shown = child.name().unwrap_or("(unnamed)").to_owned();
    lifecycle
        .add_service(app.services_mut(), &parent, child)
        .await
        .map_err(|error| error.to_string())?;
    Ok(json!({
        "summary": format!("added {shown} under {parent}"),
        "added": [parent.join(rtwisted_core::PathSegment::Name(shown)).to_string()],
    }))
}
