//! # rtwisted-cli: `rtap` and `rtwistd` as library entry points
//!
//! The two tools are functions, so a binary that links its own service types and plugins gets
//! the same tools, knowing those types, in three lines:
//!
//! ```no_run
//! // src/bin/my-rtwistd.rs
//! use my_services as _; // link the crate so its types and plugins register
//! # mod my_services {}
//! fn main() -> std::process::ExitCode { rtwisted_cli::rtwistd::main() }
//! ```
//!
//! Those types are also callable from TAC files (`rtwistd -y app.tac`, module [`tac`], behind the
//! default cargo feature `tac`) by their short names, with their fields as keyword arguments.
//!
//! Exit status: 0 on success, 1 on a failure (reported as one line on stderr), 2 on a usage
//! error.

mod args;
pub mod error;
mod ids;
mod logging;
mod output;
pub mod passphrase;
pub mod plugins;
mod progress;
pub mod rtap;
pub mod rtwistd;
mod snapshots;
#[cfg(feature = "tac")]
pub mod tac;
mod tac_source;

pub use error::CliError;
