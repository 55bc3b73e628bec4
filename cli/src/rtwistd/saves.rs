//! The saves of a run: checkpoints and the shutdown snapshot, to files in the run folder or to
//! the store, each recording the run's lineage as its parent.
//!
//! Nothing a user saved is lost on the way:
//! - a save checks the limits a load applies before it touches the old file, and is atomic, so
//!   a failed save leaves the previous snapshot whole; the failure is logged in one line;
//! - a `NAME-shutdown.tap` or `NAME-checkpoint.tap` about to be replaced that this run does not
//!   descend from (another run's state, or a file edited since) is kept as `NAME-shutdown.1.tap`
//!   (the last five are kept: `.1` is the newest), never destroyed;
//! - in the store, a save whose parent is no longer the application's newest snapshot is still
//!   saved, marked diverged, with a warning naming both.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rtwisted_core::Application;
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::lock::EditLock;
use rtwisted_persist::{Key, Limits, SaveOptions};

use super::origin::Origin;
use crate::control::status::CheckpointRecord;
use crate::error::CliError;
use crate::snapshots::{self, Access, StorePut};

/// How many kept copies of a replaced shutdown or checkpoint file there are at most.
pub const KEPT_COPIES: usize = 5;

/// Where the run's snapshots go.
#[derive(Debug)]
enum Target {
    /// Files in the current folder (the run folder).
    Files,
    /// The store at this folder: the run's last snapshot there, which its next save follows.
    Store { dir: PathBuf, last: Option<u64> },
}

/// The saves of one run.
#[derive(Debug)]
pub struct Saver {
    key: Option<Key>,
    limits: Limits,
    parent: Option<Parent>,
    /// Checksums of snapshots this run may replace: its own lineage and its own saves.
    own: HashSet<String>,
    target: Target,
    /// Why the last save failed, if it did.
    last_failure: Option<String>,
}

impl Saver {
    /// The saver of a run that started from `origin`, saving to `store` if given.
    pub fn new(origin: &Origin, key: Option<Key>, limits: Limits, store: Option<&Path>) -> Self {
        let parent = origin.parent();
        let own = parent
            .iter()
            .flat_map(|parent| parent.lineage().map(str::to_owned))
            .collect();
        let target = match store {
            None => Target::Files,
            Some(dir) => Target::Store {
                dir: dir.to_owned(),
                last: match origin {
                    Origin::Store { entry, .. } => Some(entry.number),
                    _ => None,
                },
            },
        };
        Saver {
            key,
            limits,
            parent,
            own,
            target,
            last_failure: None,
        }
    }

    /// Why the last save failed, if it did (a later good save clears it).
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    fn options(&self) -> SaveOptions {
        SaveOptions {
            key: self.key.clone(),
            limits: self.limits,
            parent: self.parent.clone(),
        }
    }

    /// Saves the running tree, live state included (every `running` flag false in the file),
    /// as `NAME-checkpoint.tap` or the next snapshot in the store. A failure is logged in one
    /// line and remembered; the daemon goes on. Returns what happened, for `rtap status`.
    pub fn checkpoint(&mut self, app: &Application, why: &str) -> CheckpointRecord {
        let began = Instant::now();
        let at = crate::control::status::now_rfc3339();
        let outcome = self.save(app, "checkpoint");
        let millis = began.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Ok(written) => tracing::info!(
                why,
                millis,
                to = %written,
                "Checkpoint ({why}) saved {written} in {millis:.1}ms"
            ),
            Err(error) => tracing::error!(
                why,
                "Checkpoint ({why}) failed, the previous snapshot is kept whole: {error}"
            ),
        }
        CheckpointRecord {
            at,
            millis,
            why: why.to_owned(),
            error: outcome.as_ref().err().map(ToString::to_string),
            to: outcome.ok(),
        }
    }

    /// Saves `NAME-shutdown.tap` (`.tas`, `.etap`, `.etas` as the run's style and encryption
    /// say) in the current folder, or the next snapshot in the store.
    pub fn shutdown(&mut self, app: &Application) -> Result<String, CliError> {
        if matches!(self.target, Target::Files) {
            tracing::info!(
                "Saving {} application to {}...",
                app.name(),
                self.file_for(app, "shutdown").display()
            );
        }
        match self.save(app, "shutdown") {
            Ok(written) => {
                match self.target {
                    Target::Files => tracing::info!("Saved."),
                    Target::Store { .. } => {
                        tracing::info!("Saved the {} application {written}.", app.name());
                    }
                }
                Ok(written)
            }
            Err(error) => Err(CliError::failed(format!(
                "the shutdown save failed, the previous snapshot is kept whole: {error}"
            ))),
        }
    }

    fn file_for(&self, app: &Application, tag: &str) -> PathBuf {
        PathBuf::from(rtwisted_persist::file_name(
            app.name(),
            Some(tag),
            app.persistence().style,
            self.key.is_some(),
        ))
    }

    /// One save; returns where it went, for the log (`to kv-checkpoint.tap (sha256:…)`,
    /// `as kv@4 in the store 'db'`).
    fn save(&mut self, app: &Application, tag: &str) -> Result<String, CliError> {
        let result = match &self.target {
            Target::Files => self.save_file(app, tag),
            Target::Store { dir, last } => {
                let (dir, last) = (dir.clone(), *last);
                self.save_store(app, &dir, last)
            }
        };
        self.last_failure = result.as_ref().err().map(ToString::to_string);
        result
    }

    fn save_file(&mut self, app: &Application, tag: &str) -> Result<String, CliError> {
        let path = self.file_for(app, tag);
        // Encoded (and checked against the limits) before anything on disk changes.
        let (bytes, header) =
            rtwisted_persist::encode_as(app, app.persistence().style, &self.options()).map_err(
                |cause| rtwisted_persist::SnapshotError::Encode {
                    path: path.clone(),
                    cause,
                },
            )?;
        let _lock = EditLock::acquire(&path)?;
        let mut kept = None;
        if path.exists() && !self.is_own(&path) {
            let copy = keep_copy(&path)?;
            tracing::warn!(
                "{} holds state this run does not descend from: kept as {}",
                path.display(),
                copy.display()
            );
            kept = Some(copy);
        }
        if let Err(cause) = rtwisted_persist::write_atomic(&path, &bytes) {
            // Nothing new was written: the kept file goes back to its name.
            if let Some(copy) = kept {
                let _ = std::fs::rename(&copy, &path);
            }
            return Err(rtwisted_persist::SnapshotError::Write { path, cause }.into());
        }
        self.own.insert(header.checksum.clone());
        Ok(format!("to {} ({})", path.display(), header.checksum))
    }

    /// True if the file at `path` is one this run may replace: its own save, or part of its
    /// lineage. A file that cannot be read is not.
    fn is_own(&self, path: &Path) -> bool {
        rtwisted_persist::peek::peek(path, self.key.as_ref().map(|key| &key.passphrase))
            .is_ok_and(|identity| self.own.contains(&identity.checksum))
    }

    fn save_store(
        &mut self,
        app: &Application,
        dir: &Path,
        last: Option<u64>,
    ) -> Result<String, CliError> {
        let access = Access {
            limits: self.limits,
            ..Access::default()
        };
        let put = StorePut {
            tag: None,
            parent: last,
            since: last,
            on_newer: rtwisted_persist::store::OnNewer::MarkDiverged,
        };
        let (header, entry, written) = snapshots::save_to_store(
            dir,
            app,
            app.persistence().style,
            &self.options(),
            &access,
            put,
        )?;
        if let Some(newer) = entry.diverged_from {
            tracing::warn!(
                "{} was saved from {}@{} while {}@{newer} was newer: it is kept, marked diverged, and nothing was reverted (compare them with rtap store diff {}@{newer} {})",
                entry.address(),
                entry.app,
                last.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                entry.app,
                entry.app,
                entry.address()
            );
        }
        self.own.insert(header.checksum);
        if let Target::Store { last, .. } = &mut self.target {
            *last = Some(entry.number);
        }
        Ok(format!("as {written}"))
    }
}

/// The name of kept copy `number` of `path`: `NAME-shutdown.N.tap`.
fn copy_name(path: &Path, number: usize) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extension) = name.rsplit_once('.').unwrap_or((&name, ""));
    path.with_file_name(format!("{stem}.{number}.{extension}"))
}

/// Moves `path` to `NAME.1.EXT`, shifting older copies up and dropping the one past
/// [`KEPT_COPIES`]. Returns the copy's path.
fn keep_copy(path: &Path) -> Result<PathBuf, CliError> {
    let fail = |error: std::io::Error| {
        CliError::failed(format!(
            "cannot keep a copy of {} before replacing it, so it was not replaced: {}",
            path.display(),
            rtwisted_persist::describe_io(&error)
        ))
    };
    let oldest = copy_name(path, KEPT_COPIES);
    if oldest.exists() {
        std::fs::remove_file(&oldest).map_err(fail)?;
    }
    for number in (1..KEPT_COPIES).rev() {
        let from = copy_name(path, number);
        if from.exists() {
            std::fs::rename(&from, copy_name(path, number + 1)).map_err(fail)?;
        }
    }
    let first = copy_name(path, 1);
    std::fs::rename(path, &first).map_err(fail)?;
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn copies_are_numbered_before_the_extension_and_the_last_five_kept() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("kv-shutdown.tap");
        assert_eq!(
            copy_name(&path, 3).file_name().unwrap(),
            "kv-shutdown.3.tap"
        );
        for generation in 0..7 {
            std::fs::write(&path, format!("{generation}")).unwrap();
            keep_copy(&path).unwrap();
        }
        let kept: Vec<String> = (1..=KEPT_COPIES)
            .map(|n| std::fs::read_to_string(copy_name(&path, n)).unwrap())
            .collect();
        assert_eq!(kept, ["6", "5", "4", "3", "2"]);
        assert!(!copy_name(&path, KEPT_COPIES + 1).exists());
        assert!(!path.exists());
    }
}
