//! Verify and rebuild: checking every index entry against its file, every file against its
//! checksum, and the sled index against the journal; and recreating a lost or damaged index
//! (and journal) from the snapshot files, losing no snapshot.

use std::collections::BTreeSet;
use std::path::Path;

use super::index::Index;
use super::journal::{self, Record};
use super::writer_lock::WriterLock;
use super::{
    Entry, OpenOptions, ReadStore, STORE_FORMAT_VERSION, SledStore, Store, StoreError, files,
    layout,
};

/// What [`Store::verify`](super::Store::verify) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// How many snapshots the journal names.
    pub snapshots: usize,
    /// How many snapshot files there are.
    pub files: usize,
    /// Everything wrong, one line each (empty when the store is sound).
    pub problems: Vec<String>,
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// How many snapshots the rebuilt index holds.
    pub snapshots: usize,
    /// Snapshots found only as files, now in the index (as `APP@N`).
    pub adopted: Vec<String>,
    /// What could not be kept, one line each (entries whose file is gone or damaged; files
    /// that cannot be placed, such as encrypted ones the journal did not name).
    pub dropped: Vec<String>,
}

/// Checks the files against the journal's entries (what every reader sees).
pub(super) fn verify_reader(store: &ReadStore) -> Result<Verified, StoreError> {
    check_files(store.dir(), store.index(), store.problems.clone())
}

/// [`verify_reader`], and the sled index against the journal.
pub(super) fn verify_writer(store: &SledStore) -> Result<Verified, StoreError> {
    let reader = ReadStore::open(store.dir())?;
    let mut verified = verify_reader(&reader)?;
    let journaled: Vec<&Entry> = reader.index().entries().collect();
    let indexed = store.all_entries()?;
    let journaled_set: BTreeSet<(String, u64)> = journaled
        .iter()
        .map(|entry| (entry.app.clone(), entry.number))
        .collect();
    for entry in &indexed {
        if !journaled_set.contains(&(entry.app.clone(), entry.number)) {
            verified.problems.push(format!(
                "the index holds {}, which the journal does not (run `rtap store rebuild`)",
                entry.address()
            ));
        }
    }
    let indexed_map: std::collections::BTreeMap<(String, u64), &Entry> = indexed
        .iter()
        .map(|entry| ((entry.app.clone(), entry.number), entry))
        .collect();
    for entry in journaled {
        match indexed_map.get(&(entry.app.clone(), entry.number)) {
            None => verified.problems.push(format!(
                "the index lacks {} (run `rtap store rebuild`)",
                entry.address()
            )),
            Some(indexed) if *indexed != entry => verified.problems.push(format!(
                "the index's record of {} differs from the journal's (run `rtap store rebuild`)",
                entry.address()
            )),
            Some(_) => {}
        }
    }
    Ok(verified)
}

fn check_files(
    dir: &Path,
    index: &Index,
    mut problems: Vec<String>,
) -> Result<Verified, StoreError> {
    let io_error = |cause| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    };
    let mut snapshots = 0;
    let mut referenced = BTreeSet::new();
    for entry in index.entries() {
        snapshots += 1;
        referenced.insert(entry.sha256.clone());
        let path = files::path_for(dir, entry);
        if let Err(problem) = files::read_checked(&path, entry) {
            problems.push(problem.describe(entry, &path));
        }
    }
    let found = files::list(dir).map_err(io_error)?;
    for (path, sha256) in &found {
        if !referenced.contains(sha256) {
            problems.push(format!(
                "{} is a snapshot file no entry names (gc removes it; rebuild adds it to the index)",
                path.display()
            ));
            continue;
        }
        let bytes = std::fs::read(path).map_err(io_error)?;
        if crate::header::checksum(&[&bytes]) != *sha256 {
            problems.push(format!(
                "{} does not match the checksum its name gives",
                path.display()
            ));
        }
    }
    Ok(Verified {
        snapshots,
        files: found.len(),
        problems,
    })
}

/// Recreates the index of the store at `dir` (and its journal, compacted) from the journal and
/// the snapshot files: entries whose file is gone or damaged are dropped (and named), files no
/// entry names are added as new snapshots of the application their header names.
pub fn rebuild(dir: &Path, options: &OpenOptions) -> Result<Rebuilt, StoreError> {
    let io_error = |cause| StoreError::Io {
        dir: dir.to_owned(),
        cause,
    };
    if layout::examine(dir)? != layout::Found::Files {
        // Nothing to rebuild from files: an empty folder, or a format 1 store (migrated).
        let store = SledStore::open_with(dir, options)?;
        let snapshots = store.all_entries()?.len();
        return Ok(Rebuilt {
            snapshots,
            ..Rebuilt::default()
        });
    }
    let lock = WriterLock::acquire(dir, options.busy_timeout)?;
    let path = layout::journal(dir);
    let mut rebuilt = Rebuilt::default();
    let records = match journal::replay(&path) {
        Ok(replay) => {
            for (line, why) in &replay.bad_lines {
                rebuilt.dropped.push(format!(
                    "journal line {line} does not parse ({why}): skipped"
                ));
            }
            replay.records
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(cause) => return Err(io_error(cause)),
    };
    let (index, _) = Index::from_records(records);
    let mut kept: Vec<Record> = Vec::new();
    let mut referenced = BTreeSet::new();
    let mut lasts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (app, state) in index.apps() {
        lasts.insert(app.clone(), state.last);
        for entry in state.entries.values() {
            let file = files::path_for(dir, entry);
            match files::read_checked(&file, entry) {
                Ok(_) => {
                    referenced.insert(entry.sha256.clone());
                    kept.push(Record::Save(entry.clone()));
                }
                Err(problem) => rebuilt.dropped.push(format!(
                    "{}: dropped from the index",
                    problem.describe(entry, &file)
                )),
            }
        }
    }
    let mut orphans: Vec<Orphan> = Vec::new();
    for (file, sha256) in files::list(dir).map_err(io_error)? {
        if referenced.contains(&sha256) {
            continue;
        }
        match adopt(&file, &sha256, options) {
            Ok(found) => orphans.push(found),
            Err(why) => rebuilt
                .dropped
                .push(format!("{}: {why}; left as it is", file.display())),
        }
    }
    order_orphans(&mut orphans);
    for Orphan { mut entry, .. } in orphans {
        let last = lasts.entry(entry.app.clone()).or_insert(0);
        *last += 1;
        entry.number = *last;
        referenced.insert(entry.sha256.clone());
        rebuilt.adopted.push(entry.address());
        kept.push(Record::Save(entry));
    }
    let (index, _) = Index::from_records(
        lasts
            .iter()
            .map(|(app, last)| Record::Counter {
                app: app.clone(),
                last: *last,
            })
            .chain(kept)
            .collect(),
    );
    rebuilt.snapshots = index.entries().count();
    let bytes = journal::render(STORE_FORMAT_VERSION, &journal::compacted(&index));
    super::space::ensure(dir, bytes.len() as u64)?;
    crate::write_atomic(&path, &bytes).map_err(io_error)?;
    let index_dir = layout::index(dir);
    if index_dir.exists() {
        std::fs::remove_dir_all(&index_dir).map_err(io_error)?;
    }
    drop(lock);
    // The open finds no index and builds it from the journal just written.
    drop(SledStore::open_with(dir, options)?);
    Ok(rebuilt)
}

/// A snapshot file no entry names, with what orders it among the others.
struct Orphan {
    /// When its header says it was created (RFC 3339, to the second).
    created: String,
    /// Its header's checksum, which its children's lineage names.
    checksum: String,
    /// Its ancestors' checksums, newest first, as its header records them.
    lineage: Vec<String>,
    /// The entry it gets in the index.
    entry: Entry,
}

/// Orders the orphans oldest first: by creation time, and among those made in the same second
/// (the header's resolution) a parent before its children, so the newest number goes to the
/// newest edit; files unrelated and made in the same second keep their checksum order.
fn order_orphans(orphans: &mut [Orphan]) {
    let checksums: BTreeSet<String> = orphans
        .iter()
        .map(|orphan| orphan.checksum.clone())
        .collect();
    let generation = |orphan: &Orphan| {
        orphan
            .lineage
            .iter()
            .filter(|checksum| checksums.contains(*checksum))
            .count()
    };
    orphans.sort_by_cached_key(|orphan| (orphan.created.clone(), generation(orphan)));
}

/// The entry a snapshot file no entry names gets: its application, style and times from its
/// header (the file's modification time as its save time), with what orders it.
fn adopt(file: &Path, sha256: &str, options: &OpenOptions) -> Result<Orphan, String> {
    let bytes = std::fs::read(file).map_err(|error| crate::describe_io(&error))?;
    if crate::header::checksum(&[&bytes]) != sha256 {
        return Err("it does not match the checksum its name gives".to_owned());
    }
    if crate::crypto::looks_encrypted(&bytes) {
        return Err("it is encrypted, so its application is unknown".to_owned());
    }
    let header = crate::verify(&bytes, &options.limits).map_err(|error| error.to_string())?;
    let app = header.fields.app.clone();
    let mut entry = super::sled_store::describe(&app, &bytes, &options.limits)
        .map_err(|error| error.to_string())?;
    let modified = std::fs::metadata(file)
        .and_then(|metadata| metadata.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    entry.saved = humantime::format_rfc3339_seconds(modified).to_string();
    entry.parent = header
        .fields
        .parent
        .as_ref()
        .and_then(|parent| parent.store);
    let lineage = header
        .fields
        .parent
        .as_ref()
        .map(|parent| parent.lineage().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Orphan {
        created: header.fields.created.clone(),
        checksum: header.checksum.clone(),
        lineage,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::{Entry, Orphan, order_orphans};

    fn orphan(created: &str, checksum: &str, lineage: &[&str]) -> Orphan {
        Orphan {
            created: created.to_owned(),
            checksum: checksum.to_owned(),
            lineage: lineage.iter().map(|c| (*c).to_owned()).collect(),
            entry: Entry {
                app: "kv".to_owned(),
                number: 0,
                saved: created.to_owned(),
                size: 0,
                tag: None,
                producer: "test".to_owned(),
                encrypted: false,
                style: None,
                created: Some(created.to_owned()),
                sha256: checksum.to_owned(),
                parent: None,
                diverged_from: None,
            },
        }
    }

    #[test]
    fn edits_made_in_one_second_are_numbered_parent_first_whatever_their_checksums() {
        let second = "2026-12-02T11:47:58Z";
        // Listed in checksum order, the child before its parent, the grandchild first.
        let mut orphans = vec![
            orphan(second, "a-grandchild", &["c-child", "x-gone", "b-root"]),
            orphan(second, "b-root", &[]),
            orphan(second, "c-child", &["x-gone", "b-root"]),
        ];
        order_orphans(&mut orphans);
        let order: Vec<&str> = orphans.iter().map(|o| o.checksum.as_str()).collect();
        assert_eq!(order, ["b-root", "c-child", "a-grandchild"]);
    }

    #[test]
    fn an_older_second_comes_first() {
        let mut orphans = vec![
            orphan("2026-12-02T11:48:00Z", "a", &[]),
            orphan("2026-12-02T11:47:00Z", "b", &["z-other"]),
        ];
        order_orphans(&mut orphans);
        assert_eq!(orphans[0].checksum, "b");
    }
}
