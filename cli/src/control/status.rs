//! What `rtap status` shows: the live tree and the process, as the daemon reports it.

use std::time::SystemTime;

use rtwisted_core::{Application, Child, MultiService, PathSegment, ServicePath};
use serde::{Deserialize, Serialize};

/// A running daemon, as one document (`rtap status --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The application's name.
    pub app: String,
    /// The daemon's process.
    pub process: ProcessStatus,
    /// The snapshot it runs from.
    pub snapshot: SnapshotOrigin,
    /// The last checkpoint, if one was taken.
    pub last_checkpoint: Option<CheckpointRecord>,
    /// Every service, depth-first (parents before children).
    pub services: Vec<ServiceStatus>,
}

/// The daemon's process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// Its PID.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// Seconds since.
    pub uptime_seconds: f64,
    /// Resident memory, in bytes (from /proc).
    pub rss_bytes: Option<u64>,
    /// The rtwistd build.
    pub version: String,
}

/// Where the running tree came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SnapshotOrigin {
    /// The file or store address it was loaded from (or the plugin or TAC file).
    pub source: String,
    /// The checksum of the snapshot it was loaded from, if it was one.
    pub checksum: Option<String>,
    /// That snapshot's parent, if it records one.
    pub parent: Option<String>,
    /// Live changes applied since the start (each one a new generation of the tree).
    pub changes: u64,
}

/// One checkpoint the daemon took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// When it was taken (RFC 3339).
    pub at: String,
    /// Where it went (a file, or a store address), when it succeeded.
    pub to: Option<String>,
    /// How long it took, in milliseconds.
    pub millis: f64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// What asked for it (a timer, SIGUSR2, rtap, a Checkpoint task).
    pub why: String,
}

/// One service of the live tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its path (`/` for the root).
    pub path: String,
    /// Its type tag.
    #[serde(rename = "type")]
    pub type_tag: String,
    /// stopped, starting, running, stopping, or failed.
    pub state: String,
    /// When it entered that state (RFC 3339), if it ever changed.
    pub since: Option<String>,
    /// Its summary (the endpoint, for a server).
    pub summary: Option<String>,
    /// Its live counters, in the order it published them.
    pub counters: serde_json::Map<String, serde_json::Value>,
    /// Facts it published (the bound address, a child's PID, ...).
    pub facts: serde_json::Map<String, serde_json::Value>,
    /// Why its last start failed, if it did.
    pub error: Option<String>,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// The live tree of `app`, depth-first.
pub fn services_of(app: &Application) -> Vec<ServiceStatus> {
    let root = app.services();
    let mut rows = vec![ServiceStatus {
        path: "/".into(),
        type_tag: MultiService::TAG.into(),
        state: root.state().to_string(),
        since: None,
        summary: None,
        counters: serde_json::Map::new(),
        facts: serde_json::Map::new(),
        error: None,
    }];
    walk(root, &ServicePath::root(), &mut rows);
    rows
}

fn walk(collection: &MultiService, path: &ServicePath, rows: &mut Vec<ServiceStatus>) {
    for (index, child) in collection.iter().enumerate() {
        let child_path = path.join(PathSegment::for_child(index, child.name()));
        rows.push(row(child, &child_path));
        if let Some(inner) = child.service().collection() {
            walk(inner, &child_path, rows);
        }
    }
}

fn row(child: &Child, path: &ServicePath) -> ServiceStatus {
    let meta = child.meta();
    let error = meta.last_error().map(str::to_owned);
    let state = if error.is_some() && !meta.running() {
        "failed".to_owned()
    } else {
        meta.state().to_string()
    };
    let (counters, facts) = match meta.counters() {
        Some(counters) => (
            counters
                .values()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.into()))
                .collect(),
            counters
                .facts()
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect(),
        ),
        None => Default::default(),
    };
    ServiceStatus {
        path: path.to_string(),
        type_tag: child.service().type_tag().to_owned(),
        state,
        since: meta.since().map(rfc3339),
        summary: child.service().summary(),
        counters,
        facts,
        error,
    }
}

/// This process: PID, start, uptime, RSS.
pub fn process_status(started: SystemTime) -> ProcessStatus {
    ProcessStatus {
        pid: std::process::id(),
        started: rfc3339(started),
        uptime_seconds: started.elapsed().map_or(0.0, |since| since.as_secs_f64()),
        rss_bytes: resident_bytes(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// VmRSS of this process, from /proc/self/status.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `now` for records.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}
