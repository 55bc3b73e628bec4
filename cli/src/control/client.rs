//! `rtap`'s side of the control socket: find a daemon's socket, send one request, read the
//! reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::protocol::{Envelope, Reply, Request, VERSION};
use crate::error::CliError;

/// Where the control socket of `target` is: a path as given (when it has a `/` or ends in
/// `.ctl`), else `NAME.ctl` in the current folder, where rtwistd puts it by default.
pub fn socket_path(target: &str) -> PathBuf {
    if target.contains('/') || target.ends_with(".ctl") {
        PathBuf::from(target)
    } else {
        PathBuf::from(format!("{target}.ctl"))
    }
}

/// Sends `request` to the daemon at `path` and returns its result, or its error as a failure.
pub fn call(path: &Path, request: Request) -> Result<Value, CliError> {
    let mut stream = UnixStream::connect(path).map_err(|error| {
        CliError::failed(format!(
            "no rtwistd answers on '{}': {} (is it running? its socket is NAME.ctl in its run folder, or give --control PATH)",
            path.display(),
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let mut line = serde_json::to_vec(&Envelope {
        v: VERSION,
        request,
    })
    .map_err(|error| CliError::failed(format!("cannot write the request: {error}")))?;
    line.push(b'\n');
    let lost = |error: std::io::Error| {
        CliError::failed(format!(
            "lost the connection to the rtwistd on '{}': {error}",
            path.display()
        ))
    };
    stream.write_all(&line).map_err(lost)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(lost)?;
    if answer.is_empty() {
        return Err(CliError::failed(format!(
            "the rtwistd on '{}' hung up without an answer",
            path.display()
        )));
    }
    let reply: Reply = serde_json::from_str(&answer).map_err(|error| {
        CliError::failed(format!(
            "the rtwistd on '{}' answered something that is not a reply: {error}",
            path.display()
        ))
    })?;
    if reply.ok {
        Ok(reply.result.unwrap_or(Value::Null))
    } else {
        Err(CliError::failed(
            reply
                .error
                .unwrap_or_else(|| "the request failed".to_owned()),
        ))
    }
}
