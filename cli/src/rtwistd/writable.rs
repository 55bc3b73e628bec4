//! Checks at start, not at the end: after the privilege drop, rtwistd makes sure it can create
//! and replace files where its shutdown and checkpoint snapshots go (and in the store), so a
//! daemon that could not save its state refuses to start instead of losing it at the end.

use std::path::Path;

use nix::unistd::{Uid, User};

use crate::error::CliError;

/// `nobody (uid 65534)`, or `uid 65534` for a user the system does not name.
fn who() -> String {
    let uid = Uid::effective();
    match User::from_uid(uid) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn refusal(folder: &Path, what: &str) -> CliError {
    CliError::failed(format!(
        "cannot save snapshots in '{}' as {}: {what}; let that user write there, or run with another --rundir (or --store)",
        folder.display(),
        who()
    ))
}

/// Checks that this process can create files in `folder` and rename them over `targets` (the
/// files saves will replace), the way an atomic save does.
pub fn check_folder(folder: &Path, targets: &[&Path]) -> Result<(), CliError> {
    let probe = tempfile::Builder::new()
        .prefix(".rtwistd-probe.")
        .tempfile_in(folder)
        .map_err(|error| refusal(folder, &rtwisted_persist::describe_io(&error)))?;
    let renamed = folder.join(format!(".rtwistd-probe.{}", std::process::id()));
    let kept = probe
        .persist(&renamed)
        .map_err(|error| refusal(folder, &rtwisted_persist::describe_io(&error.error)))?;
    drop(kept);
    std::fs::remove_file(&renamed)
        .map_err(|error| refusal(folder, &rtwisted_persist::describe_io(&error)))?;
    for target in targets {
        check_replaceable(folder, target)?;
    }
    Ok(())
}

/// In a sticky folder (`/tmp`), only a file's owner may replace it.
fn check_replaceable(folder: &Path, target: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(folder_meta), Ok(file_meta)) = (std::fs::metadata(folder), std::fs::metadata(target))
    else {
        return Ok(());
    };
    let sticky = folder_meta.mode() & 0o1000 != 0;
    let uid = Uid::effective().as_raw();
    if sticky && uid != 0 && file_meta.uid() != uid && folder_meta.uid() != uid {
        return Err(refusal(
            folder,
            &format!(
                "{} belongs to uid {} and the folder is sticky, so it cannot be replaced",
                target.display(),
                file_meta.uid()
            ),
        ));
    }
    Ok(())
}

/// Checks that this process can write the store at `dir`: open it (its files are opened for
/// writing) and create files in its folder.
pub fn check_store(dir: &Path, access: &crate::snapshots::Access) -> Result<(), CliError> {
    if crate::store_backend::is_remote(dir) {
        // Reachable and answering: an etcd store has no folder to check.
        return access
            .open_store(dir, false)
            .map(drop)
            .map_err(|error| refusal(dir, &error.to_string()));
    }
    if dir.exists() {
        access
            .open_store(dir, false)
            .map_err(|error| refusal(dir, &error.to_string()))?;
        check_folder(dir, &[])
    } else {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        check_folder(parent.unwrap_or(Path::new(".")), &[])
    }
}
