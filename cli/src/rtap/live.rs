//! The live commands: `rtap status`, `checkpoint`, `stop`, `restart`, `apply`, and `--live` on `inspect`,
//! `edit`, `set`, `add`, `remove` and `rename`. Each is one request on the running daemon's
//! control socket (see [`crate::control`]).

use std::path::{Path, PathBuf};

use rtwisted_core::{Application, Style};
use serde_json::{Map, Value};

use crate::control::client::{call, socket_path};
use crate::control::protocol::{Request, decode_bytes, encode_bytes};
use crate::control::status::Status;
use crate::error::CliError;
use crate::snapshots::Access;

/// Which daemon: a name (its `NAME.ctl` in the current folder) or `--control PATH`.
pub(crate) fn socket(
    name: Option<&str>,
    control: Option<&Path>,
    command: &str,
) -> Result<PathBuf, CliError> {
    match (name, control) {
        (_, Some(path)) => Ok(path.to_owned()),
        (Some(name), None) => Ok(socket_path(name)),
        (None, None) => Err(super::usage(
            command,
            "which daemon? give its application NAME (its socket is NAME.ctl in its run folder) or --control PATH",
        )),
    }
}

/// `rtap status`: the live tree, its counters, and the process.
pub(crate) fn status(socket: &Path, json: bool) -> Result<(), CliError> {
    let result = call(socket, Request::Status)?;
    if json {
        return crate::output::println(
            serde_json::to_string_pretty(&result)
                .map_err(|error| CliError::failed(error.to_string()))?,
        );
    }
    let status: Status = serde_json::from_value(result).map_err(|error| {
        CliError::failed(format!(
            "the daemon's status is not one this rtap reads: {error}"
        ))
    })?;
    crate::output::print(render(&status))
}

fn render(status: &Status) -> String {
    let process = &status.process;
    let mut out = format!(
        "{}  pid {}  up {}  rss {}  rtwistd {}\n",
        status.app,
        process.pid,
        duration(process.uptime_seconds),
        process.rss_bytes.map_or_else(
            || "?".to_owned(),
            |bytes| format!("{:.1} MB", bytes as f64 / 1e6)
        ),
        process.version
    );
    let origin = &status.snapshot;
    out.push_str(&format!(
        "from      {}{}{}{}\n",
        origin.source,
        origin
            .checksum
            .as_ref()
            .map_or_else(String::new, |checksum| format!(" ({})", short(checksum))),
        origin
            .parent
            .as_ref()
            .map_or_else(String::new, |parent| format!(", parent {}", short(parent))),
        if origin.changes > 0 {
            format!(
                ", {} live change{} since",
                origin.changes,
                plural(origin.changes)
            )
        } else {
            String::new()
        }
    ));
    out.push_str(&match &status.last_checkpoint {
        None => "checkpoint none yet\n".to_owned(),
        Some(record) => match (&record.to, &record.error) {
            (Some(to), _) => format!(
                "checkpoint {} ({}) saved {to} in {:.1} ms\n",
                record.at, record.why, record.millis
            ),
            (None, error) => format!(
                "checkpoint {} ({}) FAILED: {}\n",
                record.at,
                record.why,
                error.as_deref().unwrap_or("unknown error")
            ),
        },
    });
    out.push('\n');
    let mut rows = vec![vec![
        "PATH".to_owned(),
        "TYPE".to_owned(),
        "STATE".to_owned(),
        "ENDPOINT".to_owned(),
        "LIVE".to_owned(),
    ]];
    for service in &status.services {
        let mut live: Vec<String> = service
            .facts
            .iter()
            .map(|(name, value)| format!("{name} {}", value.as_str().unwrap_or_default()))
            .collect();
        live.extend(counters(&service.counters));
        if let Some(error) = &service.error {
            live.push(format!("error: {error}"));
        }
        let state = match &service.since {
            Some(since) => format!("{} since {}", service.state, clock(since)),
            None => service.state.clone(),
        };
        rows.push(vec![
            service.path.clone(),
            service.type_tag.trim_start_matches("rtwisted.").to_owned(),
            state,
            service.summary.clone().unwrap_or_else(|| "-".to_owned()),
            live.join(", "),
        ]);
    }
    out.push_str(&crate::output::table(&rows));
    out
}

/// Counters for people: pairs that belong together are shown together
/// (`connections 2 open, 10 total`, `bytes 5 in, 7 out`), the rest as `name value`.
fn counters(counters: &Map<String, Value>) -> Vec<String> {
    let value = |name: &str| counters.get(name).and_then(Value::as_u64);
    let mut shown = Vec::new();
    let mut used = Vec::new();
    let pairs = [
        (
            "connections",
            "connections_open",
            "open",
            "connections_total",
            "total",
        ),
        ("bytes", "bytes_in_total", "in", "bytes_out_total", "out"),
        (
            "datagrams",
            "datagrams_in_total",
            "in",
            "datagrams_out_total",
            "out",
        ),
    ];
    for (label, first, first_word, second, second_word) in pairs {
        if let (Some(a), Some(b)) = (value(first), value(second)) {
            shown.push(format!("{label} {a} {first_word}, {b} {second_word}"));
            used.extend([first, second]);
        }
    }
    for (name, number) in counters {
        if !used.contains(&name.as_str()) {
            shown.push(format!("{} {number}", name.trim_end_matches("_total")));
        }
    }
    shown
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// `sha256:0123456789ab…` from a full checksum.
fn short(checksum: &str) -> String {
    match checksum.char_indices().nth(19) {
        Some((end, _)) => format!("{}…", &checksum[..end]),
        None => checksum.to_owned(),
    }
}

/// The time of day of an RFC 3339 stamp: `2026-12-02T10:01:02.123Z` is `10:01:02`.
fn clock(stamp: &str) -> &str {
    stamp
        .split_once('T')
        .map_or(stamp, |(_, time)| time.get(..8).unwrap_or(time))
}

fn duration(seconds: f64) -> String {
    let total = seconds as u64;
    match total {
        0..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m {}s", total / 60, total % 60),
        3600..86_400 => format!("{}h {}m", total / 3600, total % 3600 / 60),
        _ => format!("{}d {}h", total / 86_400, total % 86_400 / 3600),
    }
}

/// `rtap checkpoint`: saves now, says where.
pub(crate) fn checkpoint(socket: &Path) -> Result<(), CliError> {
    let result = call(socket, Request::Checkpoint)?;
    crate::output::println(format!(
        "checkpoint saved {} in {:.1} ms",
        result["to"].as_str().unwrap_or("?"),
        result["millis"].as_f64().unwrap_or(0.0)
    ))
}

/// `rtap stop`: a graceful stop; waits for it and says where the shutdown snapshot went.
pub(crate) fn stop(socket: &Path) -> Result<(), CliError> {
    let result = call(socket, Request::Stop)?;
    match result["saved"].as_str() {
        Some(to) => {
            crate::output::println(format!("stopped; the shutdown snapshot was saved {to}"))
        }
        None => crate::output::println("stopped (it saves no shutdown snapshot)"),
    }
}

/// `rtap restart`: a hot restart; waits until the new process serves.
pub(crate) fn restart(socket: &Path) -> Result<(), CliError> {
    let result = call(socket, Request::Restart)?;
    crate::output::println(format!(
        "restarted: PID {} -> {}, hand-over {:.1} ms, writes paused {:.1} ms",
        result["old_pid"].as_u64().unwrap_or(0),
        result["pid"].as_u64().unwrap_or(0),
        result["millis"].as_f64().unwrap_or(0.0),
        result["paused_millis"].as_f64().unwrap_or(0.0)
    ))
}

/// The running tree as a plain snapshot's bytes.
pub(crate) fn fetch(socket: &Path) -> Result<Vec<u8>, CliError> {
    let result = call(socket, Request::Snapshot)?;
    let encoded = result["snapshot"]
        .as_str()
        .ok_or_else(|| CliError::failed("the daemon sent no snapshot"))?;
    decode_bytes(encoded).map_err(CliError::failed)
}

/// `rtap apply NAME FILE`: makes the running tree equal FILE's (a snapshot or a TAC file).
pub(crate) fn apply(socket: &Path, file: &Path, access: &Access) -> Result<(), CliError> {
    let app = if crate::tac_source::is_tac(file) {
        crate::tac_source::evaluate(file)?
    } else {
        crate::snapshots::open(file, access)?.0.app
    };
    let bytes = plain(&app)?;
    report(call(
        socket,
        Request::Apply {
            snapshot: encode_bytes(&bytes),
            base: None,
        },
    )?)
}

/// Sends an edit made on a tree fetched from the daemon: only what the edit changed applies.
pub(crate) fn apply_edit(socket: &Path, base: &[u8], edited: &Application) -> Result<(), CliError> {
    report(call(
        socket,
        Request::Apply {
            snapshot: encode_bytes(&plain(edited)?),
            base: Some(encode_bytes(base)),
        },
    )?)
}

/// `rtap set --live NAME PATH FIELD=VALUE...`.
pub(crate) fn set(socket: &Path, path: &str, assignments: &[String]) -> Result<(), CliError> {
    let mut fields = Map::new();
    for assignment in assignments {
        let (field, text) = assignment
            .split_once('=')
            .ok_or_else(|| super::usage("set", &format!("'{assignment}' is not FIELD=VALUE")))?;
        fields.insert(field.to_owned(), crate::fields::parse_value(text));
    }
    report(call(
        socket,
        Request::Set {
            path: path.to_owned(),
            fields,
        },
    )?)
}

/// `rtap add --live NAME [--parent PATH] PLUGIN ...`.
pub(crate) fn add(
    socket: &Path,
    parent: Option<&str>,
    child: rtwisted_core::Child,
) -> Result<(), CliError> {
    let mut carrier =
        Application::new("carrier").map_err(|error| CliError::failed(error.to_string()))?;
    carrier
        .services_mut()
        .insert(child)
        .map_err(|error| CliError::failed(error.to_string()))?;
    report(call(
        socket,
        Request::Add {
            parent: parent.unwrap_or("/").to_owned(),
            child: encode_bytes(&plain(&carrier)?),
        },
    )?)
}

/// `rtap remove --live NAME PATH`.
pub(crate) fn remove(socket: &Path, path: &str) -> Result<(), CliError> {
    report(call(
        socket,
        Request::Remove {
            path: path.to_owned(),
        },
    )?)
}

/// `rtap rename --live NAME PATH NEWNAME`.
pub(crate) fn rename(socket: &Path, path: &str, name: &str) -> Result<(), CliError> {
    report(call(
        socket,
        Request::Rename {
            path: path.to_owned(),
            name: name.to_owned(),
        },
    )?)
}

fn plain(app: &Application) -> Result<Vec<u8>, CliError> {
    rtwisted_persist::encode(app, Style::Tap)
        .map(|(bytes, _)| bytes)
        .map_err(|error| CliError::failed(format!("cannot encode the tree to send: {error}")))
}

/// Prints what a change did, and where the daemon saved it.
fn report(result: Value) -> Result<(), CliError> {
    let mut lines = Vec::new();
    match result["changes"].as_array() {
        Some(changes) if !changes.is_empty() => {
            lines.extend(changes.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        _ => lines.push(result["summary"].as_str().unwrap_or("done").to_owned()),
    }
    let saved = &result["saved"];
    match (saved["to"].as_str(), saved["error"].as_str()) {
        (Some(to), _) => lines.push(format!("saved {to}")),
        (None, Some(error)) => lines.push(format!(
            "warning: the change runs, but saving it failed: {error}"
        )),
        _ => {}
    }
    crate::output::println(lines.join("\n"))
}
