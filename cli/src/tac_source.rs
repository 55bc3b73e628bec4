//! Applications from TAC files, for both tools. A build without the `tac` cargo feature still
//! knows the option and says how to get it.

use std::path::Path;

use rtwisted_core::Application;

use crate::error::CliError;

/// True for the file names Twisted treats as TAC files: `.tac` and `.py`.
pub fn is_tac(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|extension| extension.to_str()),
        Some("tac" | "py")
    )
}

/// Runs the TAC file and returns the application it defines; nothing is started.
#[cfg(feature = "tac")]
pub fn evaluate(path: &Path) -> Result<Application, CliError> {
    crate::tac::evaluate(path).map_err(|error| CliError::failed(error.to_string()))
}

/// This build cannot run TAC files.
#[cfg(not(feature = "tac"))]
pub fn evaluate(path: &Path) -> Result<Application, CliError> {
    Err(CliError::failed(format!(
        "cannot run the TAC file '{}': this build leaves out TAC support; rebuild with the cargo feature `tac` (on by default)",
        path.display()
    )))
}
