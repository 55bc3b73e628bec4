//! Writing to stdout the way command-line tools should: a closed pipe (`rtap inspect | head`)
//! ends the program quietly with status 0 instead of a panic.

use std::io::{self, Write};

use crate::error::CliError;

/// Writes `text` to stdout. On a broken pipe the process exits 0 at once: the reader has all it
/// wanted.
pub fn print(text: impl AsRef<[u8]>) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_ref())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(CliError::failed(format!("cannot write to stdout: {error}"))),
    }
}

/// [`print`] with a newline.
pub fn println(text: impl AsRef<str>) -> Result<(), CliError> {
    print(format!("{}\n", text.as_ref()))
}
