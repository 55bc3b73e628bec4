//! The store's journal: an append-only file of JSON lines beside the snapshot files, recording
//! every change to the index (saves, tags, removals). It is the store's record of truth for
//! everything but the bytes: the sled index is rebuilt from it, and readers read it without
//! opening sled (so they need no write access and never wait for a writer).
//!
//! The first line names the format; each later line is one [`Record`]. A record is committed
//! when its line, newline included, is synced to disk; a line cut short by a crash (no newline)
//! was never committed and is ignored by readers and cut off by the next writer.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Entry;

/// The format line's name.
pub(super) const FORMAT_NAME: &str = "rtwisted-store";

/// The longest journal line read; a longer one is damage, not a record.
const MAX_LINE: usize = 1 << 20;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Record {
    /// The first line: the format and its version.
    Format {
        /// Always [`FORMAT_NAME`].
        format: String,
        /// The store format version.
        version: u32,
    },
    /// A snapshot was stored (its file written first); the entry carries its tag, if any.
    Save(Entry),
    /// A tag was put on a snapshot (taken off any other snapshot of the application first).
    Tag {
        /// The application.
        app: String,
        /// The snapshot.
        number: u64,
        /// The tag.
        tag: String,
    },
    /// The tag was taken off a snapshot.
    Untag {
        /// The application.
        app: String,
        /// The snapshot.
        number: u64,
    },
    /// Snapshots were removed by gc.
    Remove {
        /// The application.
        app: String,
        /// The snapshots removed.
        numbers: Vec<u64>,
    },
    /// The last number given out for an application (written by compaction, so numbers are
    /// never reused after the records of removed snapshots are dropped).
    Counter {
        /// The application.
        app: String,
        /// The last number given out.
        last: u64,
    },
}

/// What replaying a journal found.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// The records, in order (the format line excluded).
    pub records: Vec<Record>,
    /// The format version its first line names.
    pub version: u32,
    /// The length of the committed part: every complete line.
    pub committed: u64,
    /// Lines that did not parse, by line number (1-based), with why.
    pub bad_lines: Vec<(usize, String)>,
    /// True if the file ends with a line cut short (never committed).
    pub torn: bool,
}

/// Reads the journal at `path`.
pub(super) fn replay(path: &Path) -> io::Result<Replay> {
    let file = File::open(path)?;
    replay_from(file)
}

fn replay_from(file: File) -> io::Result<Replay> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut replay = Replay::default();
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            if read > MAX_LINE {
                replay
                    .bad_lines
                    .push((number, "the line is too long".to_owned()));
                // Skip to the end of the overlong line.
                let mut rest = Vec::new();
                reader.read_until(b'\n', &mut rest)?;
                replay.committed += (read + rest.len()) as u64;
                continue;
            }
            replay.torn = true;
            break;
        }
        replay.committed += read as u64;
        match serde_json::from_slice::<Record>(&line[..line.len() - 1]) {
            Ok(Record::Format { format, version }) if number == 1 => {
                if format != FORMAT_NAME {
                    replay
                        .bad_lines
                        .push((number, format!("the format is '{format}'")));
                }
                replay.version = version;
            }
            Ok(record) if number > 1 => replay.records.push(record),
            Ok(_) => replay
                .bad_lines
                .push((number, "the format line is misplaced".to_owned())),
            Err(error) => replay.bad_lines.push((number, error.to_string())),
        }
    }
    Ok(replay)
}

/// One JSON line for `record`, newline included.
pub(super) fn line(record: &Record) -> Vec<u8> {
    // Records are plain data: serializing them cannot fail.
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The format line of a new journal.
pub(super) fn format_line(version: u32) -> Vec<u8> {
    line(&Record::Format {
        format: FORMAT_NAME.to_owned(),
        version,
    })
}

/// Appends `records` to the journal at `path` (whose committed length is `committed`: a torn
/// tail beyond it is cut off first) and syncs it. On failure the journal is cut back to
/// `committed`, so a half-written line never lingers. Returns the new committed length.
pub(super) fn append(path: &Path, committed: u64, records: &[Record]) -> io::Result<u64> {
    let mut bytes = Vec::new();
    for record in records {
        bytes.extend_from_slice(&line(record));
    }
    let mut file = OpenOptions::new().write(true).open(path)?;
    let result = (|| {
        file.set_len(committed)?;
        file.seek(SeekFrom::Start(committed))?;
        file.write_all(&bytes)?;
        file.sync_data()
    })();
    match result {
        Ok(()) => Ok(committed + bytes.len() as u64),
        Err(error) => {
            let _ = file.set_len(committed);
            let _ = file.sync_data();
            Err(error)
        }
    }
}

/// The records that recreate `index`: a counter per application, then every snapshot (with its
/// tag). What compaction writes, and what a rebuilt journal holds.
pub(super) fn compacted(index: &super::index::Index) -> Vec<Record> {
    let mut records = Vec::new();
    for (app, state) in index.apps() {
        records.push(Record::Counter {
            app: app.clone(),
            last: state.last,
        });
        records.extend(state.entries.values().cloned().map(Record::Save));
    }
    records
}

/// The whole bytes of a journal holding `records` after its format line.
pub(super) fn render(version: u32, records: &[Record]) -> Vec<u8> {
    let mut bytes = format_line(version);
    for record in records {
        bytes.extend_from_slice(&line(record));
    }
    bytes
}
