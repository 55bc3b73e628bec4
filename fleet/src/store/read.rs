//! Reading: resolving addresses, loading and checking bytes, the log and the list.

use rtwisted_persist::store::{Selector, StoreAddress};
use tokio::task::JoinSet;

use super::record::{self, CHUNK_SIZE, MAX_CHUNKS, MAX_SNAPSHOT_BYTES, Record, Tags};
use super::{AppSummary, Entry, EtcdStore, PARALLEL_CHUNKS, check_app, decode_record};
use crate::error::FleetError;

impl EtcdStore {
    /// The entry an address picks.
    pub async fn resolve(&self, address: &StoreAddress) -> Result<Entry, FleetError> {
        let (entry, _) = self.resolve_record(address).await?;
        Ok(entry)
    }

    pub(super) async fn resolve_record(
        &self,
        address: &StoreAddress,
    ) -> Result<(Entry, Record), FleetError> {
        let app = address.app.as_str();
        let op = format!("read {address}");
        let state = self.read_app(&op, app).await?;
        let Some(latest) = state.latest else {
            return Err(FleetError::NoApp {
                app: app.to_owned(),
            });
        };
        let number = match &address.selector {
            Selector::Latest => latest,
            Selector::Number(number) => *number,
            Selector::Tag(tag) => match state.tags.get(tag) {
                Some(number) => *number,
                None => {
                    return Err(FleetError::NoSnapshot {
                        address: address.to_string(),
                        hint: tags_hint(app, &state.tags),
                    });
                }
            },
        };
        let Some(record) = self.read_record(&op, app, number).await? else {
            let numbers: Vec<u64> = self.log(app).await?.iter().map(|e| e.number).collect();
            return Err(FleetError::NoSnapshot {
                address: address.to_string(),
                hint: rtwisted_persist::store::numbers_hint(app, &numbers),
            });
        };
        let tag = record::tags_by_number(&state.tags).remove(&number);
        Ok((record.entry(app, tag), record))
    }

    /// The entry an address picks and its bytes, checked chunk by chunk and whole against the
    /// recorded SHA-256.
    pub async fn get(&self, address: &StoreAddress) -> Result<(Entry, Vec<u8>), FleetError> {
        let (entry, record) = self.resolve_record(address).await?;
        let op = format!("read {address}");
        let bytes = self.download(&op, &record).await?;
        if record::hex_sha256(&bytes) != record.sha256.trim_start_matches("sha256:") {
            return Err(FleetError::Damaged {
                key: self
                    .etcd
                    .key(&record::snapshot_key(&entry.app, entry.number)),
                detail: "the bytes do not match the recorded SHA-256".to_owned(),
            });
        }
        Ok((entry, bytes))
    }

    /// Reads a record's chunks, a few at a time, and joins them.
    async fn download(&self, op: &str, record: &Record) -> Result<Vec<u8>, FleetError> {
        let expected = record.size;
        if expected > MAX_SNAPSHOT_BYTES || record.chunks.len() > MAX_CHUNKS {
            return Err(FleetError::Damaged {
                key: format!("snapshot #{}", record.number),
                detail: format!(
                    "the record claims {expected} bytes in {} chunks",
                    record.chunks.len()
                ),
            });
        }
        let mut parts: Vec<Option<Vec<u8>>> = vec![None; record.chunks.len()];
        let mut pending = record.chunks.iter().enumerate();
        let mut running = JoinSet::new();
        loop {
            while running.len() < PARALLEL_CHUNKS {
                let Some((index, digest)) = pending.next() else {
                    break;
                };
                let etcd = self.etcd.clone();
                let key = etcd.key(&record::chunk_key(digest));
                let digest = digest.clone();
                let op = op.to_owned();
                running.spawn(async move {
                    let mut response = etcd.get(&op, key.clone(), None).await?;
                    let Some(kv) = response.take_kvs().into_iter().next() else {
                        return Err(FleetError::Damaged {
                            key,
                            detail: "a chunk of the snapshot is missing".to_owned(),
                        });
                    };
                    let (_, value) = kv.into_key_value();
                    if value.len() > CHUNK_SIZE || record::hex_sha256(&value) != digest {
                        return Err(FleetError::Damaged {
                            key,
                            detail: "the chunk does not match its digest".to_owned(),
                        });
                    }
                    Ok((index, value))
                });
            }
            match running.join_next().await {
                None => break,
                Some(Ok(result)) => {
                    let (index, value) = result?;
                    parts[index] = Some(value);
                }
                Some(Err(join)) => {
                    return Err(FleetError::Etcd {
                        op: op.to_owned(),
                        detail: format!("a chunk download stopped ({join})"),
                    });
                }
            }
        }
        let total: u64 = parts.iter().flatten().map(|p| p.len() as u64).sum();
        if total != expected {
            return Err(FleetError::Damaged {
                key: format!("snapshot #{}", record.number),
                detail: format!("its chunks hold {total} bytes, the record says {expected}"),
            });
        }
        Ok(parts.into_iter().flatten().flatten().collect())
    }

    /// Every snapshot of `app`, oldest first.
    pub async fn log(&self, app: &str) -> Result<Vec<Entry>, FleetError> {
        check_app(app)?;
        let op = format!("list the snapshots of {app}");
        let state = self.read_app(&op, app).await?;
        if state.latest.is_none() {
            return Err(FleetError::NoApp {
                app: app.to_owned(),
            });
        }
        let mut tags = record::tags_by_number(&state.tags);
        let records = self.records(&op, app).await?;
        Ok(records
            .into_iter()
            .map(|(_, record)| {
                let tag = tags.remove(&record.number);
                record.entry(app, tag)
            })
            .collect())
    }

    /// Every record of `app` with its key's revision, oldest first.
    pub(super) async fn records(
        &self,
        op: &str,
        app: &str,
    ) -> Result<Vec<(i64, Record)>, FleetError> {
        let prefix = self.etcd.key(&format!("apps/{app}/snapshots/"));
        self.etcd
            .scan(op, &prefix, false)
            .await?
            .iter()
            .map(|kv| Ok((kv.mod_revision(), decode_record(kv)?)))
            .collect()
    }

    /// Every application in the store, by name.
    pub async fn list(&self) -> Result<Vec<AppSummary>, FleetError> {
        let op = "list the applications";
        let prefix = self.etcd.key("apps/");
        let apps: Vec<String> = self
            .etcd
            .scan(op, &prefix, true)
            .await?
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(kv.key());
                key.strip_prefix(&prefix)?
                    .strip_suffix("/head")
                    .map(str::to_owned)
            })
            .collect();
        let mut summaries = Vec::new();
        for app in apps {
            let entries = match self.log(&app).await {
                Ok(entries) => entries,
                // Removed between the listing and now.
                Err(FleetError::NoApp { .. }) => continue,
                Err(error) => return Err(error),
            };
            let Some(latest) = entries.last().cloned() else {
                continue;
            };
            summaries.push(AppSummary {
                count: entries.len(),
                total_bytes: entries.iter().map(|e| e.size).sum(),
                app,
                latest,
            });
        }
        Ok(summaries)
    }
}

/// What to tell someone who asked for a tag that is not there.
/// The folder store's words for the tags there are, in the order of their snapshots.
fn tags_hint(app: &str, tags: &Tags) -> String {
    let mut by_number: Vec<(&u64, &str)> = tags.iter().map(|(t, n)| (n, t.as_str())).collect();
    by_number.sort();
    rtwisted_persist::store::tags_hint(app, by_number.into_iter().map(|(_, tag)| tag))
}
