//! What a snapshot file is, read from its header alone: its application, when it was made,
//! what it was made from, and its checksum. Reading it takes a few kilobytes of memory whatever
//! the file's size (an encrypted file is decrypted as a stream), so `rtwistd` can compare its
//! shutdown and checkpoint files before it chooses one to load, and before it saves over one.
//!
//! Nothing is verified here: a full load verifies the file it chooses.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::header::{HeaderFields, ManifestEntry};
use crate::lineage::Parent;
use crate::{FormatError, Passphrase, SnapshotError, crypto, tap, tas};

/// A snapshot file's identity, from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The header fields.
    pub fields: HeaderFields,
    /// `sha256:HEX`, as the file records it.
    pub checksum: String,
    /// True if the file is passphrase-encrypted.
    pub encrypted: bool,
    /// When the file was last written, as the file system says (orders two snapshots made in
    /// the same second).
    pub modified: Option<SystemTime>,
}

impl Identity {
    /// True if this snapshot is `base`, or descends from it.
    pub fn descends_from(&self, base: &str) -> bool {
        crate::lineage::descends_from(&self.checksum, self.fields.parent.as_ref(), base)
    }
}

/// The identity of the snapshot at `path`; `passphrase` opens an encrypted one (without it an
/// encrypted file is [`FormatError::Encrypted`]).
pub fn peek(path: &Path, passphrase: Option<&Passphrase>) -> Result<Identity, SnapshotError> {
    let read_error = |cause| SnapshotError::Read {
        path: path.to_owned(),
        cause,
    };
    let invalid = |cause| SnapshotError::Invalid {
        path: path.to_owned(),
        cause,
    };
    let file = File::open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    let mut reader = BufReader::new(file);
    let mut start = Vec::with_capacity(crypto::AGE_MAGIC.len());
    (&mut reader)
        .take(crypto::AGE_MAGIC.len() as u64)
        .read_to_end(&mut start)
        .map_err(read_error)?;
    let whole = io::Cursor::new(start.clone()).chain(reader);
    let (fields, checksum, encrypted) = if crypto::looks_encrypted(&start) {
        let passphrase = passphrase.ok_or(FormatError::Encrypted).map_err(invalid)?;
        let plain = crypto::decrypt_stream(whole, passphrase).map_err(invalid)?;
        let (fields, checksum) = plain_identity(plain).map_err(invalid)?;
        (fields, checksum, true)
    } else {
        let (fields, checksum) = plain_identity(whole).map_err(invalid)?;
        (fields, checksum, false)
    };
    Ok(Identity {
        fields,
        checksum,
        encrypted,
        modified: metadata.modified().ok(),
    })
}

fn plain_identity(mut reader: impl Read) -> Result<(HeaderFields, String), FormatError> {
    let mut first = [0u8; 1];
    let eof = |error: io::Error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            FormatError::Truncated
        } else {
            FormatError::DamagedCiphertext(error)
        }
    };
    reader.read_exact(&mut first).map_err(eof)?;
    let mut reader = io::Cursor::new(first).chain(reader);
    if tap::looks_like_tap(&first) {
        tap_identity(&mut reader)
    } else if tas::looks_like_tas(&first) || first[0].is_ascii_whitespace() {
        tas_identity(reader)
    } else {
        Err(FormatError::NotASnapshot)
    }
}

fn tap_identity(reader: &mut impl Read) -> Result<(HeaderFields, String), FormatError> {
    let eof = |error: io::Error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            FormatError::Truncated
        } else {
            FormatError::DamagedCiphertext(error)
        }
    };
    let mut preamble = [0u8; 22];
    reader.read_exact(&mut preamble).map_err(eof)?;
    if !tap::looks_like_tap(&preamble) {
        return Err(FormatError::NotASnapshot);
    }
    let header_len = u32::from_be_bytes([preamble[10], preamble[11], preamble[12], preamble[13]]);
    let mut payload_len = [0u8; 8];
    payload_len.copy_from_slice(&preamble[14..22]);
    let payload_len = u64::from_be_bytes(payload_len);
    // A header is a few hundred bytes; a claim of more than a megabyte is damage.
    if header_len > 1 << 20 {
        return Err(FormatError::Corrupt {
            detail: format!("a header of {header_len} bytes"),
        });
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(eof)?;
    crate::bounds::scan_msgpack(&header)?;
    let fields: HeaderFields =
        rmp_serde::from_slice(&header).map_err(|error| FormatError::BadHeader(error.into()))?;
    let skipped = io::copy(&mut reader.take(payload_len), &mut io::sink()).map_err(eof)?;
    if skipped < payload_len {
        return Err(FormatError::Truncated);
    }
    let mut digest = [0u8; 32];
    reader.read_exact(&mut digest).map_err(eof)?;
    Ok((fields, crate::header::hex("sha256:", &digest)))
}

/// The header of a tas document; the application is skipped as it streams past.
#[derive(Deserialize)]
struct TasHead {
    style: rtwisted_core::Style,
    app: String,
    created: String,
    producer: String,
    manifest: Vec<ManifestEntry>,
    #[serde(default)]
    parent: Option<Parent>,
    checksum: String,
    #[serde(default)]
    #[allow(dead_code)]
    application: IgnoredAny,
}

fn tas_identity(reader: impl Read) -> Result<(HeaderFields, String), FormatError> {
    let head: TasHead = serde_json::from_reader(reader).map_err(|error| {
        if error.is_eof() {
            FormatError::Truncated
        } else {
            FormatError::BadJson(error)
        }
    })?;
    Ok((
        HeaderFields {
            style: head.style,
            app: head.app,
            created: head.created,
            producer: head.producer,
            manifest: head.manifest,
            parent: head.parent,
        },
        head.checksum,
    ))
}
