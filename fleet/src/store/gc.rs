//! Retention: removing old snapshots of an application, then every chunk no snapshot of any
//! application still refers to.

use std::collections::BTreeSet;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::record::{self, Record, decode};
use super::{COMMIT_ATTEMPTS, Entry, EtcdStore, check_app};
use crate::error::FleetError;

/// How many keys one gc transaction deletes (etcd allows 128 operations per transaction).
const DELETE_BATCH: usize = 100;

/// What [`EtcdStore::gc`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcReport {
    /// The snapshots removed, oldest first.
    pub removed: Vec<Entry>,
    /// How many chunks no snapshot referred to any more, now deleted.
    pub chunks_removed: usize,
}

impl EtcdStore {
    /// Removes the snapshots of `app` other than the newest `keep` and the tagged ones, then
    /// every chunk no remaining snapshot (of any application under the prefix) refers to.
    /// `keep` must be at least 1. Numbers are never reused.
    ///
    /// A save running at the same time is never damaged: a chunk is deleted only by a
    /// transaction that checks no commit happened since gc looked, and a commit checks that
    /// every chunk it names still exists (re-writing it if gc took it).
    pub async fn gc(&self, app: &str, keep: usize) -> Result<GcReport, FleetError> {
        if keep == 0 {
            return Err(FleetError::KeepNothing);
        }
        check_app(app)?;
        let removed = self.remove_old(app, keep).await?;
        let chunks_removed = self.remove_unreferenced_chunks().await?;
        Ok(GcReport {
            removed,
            chunks_removed,
        })
    }

    /// Deletes the records of `app` past the newest `keep`, sparing tagged ones, by
    /// compare-and-swap on the head and tags (so a snapshot tagged meanwhile is not removed).
    async fn remove_old(&self, app: &str, keep: usize) -> Result<Vec<Entry>, FleetError> {
        let op = format!("gc {app}");
        let mut removed = Vec::new();
        let mut failures = 0;
        while failures < COMMIT_ATTEMPTS {
            let state = self.read_app(&op, app).await?;
            if state.latest.is_none() {
                return Err(FleetError::NoApp {
                    app: app.to_owned(),
                });
            }
            let records = self.records(&op, app).await?;
            let tagged = record::tags_by_number(&state.tags);
            let old = records.len().saturating_sub(keep);
            let doomed: Vec<&Record> = records[..old]
                .iter()
                .map(|(_, record)| record)
                .filter(|record| !tagged.contains_key(&record.number))
                .take(DELETE_BATCH)
                .collect();
            if doomed.is_empty() {
                return Ok(removed);
            }
            let head_key = self.etcd.key(&record::head_key(app));
            let tags_key = self.etcd.key(&record::tags_key(app));
            let txn = Txn::new()
                .when(vec![
                    Compare::mod_revision(head_key, CompareOp::Equal, state.head_revision),
                    Compare::mod_revision(tags_key, CompareOp::Equal, state.tags_revision),
                ])
                .and_then(
                    doomed
                        .iter()
                        .map(|record| {
                            TxnOp::delete(
                                self.etcd.key(&record::snapshot_key(app, record.number)),
                                None,
                            )
                        })
                        .collect::<Vec<_>>(),
                );
            let response = self.etcd.txn(&op, txn).await?;
            if response.succeeded() {
                removed.extend(doomed.iter().map(|record| record.entry(app, None)));
            } else {
                failures += 1;
            }
        }
        Err(FleetError::Contended {
            app: app.to_owned(),
            op: "gc".to_owned(),
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// Deletes every chunk no record refers to; returns how many.
    async fn remove_unreferenced_chunks(&self) -> Result<usize, FleetError> {
        let op = "gc chunks";
        let mut deleted = 0;
        'attempt: for _ in 0..COMMIT_ATTEMPTS {
            // The generation first: a commit after this read changes it, and the deletes below
            // check it did not change.
            let generation_key = self.etcd.key(record::GENERATION_KEY);
            let mut response = self.etcd.get(op, generation_key.clone(), None).await?;
            let generation = response
                .take_kvs()
                .first()
                .map_or(0, |kv| kv.mod_revision());
            let apps = self.etcd.key("apps/");
            let mut referenced = BTreeSet::new();
            for kv in self.etcd.scan(op, &apps, false).await? {
                if String::from_utf8_lossy(kv.key()).contains("/snapshots/") {
                    let record: Record = decode(kv.key(), kv.value())?;
                    referenced.extend(record.chunks);
                }
            }
            let chunks = self.etcd.key("chunks/");
            let unreferenced: Vec<Vec<u8>> = self
                .etcd
                .scan(op, &chunks, true)
                .await?
                .into_iter()
                .map(|kv| kv.into_key_value().0)
                .filter(|key| {
                    let key = String::from_utf8_lossy(key);
                    key.strip_prefix(&chunks)
                        .is_some_and(|digest| !referenced.contains(digest))
                })
                .collect();
            for batch in unreferenced.chunks(DELETE_BATCH) {
                let txn = Txn::new()
                    .when(vec![Compare::mod_revision(
                        generation_key.clone(),
                        CompareOp::Equal,
                        generation,
                    )])
                    .and_then(
                        batch
                            .iter()
                            .map(|key| TxnOp::delete(key.clone(), None))
                            .collect::<Vec<_>>(),
                    );
                let response = self.etcd.txn(op, txn).await?;
                if !response.succeeded() {
                    continue 'attempt;
                }
                deleted += batch.len();
            }
            return Ok(deleted);
        }
        Err(FleetError::Contended {
            app: "the store".to_owned(),
            op: op.to_owned(),
            attempts: COMMIT_ATTEMPTS,
        })
    }
}
