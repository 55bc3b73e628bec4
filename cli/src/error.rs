//! The error both tools report: one line on stderr, and an exit status that means something.

use std::ffi::OsString;
use std::process::ExitCode;

use rtwisted_persist::SnapshotError;
use rtwisted_persist::store::StoreError;

/// Exit status for success.
pub const EXIT_OK: u8 = 0;
/// Exit status for a failure (bad file, busy port, failed start).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error (unknown option, bad value), as clap reports them.
pub const EXIT_USAGE: u8 = 2;

/// A failure of a command, reported as `error: <message>` and exit status 1, or as clap's usage
/// text and exit status 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A snapshot could not be loaded or saved.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Failed(String),
    /// Bad command-line usage.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// A second stop signal ended a daemon's run before its stop and save finished.
    #[error("second signal: exiting at once, without a clean stop or a save")]
    Forced,
    /// Whoever read stdout closed it (`rtap inspect | head`): the command stops, and the tool
    /// exits 0 without a word, since the reader has all it wanted.
    #[error("stdout was closed")]
    StdoutClosed,
}

impl CliError {
    /// A failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }

    /// Prints the error the way the tools do and returns the exit status.
    pub fn report(&self, tool: &str) -> ExitCode {
        match self {
            CliError::Usage(error) => {
                // clap formats usage errors (and --help/--version, which exit 0) itself.
                let _ = error.print();
                ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE))
            }
            CliError::StdoutClosed => ExitCode::from(EXIT_OK),
            other => {
                let line = other.to_string().replace('\n', " ");
                eprintln!("{tool}: error: {line}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

/// The exit status of a command's result.
pub fn finish(tool: &str, result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(error) => error.report(tool),
    }
}

/// What each tool's `run` does: the preflight check, then `dispatch` on the arguments (the
/// first is the program name); the result, reported under the tool's name, is the exit status.
pub(crate) fn run_tool(
    tool: &str,
    args: impl IntoIterator<Item = impl Into<OsString>>,
    dispatch: fn(Vec<OsString>) -> Result<(), CliError>,
) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    finish(tool, crate::preflight().and_then(|()| dispatch(args)))
}
