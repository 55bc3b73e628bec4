//! User and group options: a number, or a name looked up in the system's databases (as
//! Twisted's `uidFromString` / `gidFromString` do).

use nix::unistd::{Group, User};

/// Parses `--uid`: a number, or a user name.
pub fn parse_uid(text: &str) -> Result<u32, String> {
    parse_id(text, "user", |name| {
        User::from_name(name).map(|user| user.map(|user| user.uid.as_raw()))
    })
}

/// Parses `--gid`: a number, or a group name.
pub fn parse_gid(text: &str) -> Result<u32, String> {
    parse_id(text, "group", |name| {
        Group::from_name(name).map(|group| group.map(|group| group.gid.as_raw()))
    })
}

/// A number, or the id `lookup` finds for the name of a `kind` (user or group).
fn parse_id(
    text: &str,
    kind: &str,
    lookup: impl FnOnce(&str) -> nix::Result<Option<u32>>,
) -> Result<u32, String> {
    if let Ok(id) = text.parse::<u32>() {
        return Ok(id);
    }
    match lookup(text) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(format!("no {kind} named '{text}' on this system")),
        Err(error) => Err(format!("cannot look up {kind} '{text}': {error}")),
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
