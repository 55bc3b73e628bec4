//! The `tap` style: a binary snapshot in MessagePack.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  89 'R' 'T' 'W' 'T' 'A' 'P' '\n'
//! 8       2     format version (big-endian)
//! 10      4     header length H (big-endian)
//! 14      8     payload length P (big-endian)
//! 22      H     header: MessagePack map (style, app, created, producer, manifest)
//! 22+H    P     payload: the application, MessagePack with named fields (struct-as-map)
//! 22+H+P  32    SHA-256 of every byte before it
//! ```
//! The lengths make truncation detectable before anything is decoded, and the trailing digest
//! covers the header as well as the payload, so no bit can change unnoticed.

use serde_json::Value;

use crate::FormatError;
use crate::header::{FORMAT_VERSION, Header, HeaderFields, digest, hex};

/// The first eight bytes of every tap file. The high first byte catches text-mode transfers.
pub const MAGIC: &[u8; 8] = b"\x89RTWTAP\n";
const PREAMBLE: usize = 22;
const DIGEST: usize = 32;

/// True if `bytes` start like a tap file (or are a truncated start of one).
pub fn looks_like_tap(bytes: &[u8]) -> bool {
    if bytes.len() >= MAGIC.len() {
        bytes.starts_with(MAGIC)
    } else {
        !bytes.is_empty() && MAGIC.starts_with(bytes)
    }
}

/// Encodes header fields and an application value; returns the bytes and the checksum text.
pub fn encode(
    fields: &HeaderFields,
    application: &Value,
) -> Result<(Vec<u8>, String), FormatError> {
    let payload =
        rmp_serde::to_vec_named(application).map_err(|error| FormatError::Encode(error.into()))?;
    seal(fields, &payload)
}

/// Frames an encoded payload with its header and checksum.
pub fn seal(fields: &HeaderFields, payload: &[u8]) -> Result<(Vec<u8>, String), FormatError> {
    let header =
        rmp_serde::to_vec_named(fields).map_err(|error| FormatError::Encode(error.into()))?;
    let header_len = u32::try_from(header.len()).map_err(|_| FormatError::HeaderTooLarge)?;
    let mut bytes = Vec::with_capacity(PREAMBLE + header.len() + payload.len() + DIGEST);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    bytes.extend_from_slice(&header_len.to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(payload);
    let sum = digest(&[&bytes]);
    bytes.extend_from_slice(&sum);
    Ok((bytes, hex("sha256:", &sum)))
}

/// [`seal`] for a payload the caller gives up: the header goes in front of it in its own
/// buffer (moved up once), so a large snapshot is never in memory twice.
pub fn seal_owned(
    fields: &HeaderFields,
    mut payload: Vec<u8>,
) -> Result<(Vec<u8>, String), FormatError> {
    let header =
        rmp_serde::to_vec_named(fields).map_err(|error| FormatError::Encode(error.into()))?;
    let header_len = u32::try_from(header.len()).map_err(|_| FormatError::HeaderTooLarge)?;
    let mut prefix = Vec::with_capacity(PREAMBLE + header.len());
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    prefix.extend_from_slice(&header_len.to_be_bytes());
    prefix.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    prefix.extend_from_slice(&header);
    payload.reserve_exact(prefix.len() + DIGEST);
    // Within the reserved capacity: the payload moves up in place.
    payload.splice(0..0, prefix);
    let sum = digest(&[&payload]);
    payload.extend_from_slice(&sum);
    Ok((payload, hex("sha256:", &sum)))
}

/// Checks magic, version, length and checksum, then decodes the header and the payload into a
/// generic value (not yet typed).
pub fn decode(bytes: &[u8]) -> Result<(Header, Value), FormatError> {
    let (header, payload) = open(bytes)?;
    Ok((header, payload_value(payload)?))
}

/// Decodes a verified payload into a generic value.
pub fn payload_value(payload: &[u8]) -> Result<Value, FormatError> {
    rmp_serde::from_slice(payload).map_err(|error| FormatError::BadPayload(error.into()))
}

/// Checks magic, version, length, checksum and the default bounds; returns the header and the
/// verified (still encoded) payload.
pub fn open(bytes: &[u8]) -> Result<(Header, &[u8]), FormatError> {
    open_with(bytes, &crate::Limits::default())
}

/// Where the payload of well-formed tap bytes lies (`None` if they are not tap bytes whose
/// lengths add up); nothing is verified.
pub fn payload_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    if bytes.len() < PREAMBLE || !bytes.starts_with(MAGIC) {
        return None;
    }
    let header_len = usize::try_from(u32::from_be_bytes(bytes[10..14].try_into().ok()?)).ok()?;
    let payload_len = usize::try_from(u64::from_be_bytes(bytes[14..22].try_into().ok()?)).ok()?;
    let start = PREAMBLE.checked_add(header_len)?;
    let end = start.checked_add(payload_len)?;
    (end.checked_add(DIGEST)? == bytes.len()).then_some(start..end)
}

/// [`open`] under `limits`.
pub fn open_with<'a>(
    bytes: &'a [u8],
    limits: &crate::Limits,
) -> Result<(Header, &'a [u8]), FormatError> {
    if !looks_like_tap(bytes) {
        return Err(FormatError::NotASnapshot);
    }
    if bytes.len() < PREAMBLE {
        return Err(FormatError::Truncated);
    }
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    if version > FORMAT_VERSION {
        return Err(FormatError::NewerFormat {
            found: version.into(),
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(FormatError::Corrupt {
            detail: "format version 0 does not exist".into(),
        });
    }
    let header_len = u64::from(u32::from_be_bytes([
        bytes[10], bytes[11], bytes[12], bytes[13],
    ]));
    let mut payload_len = [0u8; 8];
    payload_len.copy_from_slice(&bytes[14..22]);
    let payload_len = u64::from_be_bytes(payload_len);
    let expected = (PREAMBLE as u64)
        .checked_add(header_len)
        .and_then(|n| n.checked_add(payload_len))
        .and_then(|n| n.checked_add(DIGEST as u64))
        .ok_or_else(|| FormatError::Corrupt {
            detail: "impossible section lengths".into(),
        })?;
    let actual = bytes.len() as u64;
    if actual < expected {
        return Err(FormatError::Truncated);
    }
    if actual > expected {
        return Err(FormatError::Corrupt {
            detail: format!("{} unexpected bytes after the end", actual - expected),
        });
    }
    // All lengths fit in the slice now, so these conversions and slices cannot fail.
    let body_end = bytes.len() - DIGEST;
    let (body, stored) = bytes.split_at(body_end);
    let computed = digest(&[body]);
    if computed[..] != stored[..] {
        return Err(FormatError::ChecksumMismatch {
            expected: hex("sha256:", stored),
            actual: hex("sha256:", &computed),
        });
    }
    let header_end = PREAMBLE + header_len as usize;
    crate::bounds::scan_msgpack_with(&bytes[PREAMBLE..header_end], limits)?;
    crate::bounds::scan_msgpack_with(&bytes[header_end..body_end], limits)?;
    let fields: HeaderFields = rmp_serde::from_slice(&bytes[PREAMBLE..header_end])
        .map_err(|error| FormatError::BadHeader(error.into()))?;
    if fields.style != rtwisted_core::Style::Tap {
        return Err(FormatError::Corrupt {
            detail: format!("the header says style '{}' in a tap file", fields.style),
        });
    }
    Ok((
        Header {
            format_version: version,
            fields,
            checksum: hex("sha256:", stored),
        },
        &bytes[header_end..body_end],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_an_owned_payload_writes_the_same_bytes() {
        let fields = HeaderFields::new(rtwisted_core::Style::Tap, "app", Vec::new());
        let payload: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
        let borrowed = seal(&fields, &payload).unwrap();
        let owned = seal_owned(&fields, payload).unwrap();
        assert_eq!(owned, borrowed);
    }
}
