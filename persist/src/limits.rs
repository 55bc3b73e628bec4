//! One set of limits for saves and loads: how large a snapshot may be and how many values it
//! may hold.
//!
//! A load refuses a file past a limit before it decodes anything (a hostile file must not take
//! unbounded memory); a save checks the same limits on the encoded bytes *before it touches the
//! old file*, so nothing is ever saved that a load with the same limits would refuse, and a save
//! that is too large leaves the previous snapshot whole.
//!
//! The defaults suit trees of a few hundred thousand services and key-value tables of a few
//! hundred megabytes; both can be raised (by `--max-snapshot-bytes` / `--max-snapshot-values` on
//! `rtap` and `rtwistd`, or the environment variables [`MAX_BYTES_VARIABLE`] and
//! [`MAX_VALUES_VARIABLE`]), and every error that hits a limit says which one and how to raise
//! it. Nesting is capped at [`MAX_DEPTH`] levels, which is serde_json's own limit and cannot be
//! raised.
//!
//! ```
//! use rtwisted_persist::Limits;
//! let limits = Limits::default().with_max_bytes(1024);
//! assert!(limits.check_size(1024).is_ok());
//! let error = limits.check_size(1025).unwrap_err().to_string();
//! assert!(error.contains("RTWISTED_MAX_SNAPSHOT_BYTES"), "{error}");
//! ```

use crate::FormatError;

/// The largest snapshot by default: 512 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// The most values (numbers, strings, containers...) in one snapshot by default; 100,000
/// services take about two million.
pub const DEFAULT_MAX_VALUES: u64 = 50_000_000;
/// The deepest nesting of arrays and maps accepted (serde_json's own limit).
pub const MAX_DEPTH: usize = 128;

/// The environment variable that raises (or lowers) the size limit, in bytes.
pub const MAX_BYTES_VARIABLE: &str = "RTWISTED_MAX_SNAPSHOT_BYTES";
/// The environment variable that raises (or lowers) the value limit.
pub const MAX_VALUES_VARIABLE: &str = "RTWISTED_MAX_SNAPSHOT_VALUES";
/// The command-line option of both tools that sets the size limit.
pub const MAX_BYTES_OPTION: &str = "--max-snapshot-bytes";
/// The command-line option of both tools that sets the value limit.
pub const MAX_VALUES_OPTION: &str = "--max-snapshot-values";

/// How large a snapshot may be: checked by every load before decoding and by every save before
/// writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes a snapshot file may have (encrypted or not).
    pub max_bytes: u64,
    /// The most values a snapshot may hold, every number, string, array and map counted.
    pub max_values: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_values: DEFAULT_MAX_VALUES,
        }
    }
}

impl Limits {
    /// These limits with another size limit.
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Limits { max_bytes, ..self }
    }

    /// These limits with another value limit.
    pub fn with_max_values(self, max_values: u64) -> Self {
        Limits { max_values, ..self }
    }

    /// Checks the size of a whole snapshot.
    pub fn check_size(&self, size: u64) -> Result<(), FormatError> {
        if size > self.max_bytes {
            return Err(FormatError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Checks a count of values.
    pub fn check_values(&self, values: u64) -> Result<(), FormatError> {
        if values > self.max_values {
            return Err(FormatError::TooManyValues {
                limit: self.max_values,
            });
        }
        Ok(())
    }

    /// Checks freshly encoded snapshot bytes (plain, before any encryption) against every
    /// limit a load applies, so what passes here loads. The encoder's own output needs no
    /// checksum check: only the size and the scan of the payload a load does.
    pub fn check_encoded(&self, plain: &[u8]) -> Result<(), FormatError> {
        self.check_size(plain.len() as u64)?;
        match crate::tap::payload_range(plain) {
            Some(payload) => crate::bounds::scan_msgpack_with(&plain[payload], self),
            None => crate::bounds::scan_json_with(plain, self),
        }
    }
}
