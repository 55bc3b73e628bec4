//! User and group options: a number, or a name looked up in the system's databases (as
//! Twisted's `uidFromString` / `gidFromString` do).

use nix::unistd::{Group, User};

/// Parses `--uid`: a number, or a user name.
pub fn parse_uid(text: &str) -> Result<u32, String> {
    if let Ok(uid) = text.parse::<u32>() {
        return Ok(uid);
    }
    match User::from_name(text) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!("no user named '{text}' on this system")),
        Err(error) => Err(format!("cannot look up user '{text}': {error}")),
    }
}

/// Parses `--gid`: a number, or a group name.
pub fn parse_gid(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group named '{text}' on this system")),
        Err(error) => Err(format!("cannot look up group '{text}': {error}")),
    }
}

/// Parses an octal mode mask such as `022` or `0o022`.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("'{text}' is not an octal mask like 022")),
    }
}
