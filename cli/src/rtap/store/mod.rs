//! `rtap store`: a history of snapshots per application, kept in a store folder (snapshot
//! files, a journal, and a sled index).
//!
//! ```text
//! rtap store list [--json]                     applications, counts, sizes, newest
//! rtap store log APP [--json]                  every snapshot of APP: number, time, size, tag, producer
//! rtap store tag APP[@N|@TAG] TAG [--move]     tag a snapshot (tags are unique per application)
//! rtap store untag APP@TAG                     take a tag off
//! rtap store diff APP@A APP@B [--json]         added, removed and changed services and fields
//! rtap store export APP[@N|@TAG] FILE          write the snapshot's exact bytes to FILE
//! rtap store import FILE [--tag TAG]           store a snapshot file as its application's next
//! rtap store gc APP --keep N                   keep the newest N (and every tagged one)
//! rtap store verify                            check every snapshot file and the index
//! rtap store rebuild                           recreate the index from the files and journal
//! ```
//!
//! Every subcommand takes `--store DIR`; without it, the `RTWISTED_STORE` variable names the
//! folder. `import` creates the store when there is none; the others need an existing one.
//! Readers (`list`, `log`, `diff`, `export`, `verify`) read the journal and the files: they take
//! no lock and need no write access. Writers take the store's lock for the one command, and
//! wait for another writer up to `--wait SECONDS` (default 10).

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Args, Subcommand};
use rtwisted_persist::store::{Entry, Store, StoreAddress, TagConflict};
use rtwisted_persist::{Passphrase, RawSnapshot, SnapshotError};
use serde_json::{Value, json};

mod diff;
mod verify;

use crate::error::CliError;
use crate::output::{println, table};

/// The environment variable naming the store folder when `--store` is not given.
pub const STORE_VARIABLE: &str = "RTWISTED_STORE";

// `rtap store`: the store folder and a subcommand.
#[derive(Debug, Args)]
#[command(subcommand_required = true)]
pub(crate) struct StoreCommand {
    /// The store folder (default: $RTWISTED_STORE)
    #[arg(long, value_name = "DIR", global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: StoreSubcommand,
}

#[derive(Debug, Subcommand)]
enum StoreSubcommand {
    /// List the applications in the store, with counts, sizes and the newest snapshot
    List {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// List every snapshot of an application: number, time, size, tag, producer
    Log {
        /// The application
        #[arg(value_name = "APP")]
        app: String,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Tag a snapshot (a tag is unique within its application; a snapshot has one tag)
    Tag {
        /// The snapshot (APP alone: the newest)
        #[arg(value_name = "APP[@N|@TAG]")]
        address: String,
        /// The tag: letters, digits, '.', '_', '-', not all digits
        #[arg(value_name = "TAG")]
        tag: String,
        /// Move the tag from the snapshot that has it (else that is refused)
        #[arg(long = "move")]
        move_tag: bool,
    },
    /// Take the tag off a snapshot (gc may then remove it)
    Untag {
        /// The snapshot
        #[arg(value_name = "APP@TAG")]
        address: String,
    },
    /// Show the services and fields that differ between two snapshots
    Diff {
        /// The older snapshot
        #[arg(value_name = "APP@A")]
        from: String,
        /// The newer snapshot
        #[arg(value_name = "APP@B")]
        to: String,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Write a stored snapshot's exact bytes to a file (atomically, mode 0600)
    Export {
        /// The snapshot (APP alone: the newest)
        #[arg(value_name = "APP[@N|@TAG]")]
        address: String,
        /// The file to write
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Store a snapshot file as the next snapshot of its application (creates the store)
    Import {
        /// The snapshot file (.tap, .tas, .etap, .etas)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Tag the new snapshot
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
    /// Remove old snapshots of an application: keep the newest N and every tagged one
    Gc {
        /// The application
        #[arg(value_name = "APP")]
        app: String,
        /// How many of the newest snapshots to keep (at least 1)
        #[arg(long, value_name = "N", value_parser = parse_keep)]
        keep: usize,
    },
    /// Check every snapshot file against its entry and checksum, and the index against the
    /// journal; one line per problem, exit 1 if there is any
    Verify {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Recreate a damaged or missing index from the snapshot files and the journal
    Rebuild,
}

impl StoreSubcommand {
    fn name(&self) -> &'static str {
        match self {
            StoreSubcommand::List { .. } => "list",
            StoreSubcommand::Log { .. } => "log",
            StoreSubcommand::Tag { .. } => "tag",
            StoreSubcommand::Untag { .. } => "untag",
            StoreSubcommand::Diff { .. } => "diff",
            StoreSubcommand::Export { .. } => "export",
            StoreSubcommand::Import { .. } => "import",
            StoreSubcommand::Gc { .. } => "gc",
            StoreSubcommand::Verify { .. } => "verify",
            StoreSubcommand::Rebuild => "rebuild",
        }
    }
}

/// Runs `rtap store SUBCOMMAND`.
pub(crate) fn run(
    command: StoreCommand,
    access: &crate::snapshots::Access,
) -> Result<(), CliError> {
    let dir = store_dir(command.command.name(), command.store)?;
    crate::deadline::arm(
        "rtap",
        format!("rtap store {}", command.command.name()),
        access
            .wait
            .unwrap_or(rtwisted_persist::store::DEFAULT_BUSY_TIMEOUT),
    );
    match command.command {
        StoreSubcommand::List { json } => list(&*open(&dir, access)?, json),
        StoreSubcommand::Log { app, json } => log(&*open(&dir, access)?, &app, json),
        StoreSubcommand::Tag {
            address,
            tag: name,
            move_tag,
        } => tag(&*access.open_store(&dir, false)?, &address, &name, move_tag),
        StoreSubcommand::Untag { address } => untag(&*access.open_store(&dir, false)?, &address),
        StoreSubcommand::Diff { from, to, json } => diff::run(&dir, &from, &to, json, access),
        StoreSubcommand::Export { address, file } => export(&*open(&dir, access)?, &address, &file),
        StoreSubcommand::Import { file, tag } => import(&dir, &file, tag.as_deref(), access),
        StoreSubcommand::Gc { app, keep } => gc(&dir, &app, keep, access),
        StoreSubcommand::Verify { json } => verify::verify(&dir, json, access),
        StoreSubcommand::Rebuild => verify::rebuild(&dir, access),
    }
}

/// `--store DIR`, else `$RTWISTED_STORE`; neither is a usage error.
fn store_dir(name: &str, given: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    match std::env::var_os(STORE_VARIABLE) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => {
            let message = format!("no store given: use --store DIR or set {STORE_VARIABLE}");
            Err(CliError::Usage(crate::args::usage_error(
                super::command(),
                &["store", name],
                ErrorKind::MissingRequiredArgument,
                &message,
            )))
        }
    }
}

/// `--keep N`: a whole number of at least 1 (the newest snapshot is always kept).
fn parse_keep(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("gc keeps at least 1 snapshot (the newest is always kept)".to_owned()),
        Ok(keep) => Ok(keep),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

pub(super) fn address(text: &str) -> Result<StoreAddress, CliError> {
    Ok(text.parse()?)
}

/// The application named by `text`: a bare name (`APP@latest` is accepted too).
fn app_name(text: &str) -> Result<String, CliError> {
    let address: StoreAddress = text.parse()?;
    match address.selector {
        rtwisted_persist::store::Selector::Latest => Ok(address.app),
        _ => Err(CliError::failed(format!(
            "'{text}' names a snapshot; give the application alone ('{}')",
            address.app
        ))),
    }
}

/// The store at `dir`, for reading.
pub(super) fn open(
    dir: &Path,
    access: &crate::snapshots::Access,
) -> Result<crate::store_backend::AnyStore, CliError> {
    access.open_reader(dir)
}

pub(super) fn print_json(value: &Value) -> Result<(), CliError> {
    println(
        serde_json::to_string_pretty(value).map_err(|error| CliError::failed(error.to_string()))?,
    )
}

/// An entry for scripts: its fields plus `address`.
fn entry_json(entry: &Entry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("address".to_owned(), Value::String(entry.address()));
    }
    value
}

fn list(store: &dyn Store, as_json: bool) -> Result<(), CliError> {
    let dir = store.dir();
    let apps = store.list()?;
    if as_json {
        let apps: Vec<Value> = apps
            .iter()
            .map(|summary| {
                json!({
                    "app": summary.app,
                    "count": summary.count,
                    "total_bytes": summary.total_bytes,
                    "latest": entry_json(&summary.latest),
                })
            })
            .collect();
        return print_json(&Value::Array(apps));
    }
    if apps.is_empty() {
        return println(format!("the store {} holds no snapshots", dir.display()));
    }
    let mut rows = vec![
        ["APP", "SNAPSHOTS", "BYTES", "LATEST", "SAVED"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for summary in &apps {
        rows.push(vec![
            summary.app.clone(),
            summary.count.to_string(),
            summary.total_bytes.to_string(),
            summary.latest.address(),
            summary.latest.saved.clone(),
        ]);
    }
    crate::output::print(table(&rows))
}

fn log(store: &dyn Store, app: &str, as_json: bool) -> Result<(), CliError> {
    let app = app_name(app)?;
    let entries = store.log(&app)?;
    if as_json {
        return print_json(&Value::Array(entries.iter().map(entry_json).collect()));
    }
    let mut rows = vec![
        ["SNAPSHOT", "SAVED", "BYTES", "TAG", "PRODUCER"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for entry in &entries {
        rows.push(vec![
            entry.address(),
            entry.saved.clone(),
            entry.size.to_string(),
            entry.tag.clone().unwrap_or_else(|| "-".to_owned()),
            match entry.diverged_from {
                // A daemon saved this from an older snapshot while a newer one existed.
                Some(newer) => format!(
                    "{} (diverged: saved from {}@{} while {}@{newer} was newer)",
                    entry.producer,
                    entry.app,
                    entry
                        .parent
                        .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                    entry.app
                ),
                None => entry.producer.clone(),
            },
        ]);
    }
    crate::output::print(table(&rows))
}

fn tag(store: &dyn Store, target: &str, tag: &str, move_tag: bool) -> Result<(), CliError> {
    let address = address(target)?;
    let conflict = if move_tag {
        TagConflict::Move
    } else {
        TagConflict::Refuse
    };
    let tagged = store.tag(&address, tag, conflict)?;
    let mut line = format!("tagged {} '{tag}'", tagged.entry.address());
    if let Some(from) = tagged.moved_from {
        line.push_str(&format!(" (moved from {}@{from})", tagged.entry.app));
    }
    if let Some(old) = &tagged.replaced {
        line.push_str(&format!(" (it was '{old}')"));
    }
    println(line)
}

fn untag(store: &dyn Store, target: &str) -> Result<(), CliError> {
    let address = address(target)?;
    let (entry, tag) = store.untag(&address)?;
    println(format!("removed tag '{tag}' from {}", entry.address()))
}

fn export(store: &dyn Store, target: &str, file: &Path) -> Result<(), CliError> {
    let address = address(target)?;
    let (entry, bytes) = store.get(&address)?;
    rtwisted_persist::write_atomic(file, &bytes).map_err(|cause| SnapshotError::Write {
        path: file.to_owned(),
        cause,
    })?;
    println(format!(
        "exported {} ({} bytes) to {}",
        entry.address(),
        entry.size,
        file.display()
    ))
}

fn import(
    dir: &Path,
    file: &Path,
    tag: Option<&str>,
    access: &crate::snapshots::Access,
) -> Result<(), CliError> {
    let bytes = rtwisted_persist::read(file).map_err(|cause| SnapshotError::Read {
        path: file.to_owned(),
        cause,
    })?;
    // Check it is a snapshot, and learn its application's name (decrypting if need be).
    let mut obtained = None;
    let raw = decode(&bytes, &mut obtained, access).map_err(|error| match error {
        Decode::Cli(error) => error,
        Decode::Format(cause) => CliError::Snapshot(SnapshotError::Invalid {
            path: file.to_owned(),
            cause,
        }),
    })?;
    let store = access.open_store(dir, true)?;
    let entry = store.put(&raw.header.fields.app, &bytes, tag)?;
    drop(store);
    println(entry.address())
}

fn gc(
    dir: &Path,
    app: &str,
    keep: usize,
    access: &crate::snapshots::Access,
) -> Result<(), CliError> {
    let app = app_name(app)?;
    let store = access.open_store(dir, false)?;
    let removed = store.gc(&app, keep)?;
    let left = store.log(&app)?;
    drop(store);
    let kept: Vec<String> = left.iter().map(Entry::address).collect();
    if removed.is_empty() {
        return println(format!(
            "nothing to remove; kept {} ({})",
            kept.len(),
            kept.join(", ")
        ));
    }
    let gone: Vec<String> = removed.iter().map(Entry::address).collect();
    println(format!(
        "removed {} ({}); kept {} ({})",
        gone.len(),
        gone.join(", "),
        kept.len(),
        kept.join(", ")
    ))
}

/// Why bytes did not decode: a snapshot problem, or no passphrase to be had.
pub(super) enum Decode {
    /// The bytes are not a valid snapshot.
    Format(rtwisted_persist::FormatError),
    /// No passphrase could be had.
    Cli(CliError),
}

/// Decodes snapshot bytes as generic data (large fields summarized) under the command line's
/// limits, asking for a passphrase (once) when they are encrypted.
pub(super) fn decode(
    bytes: &[u8],
    passphrase: &mut Option<Passphrase>,
    access: &crate::snapshots::Access,
) -> Result<RawSnapshot, Decode> {
    if rtwisted_persist::crypto::looks_encrypted(bytes) && passphrase.is_none() {
        *passphrase = Some(access.passphrase.obtain(false).map_err(Decode::Cli)?);
    }
    let options = rtwisted_persist::LoadOptions {
        passphrase: passphrase.clone(),
        limits: access.limits,
        ..rtwisted_persist::LoadOptions::default()
    };
    rtwisted_persist::decode_raw_as(bytes, &options).map_err(Decode::Format)
}
