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
//! ## Keys, under `/PREFIX/`
//! `apps/APP/head` (the newest number), `apps/APP/snapshots/N` (a JSON record: number, time,
//! size, checksum, parent, chunk list), `apps/APP/tags` (a JSON map tag → number, one key so a
//! tag change is one compare-and-swap and one watch event), `chunks/SHA256` (bytes), and
//! `generation` (rewritten by every commit, so [`EtcdStore::gc`] can tell that a commit ran
//! while it looked).

mod gc;
pub(crate) mod record;
mod tags;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use rtwisted_persist::store::{Selector, StoreAddress};
use tokio::task::JoinSet;

pub use gc::GcReport;
pub use record::{AppSummary, CHUNK_SIZE, Entry, MAX_CHUNKS, MAX_SNAPSHOT_BYTES};
pub use tags::{TagConflict, Tagged};

use crate::connection::Etcd;
use crate::election::Fence;
use crate::error::FleetError;
use record::{Head, Record, Tags, decode, encode};

/// How many chunk requests run at once during a save or a load.
const PARALLEL_CHUNKS: usize = 4;

/// How many times a commit is tried when other writers keep moving the head.
const COMMIT_ATTEMPTS: u32 = 16;

/// How many commits whose reply was lost are tried before the error is reported.
const AMBIGUOUS_ATTEMPTS: u64 = 4;

/// What a save commits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parent {
    /// Whatever is the latest when the commit lands (an append: it never fails because another
    /// writer saved first, and records that writer's snapshot as its parent).
    #[default]
    Latest,
    /// Exactly this snapshot (`None`: the application has none yet). If another was saved
    /// since, the save is refused with [`FleetError::NotLatest`] and nothing is written.
    Expect(Option<u64>),
}

/// How a snapshot is saved: see [`EtcdStore::save`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Save<'a> {
    /// What the save commits on.
    pub parent: Parent,
    /// A tag for the new snapshot (refused if already on another one).
    pub tag: Option<&'a str>,
    /// The leadership the write is made under; the commit is refused with
    /// [`FleetError::Fenced`] once that leadership is gone.
    pub fence: Option<&'a Fence>,
}

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

    /// Stores `bytes` as the next snapshot of `app` (committed on whatever is the latest),
    /// tagged `tag` if given, and returns its entry once etcd has committed it.
    pub async fn put(
        &self,
        app: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Entry, FleetError> {
        let options = Save {
            tag,
            ..Save::default()
        };
        self.save(app, bytes, &options).await
    }

    /// Stores `bytes` as the next snapshot of `app` as `options` say: chunks first, then one
    /// compare-and-swap commit. On any error nothing is visible (chunks written before a failed
    /// commit are left for [`EtcdStore::gc`]).
    pub async fn save(
        &self,
        app: &str,
        bytes: &[u8],
        options: &Save<'_>,
    ) -> Result<Entry, FleetError> {
        check_app(app)?;
        if let Some(tag) = options.tag {
            check_tag(tag)?;
        }
        let size = bytes.len() as u64;
        if size > MAX_SNAPSHOT_BYTES {
            return Err(FleetError::TooLarge {
                size,
                max: MAX_SNAPSHOT_BYTES,
            });
        }
        let op = format!("save {app}");
        let chunks = record::split(bytes);
        let digests: Vec<String> = chunks.iter().map(|(digest, _)| digest.clone()).collect();
        let distinct: BTreeMap<&str, &[u8]> = chunks
            .iter()
            .map(|(digest, chunk)| (digest.as_str(), *chunk))
            .collect();
        // Refuse what is bound to be refused before sending the bytes; the commit checks again.
        let before = self.read_app(&op, app).await?;
        self.check_save(app, &before, options)?;
        self.upload(&op, &distinct).await?;
        let save_id = unique_id();
        let sha256 = format!("sha256:{}", record::hex_sha256(bytes));
        let mut ambiguous: Option<FleetError> = None;
        let mut ambiguous_count: u64 = 0;
        for _ in 0..COMMIT_ATTEMPTS {
            let state = self.read_app(&op, app).await?;
            if ambiguous.is_some()
                && let Some(latest) = state.latest
                && let Some(record) = self.read_record(&op, app, latest).await?
                && record.save_id == save_id
            {
                let tag = options.tag.map(str::to_owned);
                return Ok(record.entry(app, tag));
            }
            self.check_save(app, &state, options)?;
            let number = state.latest.unwrap_or(0) + 1;
            let record = Record {
                number,
                saved: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                size,
                sha256: sha256.clone(),
                parent: state.latest,
                chunks: digests.clone(),
                save_id: save_id.clone(),
            };
            let txn = self.commit_txn(app, &state, &record, &distinct, options);
            match self.etcd.txn_once(&op, txn).await {
                Ok(response) if response.succeeded() => {
                    return Ok(record.entry(app, options.tag.map(str::to_owned)));
                }
                Ok(response) => {
                    if let Some(fence) = options.fence {
                        fence.check_in(&response)?;
                    }
                    // The head moved, the tags changed, or gc took a chunk: put back what is
                    // missing and try on the new state.
                    self.upload(&op, &distinct).await?;
                }
                Err(error @ (FleetError::Timeout { .. } | FleetError::Etcd { .. })) => {
                    // The commit may or may not have landed: the next attempt looks for it.
                    ambiguous_count += 1;
                    if ambiguous_count >= AMBIGUOUS_ATTEMPTS {
                        return Err(error);
                    }
                    ambiguous = Some(error);
                    tokio::time::sleep(std::time::Duration::from_millis(100 * ambiguous_count))
                        .await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(FleetError::Contended {
            app: app.to_owned(),
            op: "save".to_owned(),
            attempts: COMMIT_ATTEMPTS,
        })
    }

    /// Refuses a save on a parent that is not the latest, or with a tag already in use.
    fn check_save(
        &self,
        app: &str,
        state: &AppState,
        options: &Save<'_>,
    ) -> Result<(), FleetError> {
        if let Parent::Expect(parent) = options.parent
            && parent != state.latest
        {
            return Err(FleetError::NotLatest {
                app: app.to_owned(),
                parent,
                latest: state.latest,
            });
        }
        if let Some(tag) = options.tag
            && let Some(number) = state.tags.get(tag)
        {
            return Err(FleetError::TagTaken {
                app: app.to_owned(),
                tag: tag.to_owned(),
                number: *number,
            });
        }
        Ok(())
    }

    /// The commit: compare head, chunks, fence and tags; then write record, head, generation and
    /// tags. On failure it reads the fence key, so the caller can tell a lost leadership.
    fn commit_txn(
        &self,
        app: &str,
        state: &AppState,
        record: &Record,
        distinct: &BTreeMap<&str, &[u8]>,
        options: &Save<'_>,
    ) -> Txn {
        let key = |rest: &str| self.etcd.key(rest);
        let mut compares = vec![Compare::mod_revision(
            key(&record::head_key(app)),
            CompareOp::Equal,
            state.head_revision,
        )];
        compares.extend(distinct.keys().map(|digest| {
            Compare::version(key(&record::chunk_key(digest)), CompareOp::Greater, 0)
        }));
        let mut success = vec![
            TxnOp::put(
                key(&record::snapshot_key(app, record.number)),
                encode(record),
                None,
            ),
            TxnOp::put(
                key(&record::head_key(app)),
                encode(&Head {
                    latest: record.number,
                }),
                None,
            ),
            TxnOp::put(
                key(record::GENERATION_KEY),
                format!("{app}@{}", record.number),
                None,
            ),
        ];
        if let Some(tag) = options.tag {
            compares.push(Compare::mod_revision(
                key(&record::tags_key(app)),
                CompareOp::Equal,
                state.tags_revision,
            ));
            let mut tags = state.tags.clone();
            tags.insert(tag.to_owned(), record.number);
            success.push(TxnOp::put(key(&record::tags_key(app)), encode(&tags), None));
        }
        let mut failure = Vec::new();
        if let Some(fence) = options.fence {
            compares.push(fence.compare());
            failure.push(fence.read());
        }
        Txn::new().when(compares).and_then(success).or_else(failure)
    }

    /// Writes the chunks that are not in etcd yet, a few at a time.
    async fn upload(&self, op: &str, distinct: &BTreeMap<&str, &[u8]>) -> Result<(), FleetError> {
        let mut pending = distinct.iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < PARALLEL_CHUNKS {
                let Some((digest, chunk)) = pending.next() else {
                    break;
                };
                let etcd = self.etcd.clone();
                let key = etcd.key(&record::chunk_key(digest));
                let chunk = chunk.to_vec();
                let op = op.to_owned();
                running.spawn(async move {
                    let options = GetOptions::new().with_count_only();
                    let found = etcd.get(&op, key.clone(), Some(options)).await?;
                    if found.count() == 0 {
                        etcd.put(&op, key, chunk, None).await?;
                    }
                    Ok::<(), FleetError>(())
                });
            }
            match running.join_next().await {
                None => return Ok(()),
                Some(Ok(result)) => result?,
                Some(Err(join)) => {
                    return Err(FleetError::Etcd {
                        op: op.to_owned(),
                        detail: format!("a chunk upload stopped ({join})"),
                    });
                }
            }
        }
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

    /// The entry an address picks.
    pub async fn resolve(&self, address: &StoreAddress) -> Result<Entry, FleetError> {
        let (entry, _) = self.resolve_record(address).await?;
        Ok(entry)
    }

    async fn resolve_record(&self, address: &StoreAddress) -> Result<(Entry, Record), FleetError> {
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
            return Err(FleetError::NoSnapshot {
                address: address.to_string(),
                hint: format!("the newest is {app}@{latest}"),
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
    async fn records(&self, op: &str, app: &str) -> Result<Vec<(i64, Record)>, FleetError> {
        let prefix = self.etcd.key(&format!("apps/{app}/snapshots/"));
        let options = GetOptions::new().with_prefix();
        let mut response = self.etcd.get(op, prefix, Some(options)).await?;
        response
            .take_kvs()
            .iter()
            .map(|kv| Ok((kv.mod_revision(), decode_record(kv)?)))
            .collect()
    }

    /// Every application in the store, by name.
    pub async fn list(&self) -> Result<Vec<AppSummary>, FleetError> {
        let op = "list the applications";
        let prefix = self.etcd.key("apps/");
        let options = GetOptions::new().with_prefix().with_keys_only();
        let mut response = self.etcd.get(op, prefix.clone(), Some(options)).await?;
        let apps: Vec<String> = response
            .take_kvs()
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

fn decode_record(kv: &KeyValue) -> Result<Record, FleetError> {
    decode(kv.key(), kv.value())
}

/// What to tell someone who asked for a tag that is not there.
fn tags_hint(app: &str, tags: &Tags) -> String {
    if tags.is_empty() {
        format!("{app} has no tags")
    } else {
        let names: Vec<&str> = tags.keys().map(String::as_str).collect();
        format!("{app} has tags {}", names.join(", "))
    }
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

/// An id no other save attempt has: this process, the time, and a counter.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos:x}-{count}", std::process::id())
}
