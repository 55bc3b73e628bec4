//! Free space: a store write checks the file system has room for what it writes plus a margin
//! before it writes anything, so a nearly full disk refuses a save cleanly instead of failing
//! half way through (the snapshot file, the journal line and the index each need room).

use std::path::Path;

use super::StoreError;

/// The room kept free beyond what a write needs: the index's own writes (sled 0.34.7 starts a
/// new 512 KiB log segment whenever one fills) and the file system's metadata.
pub const FREE_SPACE_MARGIN: u64 = 1024 * 1024;

/// The bytes available to this user on the file system of `dir`, if the system says.
pub fn available(dir: &Path) -> Option<u64> {
    let stats = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    let (blocks, size) = (
        u64::from(stats.blocks_available()),
        u64::from(stats.fragment_size()),
    );
    Some(blocks.saturating_mul(size))
}

/// Refuses with [`StoreError::NoSpace`] when the file system of `dir` has less than `needed`
/// bytes plus [`FREE_SPACE_MARGIN`] free. A file system that does not say is not refused (the
/// write itself reports a full disk then).
pub fn ensure(dir: &Path, needed: u64) -> Result<(), StoreError> {
    let Some(free) = available(dir) else {
        return Ok(());
    };
    let wanted = needed.saturating_add(FREE_SPACE_MARGIN);
    if free < wanted {
        return Err(StoreError::NoSpace {
            dir: dir.to_owned(),
            needed: wanted,
            free,
        });
    }
    Ok(())
}
