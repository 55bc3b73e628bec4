//! The index in memory: every application's entries, tags and counter, as replaying the
//! journal leaves them. Readers answer from it; verify and rebuild compare against it.

use std::collections::BTreeMap;
use std::path::Path;

use super::journal::Record;
use super::{AppSummary, Entry, Selector, StoreAddress, StoreError};

/// One application's part of the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct AppIndex {
    /// Its snapshots by number.
    pub entries: BTreeMap<u64, Entry>,
    /// Its tags, each naming a snapshot.
    pub tags: BTreeMap<String, u64>,
    /// The last number given out (never decreases).
    pub last: u64,
}

/// Every application's part of the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    apps: BTreeMap<String, AppIndex>,
}

impl Index {
    /// The index `records` leave, and a line for each record that does not fit (a tag on a
    /// missing snapshot, a number given out twice).
    pub(super) fn from_records(records: Vec<Record>) -> (Self, Vec<String>) {
        let mut index = Index::default();
        let mut problems = Vec::new();
        for record in records {
            if let Err(problem) = index.apply(record) {
                problems.push(problem);
            }
        }
        (index, problems)
    }

    /// Applies one record.
    pub(super) fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Format { .. } => Ok(()),
            Record::Save(entry) => {
                let app = self.apps.entry(entry.app.clone()).or_default();
                if app.entries.contains_key(&entry.number) {
                    return Err(format!("{} is recorded twice", entry.address()));
                }
                app.last = app.last.max(entry.number);
                if let Some(tag) = &entry.tag
                    && let Some(other) = app.tags.insert(tag.clone(), entry.number)
                    && let Some(other) = app.entries.get_mut(&other)
                {
                    other.tag = None;
                }
                app.entries.insert(entry.number, entry);
                Ok(())
            }
            Record::Tag { app, number, tag } => {
                let state = self.apps.entry(app.clone()).or_default();
                if !state.entries.contains_key(&number) {
                    return Err(format!(
                        "tag '{tag}' is on {app}@{number}, which is missing"
                    ));
                }
                if let Some(other) = state.tags.remove(&tag)
                    && let Some(other) = state.entries.get_mut(&other)
                {
                    other.tag = None;
                }
                if let Some(entry) = state.entries.get_mut(&number)
                    && let Some(old) = entry.tag.replace(tag.clone())
                {
                    state.tags.remove(&old);
                }
                state.tags.insert(tag, number);
                Ok(())
            }
            Record::Untag { app, number } => {
                let state = self.apps.entry(app.clone()).or_default();
                match state.entries.get_mut(&number) {
                    Some(entry) => {
                        if let Some(tag) = entry.tag.take() {
                            state.tags.remove(&tag);
                        }
                        Ok(())
                    }
                    None => Err(format!("an untag names {app}@{number}, which is missing")),
                }
            }
            Record::Remove { app, numbers } => {
                let state = self.apps.entry(app.clone()).or_default();
                for number in numbers {
                    if let Some(entry) = state.entries.remove(&number)
                        && let Some(tag) = entry.tag
                    {
                        state.tags.remove(&tag);
                    }
                }
                if state.entries.is_empty() && state.last == 0 {
                    self.apps.remove(&app);
                }
                Ok(())
            }
            Record::Counter { app, last } => {
                let state = self.apps.entry(app).or_default();
                state.last = state.last.max(last);
                Ok(())
            }
        }
    }

    /// Every application's part, by name.
    pub(super) fn apps(&self) -> &BTreeMap<String, AppIndex> {
        &self.apps
    }

    /// Every entry of every application, by application then number.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.apps.values().flat_map(|app| app.entries.values())
    }

    /// The last number given out for `app` (0 if none).
    pub fn last_number(&self, app: &str) -> u64 {
        self.apps.get(app).map_or(0, |state| state.last)
    }

    /// The entry an address picks.
    pub fn resolve(&self, address: &StoreAddress) -> Result<Entry, StoreError> {
        let app = address.app.as_str();
        let no_app = || StoreError::NoApp {
            app: app.to_owned(),
        };
        let state = self
            .apps
            .get(app)
            .filter(|state| !state.entries.is_empty())
            .ok_or_else(no_app)?;
        let found = match &address.selector {
            Selector::Latest => state.entries.values().next_back(),
            Selector::Number(number) => state.entries.get(number),
            Selector::Tag(tag) => state.tags.get(tag).and_then(|n| state.entries.get(n)),
        };
        match found {
            Some(entry) => Ok(entry.clone()),
            None => Err(StoreError::NoSnapshot {
                address: address.to_string(),
                hint: match &address.selector {
                    Selector::Tag(_) => tags_hint(app, state),
                    _ => numbers_hint(app, state),
                },
            }),
        }
    }

    /// Every snapshot of `app`, oldest first.
    pub fn log(&self, app: &str) -> Result<Vec<Entry>, StoreError> {
        match self.apps.get(app) {
            Some(state) if !state.entries.is_empty() => {
                Ok(state.entries.values().cloned().collect())
            }
            _ => Err(StoreError::NoApp {
                app: app.to_owned(),
            }),
        }
    }

    /// Every application with a snapshot, by name.
    pub fn list(&self) -> Vec<AppSummary> {
        self.apps
            .iter()
            .filter_map(|(app, state)| {
                let latest = state.entries.values().next_back()?.clone();
                Some(AppSummary {
                    app: app.clone(),
                    count: state.entries.len(),
                    total_bytes: state.entries.values().map(|e| e.size).sum(),
                    latest,
                })
            })
            .collect()
    }

    /// Where the file of `entry` is in the store at `dir`.
    pub fn file_of(dir: &Path, entry: &Entry) -> std::path::PathBuf {
        super::files::path_for(dir, entry)
    }
}

fn numbers_hint(app: &str, state: &AppIndex) -> String {
    let numbers: Vec<u64> = state.entries.keys().copied().collect();
    super::numbers_hint(app, &numbers)
}

fn tags_hint(app: &str, state: &AppIndex) -> String {
    let tags = state
        .entries
        .values()
        .filter_map(|entry| entry.tag.as_deref());
    super::tags_hint(app, tags)
}
