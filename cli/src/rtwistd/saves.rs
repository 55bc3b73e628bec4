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
use std::time::{Duration, Instant};

use rtwisted_core::Application;
use rtwisted_persist::lineage::Parent;
use rtwisted_persist::lock::EditLock;
use rtwisted_persist::{Key, Limits, SaveOptions};

use super::origin::Origin;
use crate::control::status::CheckpointRecord;
use crate::error::CliError;
use crate::snapshots::Access;

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
    /// as `NAME-checkpoint.tap` or the next snapshot in the store, here and now. A failure is
    /// logged in one line and remembered; the daemon goes on. Returns what happened, for
    /// `rtap status`.
    pub fn checkpoint(&mut self, app: &Application, why: &str) -> CheckpointRecord {
        let job = self.begin_checkpoint(app, why);
        self.finish_checkpoint(job.run())
    }

    /// The first half of a checkpoint, on the main loop: the tree encoded (and checked against
    /// the limits). [`SaveJob::run`] writes it, off the loop; [`Saver::finish_checkpoint`]
    /// takes the outcome.
    pub fn begin_checkpoint(&self, app: &Application, why: &str) -> SaveJob {
        SaveJob {
            why: why.to_owned(),
            at: crate::control::status::now_rfc3339(),
            began: Instant::now(),
            write: self.prepare(app, "checkpoint"),
        }
    }

    /// The last half of a checkpoint: logs the outcome, remembers it, and returns it for
    /// `rtap status`.
    pub fn finish_checkpoint(&mut self, done: SaveDone) -> CheckpointRecord {
        let SaveDone {
            why,
            at,
            began,
            outcome,
        } = done;
        let outcome = self.apply(outcome);
        let millis = began.elapsed().as_secs_f64() * 1000.0;
        let why = why.as_str();
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

    /// Remembers that a checkpoint was still being written when the daemon stopped.
    pub fn abandon_checkpoint(&mut self, why: &str) {
        let failure = format!("the last checkpoint ({why}) did not complete before the stop");
        tracing::error!("{failure}; the previous snapshot is kept whole");
        self.last_failure = Some(failure);
    }

    /// Saves `NAME-shutdown.tap` (`.tas`, `.etap`, `.etas` as the run's style and encryption
    /// say) in the current folder, or the next snapshot in the store, waiting at most
    /// `deadline` for the write (done off the main loop).
    pub async fn shutdown(
        &mut self,
        app: &Application,
        deadline: Duration,
    ) -> Result<String, CliError> {
        if matches!(self.target, Target::Files) {
            tracing::info!(
                "Saving {} application to {}...",
                app.name(),
                self.file_for(app, "shutdown").display()
            );
        }
        let job = SaveJob {
            why: "shutdown".to_owned(),
            at: crate::control::status::now_rfc3339(),
            began: Instant::now(),
            write: self.prepare(app, "shutdown"),
        };
        let outcome = match tokio::time::timeout(deadline, job.spawn()).await {
            Ok(Ok(done)) => self.apply(done.outcome),
            Ok(Err(_)) => Err(CliError::failed(
                "the shutdown save's thread ended without a word",
            )),
            Err(_) => Err(CliError::failed(format!(
                "the shutdown save did not complete within {} s",
                deadline.as_secs()
            ))),
        };
        match outcome {
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

    /// Encodes `app` for a save tagged `tag` (checkpoint, shutdown): what the write needs,
    /// owned, so it can run on another thread.
    fn prepare(&self, app: &Application, tag: &str) -> Result<Write, CliError> {
        let options = self.options();
        match &self.target {
            Target::Files => {
                let path = self.file_for(app, tag);
                // Encoded (and checked against the limits) before anything on disk changes.
                let (bytes, header) =
                    rtwisted_persist::encode_as(app, app.persistence().style, &options).map_err(
                        |cause| rtwisted_persist::SnapshotError::Encode {
                            path: path.clone(),
                            cause,
                        },
                    )?;
                Ok(Write::File {
                    path,
                    bytes,
                    checksum: header.checksum,
                    own: self.own.clone(),
                    passphrase: self.key.as_ref().map(|key| key.passphrase.clone()),
                })
            }
            Target::Store { dir, last } => {
                let (bytes, header) =
                    rtwisted_persist::encode_as(app, app.persistence().style, &options).map_err(
                        |cause| {
                            CliError::failed(format!("cannot encode '{}': {cause}", app.name()))
                        },
                    )?;
                Ok(Write::Store {
                    dir: dir.clone(),
                    app: app.name().to_owned(),
                    bytes,
                    checksum: header.checksum,
                    last: *last,
                    limits: self.limits,
                })
            }
        }
    }

    /// Takes the outcome of a write: the run's own checksums and last store number follow it.
    fn apply(&mut self, outcome: Result<Saved, CliError>) -> Result<String, CliError> {
        let result = outcome.map(|saved| {
            self.own.insert(saved.checksum);
            if let (Target::Store { last, .. }, Some(number)) = (&mut self.target, saved.number) {
                *last = Some(number);
            }
            saved.written
        });
        self.last_failure = result.as_ref().err().map(ToString::to_string);
        result
    }
}

/// A save encoded and ready to be written (see [`Saver::begin_checkpoint`]).
#[derive(Debug)]
pub struct SaveJob {
    why: String,
    at: String,
    began: Instant,
    write: Result<Write, CliError>,
}

/// A written (or failed) save, for [`Saver::finish_checkpoint`].
#[derive(Debug)]
pub struct SaveDone {
    why: String,
    at: String,
    began: Instant,
    outcome: Result<Saved, CliError>,
}

/// What a save writes, owned.
#[derive(Debug)]
enum Write {
    File {
        path: PathBuf,
        bytes: Vec<u8>,
        checksum: String,
        own: HashSet<String>,
        passphrase: Option<rtwisted_persist::Passphrase>,
    },
    Store {
        dir: PathBuf,
        app: String,
        bytes: Vec<u8>,
        checksum: String,
        last: Option<u64>,
        limits: Limits,
    },
}

/// A save that landed.
#[derive(Debug)]
struct Saved {
    /// Where it went, for the log (`to kv-checkpoint.tap (sha256:…)`, `as kv@4 in the store
    /// 'db'`).
    written: String,
    checksum: String,
    /// Its number in the store.
    number: Option<u64>,
}

impl SaveJob {
    /// What the checkpoint was for.
    pub fn why(&self) -> &str {
        &self.why
    }

    /// Writes the save (blocking: file and store I/O).
    pub fn run(self) -> SaveDone {
        let outcome = match self.write {
            Ok(write) => write.run(),
            Err(error) => Err(error),
        };
        SaveDone {
            why: self.why,
            at: self.at,
            began: self.began,
            outcome,
        }
    }

    /// Runs the save on a thread of its own (never the runtime's: a write stuck in the kernel
    /// must not hold up the daemon's exit), and resolves when it is done.
    pub fn spawn(self) -> tokio::sync::oneshot::Receiver<SaveDone> {
        let (done, receiver) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("rtwistd-save".to_owned())
            .spawn(move || {
                let _ = done.send(self.run());
            });
        if let Err(error) = spawned {
            tracing::error!("cannot start a thread for a save: {error}");
        }
        receiver
    }
}

impl Write {
    fn run(self) -> Result<Saved, CliError> {
        match self {
            Write::File {
                path,
                bytes,
                checksum,
                own,
                passphrase,
            } => {
                let _lock = EditLock::acquire(&path)?;
                let mut kept = None;
                let is_own = rtwisted_persist::peek::peek(&path, passphrase.as_ref())
                    .is_ok_and(|identity| own.contains(&identity.checksum));
                if path.exists() && !is_own {
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
                Ok(Saved {
                    written: format!("to {} ({checksum})", path.display()),
                    checksum,
                    number: None,
                })
            }
            Write::Store {
                dir,
                app,
                bytes,
                checksum,
                last,
                limits,
            } => {
                let access = Access {
                    limits,
                    ..Access::default()
                };
                let store = access.open_store(&dir, true)?;
                let entry = store.save(
                    &app,
                    &bytes,
                    &rtwisted_persist::store::SaveRequest {
                        tag: None,
                        parent: last,
                        since: last,
                        on_newer: rtwisted_persist::store::OnNewer::MarkDiverged,
                    },
                )?;
                drop(store);
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
                Ok(Saved {
                    written: format!("as {} in the store '{}'", entry.address(), dir.display()),
                    checksum,
                    number: Some(entry.number),
                })
            }
        }
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
