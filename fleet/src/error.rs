//! What can go wrong in a fleet operation, each phrased for the person at the terminal.

use std::time::Duration;

use crate::address::AddressError;

/// A fleet operation (the store on etcd, members, elections, watches) failed.
///
/// Every message is whole on its own: a cause is part of the message and is not returned again
/// by `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The `etcd://` address does not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// No etcd endpoint could be reached.
    #[error("cannot connect to etcd at {endpoints}: {detail}")]
    Connect {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What the client reported.
        detail: String,
    },
    /// An etcd request failed.
    #[error("etcd refused or lost the request to {op}: {detail}")]
    Etcd {
        /// What was being done (`save echo`, `list members`).
        op: String,
        /// What the client reported.
        detail: String,
    },
    /// An operation did not finish within its deadline.
    #[error("timed out after {} trying to {op} (is the etcd cluster up and reachable?)", humantime::format_duration(*.after))]
    Timeout {
        /// What was being done.
        op: String,
        /// The deadline.
        after: Duration,
    },
    /// An application name that cannot be stored.
    #[error("invalid application name: {reason}")]
    InvalidApp {
        /// Why it is refused.
        reason: String,
    },
    /// A tag that cannot be used.
    #[error("invalid tag: {reason}")]
    InvalidTag {
        /// Why it is refused.
        reason: String,
    },
    /// The store has no snapshot of this application.
    #[error("no application '{app}' in the store")]
    NoApp {
        /// The application asked for.
        app: String,
    },
    /// The application exists but the address picks none of its snapshots.
    #[error("no snapshot '{address}' in the store ({hint})")]
    NoSnapshot {
        /// The address asked for, as written.
        address: String,
        /// What there is instead.
        hint: String,
    },
    /// A save named the snapshot it was made from, and another snapshot was saved since: nothing
    /// was written.
    #[error(
        "{app}: the parent {} is no longer the latest ({} is); nothing was written: load the latest and save again",
        show_number(*.parent), show_number(*.latest)
    )]
    NotLatest {
        /// The application.
        app: String,
        /// The parent the save named (`None`: the save expected no snapshot yet).
        parent: Option<u64>,
        /// The newest snapshot now.
        latest: Option<u64>,
    },
    /// The tag is already on another snapshot of the application.
    #[error(
        "tag '{tag}' is already on {app}@{number}; tags are unique per application (move it, or untag {app}@{tag} first)"
    )]
    TagTaken {
        /// The application.
        app: String,
        /// The tag.
        tag: String,
        /// The snapshot that has it.
        number: u64,
    },
    /// Untagging a snapshot that has no tag.
    #[error("{address} has no tag")]
    NotTagged {
        /// The snapshot, as `APP@N`.
        address: String,
    },
    /// A write was made under a leadership that no longer holds: nothing was written.
    #[error(
        "{app}: this member is no longer the leader (its leader key {key} is gone or replaced); the write was refused"
    )]
    Fenced {
        /// The application the election is for.
        app: String,
        /// The leader key the write was fenced on.
        key: String,
    },
    /// A snapshot larger than the store takes.
    #[error("the snapshot is {size} bytes, more than the {max} bytes a snapshot in etcd may hold")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The store's data in etcd does not check out.
    #[error("the store in etcd is damaged at {key}: {detail}")]
    Damaged {
        /// The etcd key.
        key: String,
        /// What was found.
        detail: String,
    },
    /// Other writers kept changing the application while this operation retried.
    #[error("{app} kept changing while trying to {op} ({attempts} attempts); try again")]
    Contended {
        /// The application.
        app: String,
        /// What was being done.
        op: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// `gc` was asked to keep no snapshot.
    #[error("gc must keep at least 1 snapshot (the newest is always kept)")]
    KeepNothing,
    /// A lease ran out (its member or leader key is gone from etcd).
    #[error("the etcd lease {lease:x} for {what} has expired")]
    LeaseExpired {
        /// What the lease kept (`member echo/host-1234`, `leadership of echo`).
        what: String,
        /// The lease id.
        lease: i64,
    },
}

fn show_number(number: Option<u64>) -> String {
    number.map_or_else(|| "(none)".to_owned(), |n| format!("#{n}"))
}

impl FleetError {
    /// An etcd client error during `op`.
    pub(crate) fn etcd(op: impl Into<String>, error: &etcd_client::Error) -> FleetError {
        FleetError::Etcd {
            op: op.into(),
            detail: describe_etcd(error),
        }
    }
}

/// One line for an etcd client error, without the client's nested debug text.
pub(crate) fn describe_etcd(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.is_empty() {
                format!("{:?}", status.code())
            } else {
                format!("{message} ({:?})", status.code())
            }
        }
        other => other.to_string(),
    }
}
