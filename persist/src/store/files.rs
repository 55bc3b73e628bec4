//! The snapshot files: each stored snapshot's exact bytes as a complete snapshot file of its
//! own, named by the SHA-256 of its bytes (`snapshots/ab/abcd….tap`; two-hex-digit folders
//! keep any one folder small), written with [`write_atomic`](crate::write_atomic) (temporary
//! file, fsync, rename, fsync of the folder). Identical bytes share one file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Entry;

/// The folder of the snapshot files inside a store.
pub const SNAPSHOTS_FOLDER: &str = "snapshots";

/// The file extensions a snapshot file may have.
const EXTENSIONS: [&str; 4] = ["tap", "tas", "etap", "etas"];

/// The hex digits of a `sha256:HEX` checksum, if it is one.
pub(super) fn hex_of(sha256: &str) -> Option<&str> {
    let hex = sha256.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(hex)
}

/// The extension of `entry`'s file: its style's, `e`-prefixed when encrypted.
fn extension(entry: &Entry) -> String {
    let style = entry.style.map_or("tap", |style| style.extension());
    if entry.encrypted {
        format!("e{style}")
    } else {
        style.to_owned()
    }
}

/// Where the file of `entry` is in the store at `dir`.
pub(super) fn path_for(dir: &Path, entry: &Entry) -> PathBuf {
    let hex = hex_of(&entry.sha256).unwrap_or("invalid");
    dir.join(SNAPSHOTS_FOLDER)
        .join(&hex[..2.min(hex.len())])
        .join(format!("{hex}.{}", extension(entry)))
}

/// Writes `bytes` as the file of `entry`, unless a file with exactly these bytes is there
/// already. Returns whether a file was written.
pub(super) fn write(dir: &Path, entry: &Entry, bytes: &[u8]) -> io::Result<bool> {
    let path = path_for(dir, entry);
    if read_checked(&path, entry).is_ok() {
        return Ok(false);
    }
    let shard = path.parent().unwrap_or(dir);
    if !shard.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(shard)?;
        // The new folders' names are on disk before a file in them is.
        File::open(dir.join(SNAPSHOTS_FOLDER))?.sync_all()?;
        File::open(dir)?.sync_all()?;
    }
    crate::write_atomic(&path, bytes)?;
    Ok(true)
}

/// Why a snapshot file does not read back as its entry says.
#[derive(Debug)]
pub(super) enum FileProblem {
    /// The file is not there.
    Missing,
    /// It cannot be read.
    Unreadable(io::Error),
    /// Its size or SHA-256 is not the recorded one.
    Mismatch,
}

impl FileProblem {
    /// The problem in words, for `entry`'s file at `path`.
    pub(super) fn describe(&self, entry: &Entry, path: &Path) -> String {
        match self {
            FileProblem::Missing => format!(
                "the file of {} ({}) is missing",
                entry.address(),
                path.display()
            ),
            FileProblem::Unreadable(error) => format!(
                "the file of {} ({}) cannot be read: {}",
                entry.address(),
                path.display(),
                crate::describe_io(error)
            ),
            FileProblem::Mismatch => format!(
                "the file of {} ({}) does not match its recorded SHA-256",
                entry.address(),
                path.display()
            ),
        }
    }
}

/// The bytes of the file at `path`, checked against `entry`'s size and SHA-256 (never more
/// than the recorded size is read).
pub(super) fn read_checked(path: &Path, entry: &Entry) -> Result<Vec<u8>, FileProblem> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(FileProblem::Missing),
        Err(error) => return Err(FileProblem::Unreadable(error)),
    };
    let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0).min(1 << 30));
    file.take(entry.size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileProblem::Unreadable)?;
    if bytes.len() as u64 != entry.size || crate::header::checksum(&[&bytes]) != entry.sha256 {
        return Err(FileProblem::Mismatch);
    }
    Ok(bytes)
}

/// Every snapshot file in the store at `dir`: its path and the checksum its name gives
/// (`sha256:HEX`). Files of another pattern (temporary files of a save in progress) are left
/// out.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let root = dir.join(SNAPSHOTS_FOLDER);
    let shards = match fs::read_dir(&root) {
        Ok(shards) => shards,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(error),
    };
    for shard in shards {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(shard.path())? {
            let file = file?;
            let name = file.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((hex, extension)) = name.split_once('.') else {
                continue;
            };
            let sha256 = format!("sha256:{hex}");
            if EXTENSIONS.contains(&extension) && hex_of(&sha256).is_some() {
                found.push((file.path(), sha256));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Removes the files at `paths`. Their folders are not synced: a removal that a crash undoes
/// leaves only an unreferenced file, which the next gc removes. A file already gone is no
/// error.
pub(super) fn remove_all(paths: &[PathBuf]) -> io::Result<()> {
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
