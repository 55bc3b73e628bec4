//! # The snapshot store on etcd
//!
//! The same model as the folder store (`rtwisted_persist::store`): for each application,
//! numbered snapshots `1, 2, 3, ...` (never reused), each the exact bytes of a snapshot file,
//! with a SHA-256 checked on every read, an optional tag unique within the application, and the
//! parent it was committed on. Addresses are the folder store's: `APP`, `APP@N`, `APP@TAG`.
//!
//! ## How a save is made safe
//! etcd takes at most 1.5 MiB per request by default, so the bytes are written first as
//! content-addressed chunks (`chunks/SHA256`, under 1 MiB each, one request each, skipped when
//! already there). Then **one small transaction commits the snapshot**: it compares the
//! application's head key with the revision read, checks every chunk still exists (and, for a
//! leader, that its leader key is still the one it was elected with, see
//! [`Fence`](crate::Fence)), and only then writes the record and moves the head. So:
//!
//! - a half-written snapshot is never visible: until the commit there is no record naming it;
//! - two writers never lose a save: one commit wins the head, the other sees the head moved and
//!   either commits on the new head ([`Parent::Latest`]) or is refused with
//!   [`FleetError::NotLatest`] ([`Parent::Expect`]), never overwriting;
//! - a commit whose reply was lost is recognised on retry by its unique save id, so it is
//!   neither reported as failed nor written twice.
//!
//! ## Space in etcd
//! A chunk already stored is not sent again, so a checkpoint that changed little costs little.
//! etcd keeps overwritten and deleted values in its history until it compacts: a cluster that
//! holds stores should run with `--auto-compaction-retention`, or the space gc frees is never
//! given back and the database quota (2 GiB by default) is reached.
//!
//! ## Keys, under `/PREFIX/`
//! `apps/APP/head` (the newest number), `apps/APP/snapshots/N` (a JSON record: number, time,
//! size, checksum, parent, chunk list), `apps/APP/tags` (a JSON map tag → number, one key so a
//! tag change is one compare-and-swap and one watch event), `chunks/SHA256` (bytes), and
//! `generation` (rewritten by every commit, so [`EtcdStore::gc`] can tell that a commit ran
//! while it looked).

mod gc;
mod read;
pub(crate) mod record;
mod save;
mod tags;

use etcd_client::{KeyValue, Txn, TxnOp, TxnOpResponse};

pub use gc::GcReport;
pub use record::{About, AppSummary, CHUNK_SIZE, Entry, MAX_CHUNKS, MAX_SNAPSHOT_BYTES};
pub use save::{Parent, Save};
pub use tags::{TagConflict, Tagged};

use crate::connection::Etcd;
use crate::error::FleetError;
use record::{Head, Record, Tags, decode};

/// How many chunk requests run at once during a save or a load.
const PARALLEL_CHUNKS: usize = 4;

/// How many times a compare-and-swap is tried when other writers keep changing what it
/// compares.
const COMMIT_ATTEMPTS: u32 = 16;

/// The snapshot store under one etcd prefix. See the [module documentation](self).
#[derive(Clone)]
pub struct EtcdStore {
    etcd: Etcd,
}

/// An application's head and tags as read together, with the revisions to compare against.
struct AppState {
    latest: Option<u64>,
    head_revision: i64,
    tags: Tags,
    tags_revision: i64,
}

impl EtcdStore {
    /// The store on an open connection.
    pub fn new(etcd: Etcd) -> EtcdStore {
        EtcdStore { etcd }
    }

    /// The connection the store uses.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// Reads `app`'s head and tags in one request.
    async fn read_app(&self, op: &str, app: &str) -> Result<AppState, FleetError> {
        let head_key = self.etcd.key(&record::head_key(app));
        let tags_key = self.etcd.key(&record::tags_key(app));
        let txn = Txn::new().and_then(vec![TxnOp::get(head_key, None), TxnOp::get(tags_key, None)]);
        let response = self.etcd.txn(op, txn).await?;
        let mut kvs = response.op_responses().into_iter().map(|r| match r {
            TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
            _ => None,
        });
        let head = kvs.next().flatten();
        let tags = kvs.next().flatten();
        let (latest, head_revision) = match head {
            Some(kv) => (
                Some(decode::<Head>(kv.key(), kv.value())?.latest),
                kv.mod_revision(),
            ),
            None => (None, 0),
        };
        let (tags, tags_revision) = match tags {
            Some(kv) => (decode::<Tags>(kv.key(), kv.value())?, kv.mod_revision()),
            None => (Tags::new(), 0),
        };
        Ok(AppState {
            latest,
            head_revision,
            tags,
            tags_revision,
        })
    }

    /// Reads the record of snapshot `number` of `app`, if there is one.
    async fn read_record(
        &self,
        op: &str,
        app: &str,
        number: u64,
    ) -> Result<Option<Record>, FleetError> {
        let key = self.etcd.key(&record::snapshot_key(app, number));
        let mut response = self.etcd.get(op, key, None).await?;
        match response.take_kvs().into_iter().next() {
            Some(kv) => Ok(Some(decode_record(&kv)?)),
            None => Ok(None),
        }
    }
}

fn decode_record(kv: &KeyValue) -> Result<Record, FleetError> {
    decode(kv.key(), kv.value())
}

/// Checks an application name (the rules of `rtwisted_core::Application`'s names).
pub(crate) fn check_app(app: &str) -> Result<(), FleetError> {
    rtwisted_core::application::validate_app_name(app).map_err(|_| FleetError::InvalidApp {
        reason: format!(
            "'{app}' is not a valid application name (it must be non-empty, hold no '/' and not start with '.')"
        ),
    })
}

/// Checks a tag with the folder store's rules.
pub(crate) fn check_tag(tag: &str) -> Result<(), FleetError> {
    rtwisted_persist::store::check_tag(tag).map_err(|reason| FleetError::InvalidTag { reason })
}
