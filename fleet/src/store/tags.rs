//! Tags: one name per snapshot, unique within the application, changed by compare-and-swap on
//! the application's one tags key.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use rtwisted_persist::store::StoreAddress;

use super::record::{self, encode};
use super::{AppState, COMMIT_ATTEMPTS, Entry, EtcdStore, check_tag};
use crate::error::FleetError;

/// What [`EtcdStore::tag`] does when the tag is already on another snapshot: the folder
/// store's own choice.
pub use rtwisted_persist::store::TagConflict;

/// What [`EtcdStore::tag`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The snapshot, now carrying the tag.
    pub entry: Entry,
    /// The snapshot the tag was moved from, if it was on another one.
    pub moved_from: Option<u64>,
    /// The tag this snapshot had before, if it had another one.
    pub replaced: Option<String>,
}

impl EtcdStore {
    /// Puts `tag` on the snapshot `address` picks (replacing a tag it had). Watchers of the
    /// application's tags ([`EtcdStore::watch_tags`]) see the change.
    pub async fn tag(
        &self,
        address: &StoreAddress,
        tag: &str,
        conflict: TagConflict,
    ) -> Result<Tagged, FleetError> {
        check_tag(tag)?;
        let app = address.app.as_str();
        let op = format!("tag {address} as {tag}");
        for _ in 0..COMMIT_ATTEMPTS {
            let (mut entry, _) = self.resolve_record(address).await?;
            let state = self.read_app(&op, app).await?;
            let moved_from = state
                .tags
                .get(tag)
                .copied()
                .filter(|number| *number != entry.number);
            if let (Some(number), TagConflict::Refuse) = (moved_from, conflict) {
                return Err(FleetError::TagTaken {
                    app: app.to_owned(),
                    tag: tag.to_owned(),
                    number,
                });
            }
            let mut tags = state.tags.clone();
            let replaced = record::tags_by_number(&tags)
                .remove(&entry.number)
                .filter(|old| old != tag);
            tags.retain(|_, number| *number != entry.number);
            tags.insert(tag.to_owned(), entry.number);
            if self.swap_tags(app, &state, entry.number, &tags).await? {
                entry.tag = Some(tag.to_owned());
                return Ok(Tagged {
                    entry,
                    moved_from,
                    replaced,
                });
            }
        }
        Err(FleetError::Contended {
            app: app.to_owned(),
            op: format!("tag {address}"),
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// Takes the tag off the snapshot `address` picks; returns the entry and the tag removed.
    pub async fn untag(&self, address: &StoreAddress) -> Result<(Entry, String), FleetError> {
        let app = address.app.as_str();
        let op = format!("untag {address}");
        for _ in 0..COMMIT_ATTEMPTS {
            let (mut entry, _) = self.resolve_record(address).await?;
            let state = self.read_app(&op, app).await?;
            let Some(tag) = record::tags_by_number(&state.tags).remove(&entry.number) else {
                return Err(FleetError::NotTagged {
                    address: entry.address(),
                });
            };
            let mut tags = state.tags.clone();
            tags.remove(&tag);
            if self.swap_tags(app, &state, entry.number, &tags).await? {
                entry.tag = None;
                return Ok((entry, tag));
            }
        }
        Err(FleetError::Contended {
            app: app.to_owned(),
            op: format!("untag {address}"),
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// Writes `tags` if the tags key is still as read and snapshot `number` still exists;
    /// false when either changed.
    async fn swap_tags(
        &self,
        app: &str,
        state: &AppState,
        number: u64,
        tags: &record::Tags,
    ) -> Result<bool, FleetError> {
        let tags_key = self.etcd.key(&record::tags_key(app));
        let txn = Txn::new()
            .when(vec![
                Compare::mod_revision(tags_key.clone(), CompareOp::Equal, state.tags_revision),
                Compare::version(
                    self.etcd.key(&record::snapshot_key(app, number)),
                    CompareOp::Greater,
                    0,
                ),
            ])
            .and_then(vec![TxnOp::put(tags_key, encode(tags), None)]);
        let response = self.etcd.txn(&format!("tag {app}@{number}"), txn).await?;
        Ok(response.succeeded())
    }
}
