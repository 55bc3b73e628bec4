//! `rtap store verify` and `rtap store rebuild`: checking a store whole, and recreating its
//! index from the snapshot files and the journal.

use std::path::Path;

use rtwisted_persist::store::Store;
use serde_json::json;

use crate::error::CliError;
use crate::output::println;

/// `rtap store verify`: one line per problem (exit 1 when there is any), else a summary.
pub(super) fn verify(
    dir: &Path,
    as_json: bool,
    access: &crate::snapshots::Access,
) -> Result<(), CliError> {
    // The writer checks the index too; a store that cannot be opened for writing (read-only,
    // busy) is checked from its journal and files, without waiting for the writer.
    let options = rtwisted_persist::store::OpenOptions {
        busy_timeout: std::time::Duration::ZERO,
        ..access.store_options(false)
    };
    let verified = if crate::store_backend::is_remote(dir) {
        access.open_reader(dir)?.verify()?
    } else {
        match rtwisted_persist::store::SledStore::open_with(dir, &options) {
            Ok(store) => store.verify()?,
            Err(_) => access.open_reader(dir)?.verify()?,
        }
    };
    if as_json {
        super::print_json(&json!({
            "snapshots": verified.snapshots,
            "files": verified.files,
            "problems": verified.problems,
        }))?;
    } else {
        for problem in &verified.problems {
            println(problem)?;
        }
    }
    if verified.problems.is_empty() {
        if !as_json {
            println(format!(
                "the store {} is sound: {} snapshots, {} files",
                dir.display(),
                verified.snapshots,
                verified.files
            ))?;
        }
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "the store {} has {} problems (`rtap store rebuild` recreates the index from the files)",
            dir.display(),
            verified.problems.len()
        )))
    }
}

/// `rtap store rebuild`: recreates the index; names what was adopted and what was dropped.
pub(super) fn rebuild(dir: &Path, access: &crate::snapshots::Access) -> Result<(), CliError> {
    if crate::store_backend::is_remote(dir) {
        return Err(CliError::failed(format!(
            "the store {} is on etcd, which keeps no index to rebuild (its records are the history); check it with `rtap store verify`",
            dir.display()
        )));
    }
    let rebuilt = rtwisted_persist::store::rebuild(dir, &access.store_options(false))?;
    for line in &rebuilt.dropped {
        println(line)?;
    }
    if !rebuilt.adopted.is_empty() {
        println(format!(
            "added from files the journal did not name: {}",
            rebuilt.adopted.join(", ")
        ))?;
    }
    println(format!(
        "rebuilt the index of {}: {} snapshots",
        dir.display(),
        rebuilt.snapshots
    ))
}
