//! `rtap status --fleet APP --store etcd://...`: every daemon that runs APP from the store on
//! etcd, from the records each keeps under its lease (a dead one is gone a lease later).

use std::path::Path;

use crate::error::CliError;
#[cfg(feature = "etcd")]
use crate::output::{print, println, table};
use crate::snapshots::Access;
#[cfg(feature = "etcd")]
use serde_json::Value;

/// Prints the members of `app`'s fleet in the store `store`.
#[cfg(feature = "etcd")]
pub(super) fn status(
    store: &Path,
    app: &str,
    as_json: bool,
    access: &Access,
) -> Result<(), CliError> {
    let members = members(store, app, access)?;
    if as_json {
        let listed: Vec<Value> = members
            .iter()
            .map(|member| {
                let mut record = serde_json::to_value(&member.info).unwrap_or_default();
                record["id"] = Value::String(member.id.clone());
                record
            })
            .collect();
        let text = serde_json::to_string_pretty(&listed)
            .map_err(|error| CliError::failed(error.to_string()))?;
        return println(text);
    }
    if members.is_empty() {
        return println(format!("no member runs {app} from {}", store.display()));
    }
    let mut rows = vec![
        [
            "MEMBER",
            "HOST",
            "PID",
            "SNAPSHOT",
            "STATE",
            "LAST CHECKPOINT",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for member in &members {
        let info = &member.info;
        rows.push(vec![
            member.id.clone(),
            info.host.clone(),
            info.pid.to_string(),
            info.snapshot.clone().unwrap_or_else(|| "-".to_owned()),
            info.state.clone(),
            info.last_checkpoint
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    print(table(&rows))
}

#[cfg(feature = "etcd")]
fn members(
    store: &Path,
    app: &str,
    access: &Access,
) -> Result<Vec<rtwisted_fleet::Member>, CliError> {
    if !crate::store_backend::is_remote(store) {
        return Err(not_etcd(store));
    }
    let options = access.store_options(false);
    let opened = rtwisted_fleet::EtcdSnapshotStore::open(
        &store.to_string_lossy(),
        options.limits,
        options.busy_timeout,
    )?;
    opened
        .etcd_store()
        .members(app)
        .map_err(|error| CliError::failed(format!("cannot list {app}'s fleet: {error}")))
}

/// A build without etcd has no fleets to list.
#[cfg(not(feature = "etcd"))]
pub(super) fn status(store: &Path, _: &str, _: bool, _: &Access) -> Result<(), CliError> {
    Err(not_etcd(store))
}

fn not_etcd(store: &Path) -> CliError {
    CliError::failed(format!(
        "--fleet lists the daemons registered in a store on etcd, and '{}' is not one (give --store etcd://HOST:PORT/PREFIX{})",
        store.display(),
        if cfg!(feature = "etcd") {
            ""
        } else {
            "; this build has no etcd support"
        }
    ))
}
