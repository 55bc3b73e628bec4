//! # Watching an application's tags, for `--follow`
//!
//! [`EtcdStore::watch_tags`] reads the application's tags once, then streams every change:
//! a tag put on, moved to, or taken off a snapshot, as [`TagChange`]s in commit order. A daemon
//! following `APP@prod` loads the snapshot a change names and applies it.

use std::collections::VecDeque;

use etcd_client::{EventType, WatchOptions, WatchStream};

use crate::connection::Etcd;
use crate::error::FleetError;
use crate::store::EtcdStore;
use crate::store::record::{self, Tags, decode};

/// One tag's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The tag.
    pub tag: String,
    /// The snapshot it is on now, or `None` if it was removed.
    pub number: Option<u64>,
    /// The etcd revision of the change.
    pub revision: i64,
}

/// A stream of an application's tag changes. Dropping it cancels the watch.
pub struct TagWatch {
    etcd: Etcd,
    app: String,
    key: String,
    tags: Tags,
    /// The revision of the tags this watch has seen: a new stream starts after it.
    revision: i64,
    pending: VecDeque<TagChange>,
    events: WatchStream,
}

impl EtcdStore {
    /// Starts watching `app`'s tags: [`TagWatch::tags`] is their state now, and
    /// [`TagWatch::next`] yields each change after it, none missed in between.
    pub async fn watch_tags(&self, app: &str) -> Result<TagWatch, FleetError> {
        crate::store::check_app(app)?;
        let op = format!("watch the tags of {app}");
        let etcd = self.etcd();
        let key = etcd.key(&record::tags_key(app));
        let mut response = etcd.get(&op, key.clone(), None).await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let tags = match response.take_kvs().first() {
            Some(kv) => decode(kv.key(), kv.value())?,
            None => Tags::new(),
        };
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let events = etcd.watch(&op, key.clone(), options).await?;
        Ok(TagWatch {
            etcd: etcd.clone(),
            app: app.to_owned(),
            key,
            tags,
            revision,
            pending: VecDeque::new(),
            events,
        })
    }
}

impl TagWatch {
    /// The tags as of the last change returned (tag → snapshot number).
    pub fn tags(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.tags
    }

    /// Waits for the next tag change. A broken stream (the etcd member it was on died) is
    /// reopened after the last revision seen, so no change is missed; if etcd compacted that
    /// revision away, the tags are read again and what changed meanwhile is reported. An error
    /// means etcd could not be reached within the connection's deadline.
    pub async fn next(&mut self) -> Result<TagChange, FleetError> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Ok(change);
            }
            let message = match self.events.message().await {
                Ok(Some(message)) => message,
                Ok(None) | Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    self.reopen(false).await?;
                    continue;
                }
            };
            if message.canceled() {
                let compacted = message.compact_revision() > 0;
                self.reopen(compacted).await?;
                continue;
            }
            for event in message.events() {
                let Some(kv) = event.kv() else { continue };
                let next = match event.event_type() {
                    EventType::Delete => Tags::new(),
                    EventType::Put => decode::<Tags>(self.key.as_bytes(), kv.value())?,
                };
                self.diff(&next, kv.mod_revision());
                self.tags = next;
                self.revision = self.revision.max(kv.mod_revision());
            }
        }
    }

    /// Opens a new stream after the last revision seen; after a compaction, reads the tags
    /// again first and queues what changed.
    async fn reopen(&mut self, reread: bool) -> Result<(), FleetError> {
        let op = format!("watch the tags of {}", self.app);
        if reread {
            let mut response = self.etcd.get(&op, self.key.clone(), None).await?;
            let revision = response.header().map_or(0, |h| h.revision());
            let next = match response.take_kvs().first() {
                Some(kv) => decode(kv.key(), kv.value())?,
                None => Tags::new(),
            };
            self.diff(&next, revision);
            self.tags = next;
            self.revision = revision;
        }
        let options = WatchOptions::new().with_start_revision(self.revision + 1);
        self.events = self.etcd.watch(&op, self.key.clone(), options).await?;
        Ok(())
    }

    /// Queues a change for every tag that differs between the current tags and `next`.
    fn diff(&mut self, next: &Tags, revision: i64) {
        for (tag, number) in next {
            if self.tags.get(tag) != Some(number) {
                self.pending.push_back(TagChange {
                    tag: tag.clone(),
                    number: Some(*number),
                    revision,
                });
            }
        }
        for tag in self.tags.keys() {
            if !next.contains_key(tag) {
                self.pending.push_back(TagChange {
                    tag: tag.clone(),
                    number: None,
                    revision,
                });
            }
        }
    }
}
