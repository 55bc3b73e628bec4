//! # Watching an application's tags, for `--follow`
//!
//! [`EtcdStore::watch_tags`] reads the application's tags once, then streams every change:
//! a tag put on, moved to, or taken off a snapshot, as [`TagChange`]s in commit order. A daemon
//! following `APP@prod` loads the snapshot a change names and applies it.

use std::collections::VecDeque;

use etcd_client::{EventType, WatchOptions, WatchStream};

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
    app: String,
    key: String,
    tags: Tags,
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
            app: app.to_owned(),
            key,
            tags,
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

    /// Waits for the next tag change. `None` when etcd ended the watch (the connection was
    /// lost for good, or the history was compacted past it); start a new watch then.
    pub async fn next(&mut self) -> Option<Result<TagChange, FleetError>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(Ok(change));
            }
            let message = match self.events.message().await {
                Ok(Some(message)) => message,
                Ok(None) => return None,
                Err(error) => {
                    return Some(Err(FleetError::etcd(
                        format!("watch the tags of {}", self.app),
                        &error,
                    )));
                }
            };
            if message.canceled() {
                return None;
            }
            for event in message.events() {
                let Some(kv) = event.kv() else { continue };
                let next = match event.event_type() {
                    EventType::Delete => Tags::new(),
                    EventType::Put => match decode::<Tags>(self.key.as_bytes(), kv.value()) {
                        Ok(tags) => tags,
                        Err(error) => return Some(Err(error)),
                    },
                };
                self.diff(&next, kv.mod_revision());
                self.tags = next;
            }
        }
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
