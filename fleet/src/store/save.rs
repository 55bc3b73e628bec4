//! Saving: chunks first, then one compare-and-swap commit (see the [store](super) docs).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use tokio::task::JoinSet;

use super::record::{self, About, Head, MAX_SNAPSHOT_BYTES, Record, encode};
use super::{AppState, COMMIT_ATTEMPTS, Entry, EtcdStore, PARALLEL_CHUNKS, check_app, check_tag};
use crate::connection::Sent;
use crate::election::Fence;
use crate::error::FleetError;

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
    /// Recorded as made from `parent`, committed on the latest; refused with
    /// [`FleetError::NotLatest`] when `since` is given and is no longer the latest (an edit:
    /// the folder store's `OnNewer::Refuse`), never marked diverged.
    Given {
        /// The snapshot the new one was made from.
        parent: Option<u64>,
        /// The newest snapshot the writer knew of, checked when given.
        since: Option<u64>,
    },
    /// Made from `made_from` when `since` was the newest the writer knew (a daemon's
    /// checkpoint): saved whatever is the latest now, with `made_from` as its parent; if a
    /// newer snapshot than `since` exists, the entry records it as
    /// [`diverged_from`](Entry::diverged_from), so the fork in the history is visible and
    /// nothing is reverted silently. The folder store's `OnNewer::MarkDiverged`.
    Diverge {
        /// The snapshot the new one was made from.
        made_from: Option<u64>,
        /// The newest snapshot the writer knew of.
        since: Option<u64>,
    },
}

impl Parent {
    /// The parent recorded and the `diverged_from` of a snapshot committed when `latest` is
    /// the application's newest.
    fn lineage(self, latest: Option<u64>) -> (Option<u64>, Option<u64>) {
        match self {
            Parent::Latest | Parent::Expect(_) => (latest, None),
            Parent::Given { parent, .. } => (parent, None),
            Parent::Diverge { made_from, since } => {
                (made_from, latest.filter(|newest| Some(*newest) != since))
            }
        }
    }
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
    /// What the snapshot's header says, recorded in its entry (the store itself never opens
    /// the bytes: they may be anything, or encrypted).
    pub about: Option<&'a About>,
}

impl EtcdStore {
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
        // The number of a commit sent without an answer: it landed if that record is ours.
        // Such commits are tried again until the deadline (etcd electing a leader, a member
        // gone); commits etcd refused because others moved first, COMMIT_ATTEMPTS times.
        let mut unanswered: Option<u64> = None;
        let give_up = Instant::now() + self.etcd.deadline();
        let mut pause = Duration::from_millis(50);
        let mut refused = 0;
        while refused < COMMIT_ATTEMPTS {
            if let Some(number) = unanswered
                && let Some(record) = self.read_record(&op, app, number).await?
                && record.save_id == save_id
            {
                let tag = options.tag.map(str::to_owned);
                return Ok(record.entry(app, tag));
            }
            let state = self.read_app(&op, app).await?;
            self.check_save(app, &state, options)?;
            let number = state.latest.unwrap_or(0) + 1;
            let (parent, diverged_from) = options.parent.lineage(state.latest);
            let record = Record {
                number,
                saved: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                size,
                sha256: sha256.clone(),
                parent,
                diverged_from,
                chunks: digests.clone(),
                save_id: save_id.clone(),
                about: options.about.cloned(),
            };
            let txn = self.commit_txn(app, &state, &record, &distinct, options);
            match self.etcd.txn_once(&op, txn).await? {
                Sent::Answered(response) if response.succeeded() => {
                    return Ok(record.entry(app, options.tag.map(str::to_owned)));
                }
                Sent::Answered(response) => {
                    if let Some(fence) = options.fence {
                        fence.check_in(&response)?;
                    }
                    refused += 1;
                    // The head moved, the tags changed, or gc took a chunk: put back what is
                    // missing and try on the new state.
                    self.upload(&op, &distinct).await?;
                }
                Sent::Unanswered(error) => {
                    unanswered = Some(number);
                    if Instant::now() + pause >= give_up {
                        // Whether it landed is still unknown: say so by the error, and a
                        // later look at the log tells.
                        return Err(error);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
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
        let expected = match options.parent {
            Parent::Expect(parent)
            | Parent::Given {
                since: parent @ Some(_),
                ..
            } => Some(parent),
            _ => None,
        };
        if let Some(parent) = expected
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
