//! chroot and the privilege drop: supplementary groups, then the gid, then the uid, each
//! verified, so a daemon that says it runs as `nobody` does.

use std::ffi::CString;
use std::path::Path;

use nix::unistd::{self, Gid, Uid, User};
use rtwisted_core::ProcessSettings;

use crate::error::CliError;

/// The user and group to run as: the options win over the application's process settings; a
/// user without a group gets the user's primary group (as in twistd).
pub fn resolve(
    uid: Option<u32>,
    gid: Option<u32>,
    process: &ProcessSettings,
) -> Result<(Option<u32>, Option<u32>), CliError> {
    let uid = uid.or(process.uid);
    let gid = match gid.or(process.gid) {
        Some(gid) => Some(gid),
        None => match uid {
            Some(uid) => Some(
                User::from_uid(Uid::from_raw(uid))
                    .map_err(|error| {
                        CliError::failed(format!("cannot look up uid {uid}: {error}"))
                    })?
                    .map_or(uid, |user| user.gid.as_raw()),
            ),
            None => None,
        },
    };
    Ok((uid, gid))
}

/// chroot to `root` and move to its top.
pub fn chroot(root: &Path) -> Result<(), CliError> {
    unistd::chroot(root)
        .and_then(|()| unistd::chdir("/"))
        .map_err(|errno| {
            CliError::failed(format!(
                "cannot chroot to '{}': {errno} (chroot needs root)",
                root.display()
            ))
        })
}

/// Drops to `uid`/`gid`: supplementary groups, gid, uid, in that order, then checks that the
/// real and effective ids changed and that root cannot be regained.
pub fn drop_to(uid: Option<u32>, gid: Option<u32>) -> Result<(), CliError> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    let fail = |what: String, errno: nix::Error| {
        CliError::failed(format!("cannot {what}: {errno} (are you root?)"))
    };
    let running_as_root = Uid::effective().is_root();
    if let Some(gid) = gid {
        let gid = Gid::from_raw(gid);
        if running_as_root {
            let groups = supplementary_groups(uid, gid);
            unistd::setgroups(&groups)
                .map_err(|e| fail("set the supplementary groups".into(), e))?;
        }
        if Gid::current() != gid || Gid::effective() != gid {
            unistd::setgid(gid).map_err(|e| fail(format!("switch to gid {gid}"), e))?;
        }
    }
    if let Some(uid) = uid {
        let uid = Uid::from_raw(uid);
        if Uid::current() == uid && Uid::effective() == uid {
            tracing::warn!("asked to run as uid {uid}, which this process already is");
        } else {
            unistd::setuid(uid).map_err(|e| fail(format!("switch to uid {uid}"), e))?;
        }
    }
    verify(uid, gid)
}

fn supplementary_groups(uid: Option<u32>, gid: Gid) -> Vec<Gid> {
    let user = uid.and_then(|uid| User::from_uid(Uid::from_raw(uid)).ok().flatten());
    let mut groups = vec![gid];
    if let Some(user) = user
        && let Ok(name) = CString::new(user.name)
        && let Ok(list) = unistd::getgrouplist(&name, gid)
    {
        groups = list;
    }
    groups
}

/// Checks that the process already runs as `uid`/`gid` (a successor at a hot restart inherits
/// its predecessor's dropped privileges and cannot drop them again).
pub fn check_running_as(uid: Option<u32>, gid: Option<u32>) -> Result<(), CliError> {
    let euid = Uid::effective().as_raw();
    let egid = Gid::effective().as_raw();
    if uid.is_some_and(|uid| uid != euid) || gid.is_some_and(|gid| gid != egid) {
        return Err(CliError::failed(format!(
            "the new rtwistd runs as uid {euid} gid {egid}, not as the options ask: restart it with a stop and a start"
        )));
    }
    Ok(())
}

fn verify(uid: Option<u32>, gid: Option<u32>) -> Result<(), CliError> {
    if let Some(gid) = gid
        && (Gid::current().as_raw() != gid || Gid::effective().as_raw() != gid)
    {
        return Err(CliError::failed(format!(
            "the switch to gid {gid} did not take"
        )));
    }
    if let Some(uid) = uid {
        if Uid::current().as_raw() != uid || Uid::effective().as_raw() != uid {
            return Err(CliError::failed(format!(
                "the switch to uid {uid} did not take"
            )));
        }
        if uid != 0 && unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(CliError::failed(
                "root could be regained after the privilege drop",
            ));
        }
    }
    tracing::info!(
        "running as uid {} gid {}",
        Uid::effective().as_raw(),
        Gid::effective().as_raw()
    );
    Ok(())
}
