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
pub mod control;
mod deadline;
pub mod error;
pub mod fields;
mod ids;
mod logging;
mod output;
pub mod passphrase;
pub mod plugins;
mod progress;
pub mod rtap;
pub mod rtwistd;
mod snapshots;
pub mod store_backend;
#[cfg(feature = "tac")]
pub mod tac;
mod tac_source;

pub use error::CliError;

/// Checks what the binary links before any command runs: two types registered under one tag
/// would make snapshots ambiguous, so the tools refuse to start, naming both.
fn preflight() -> Result<(), CliError> {
    rtwisted_core::registry::check().map_err(|error| CliError::failed(error.to_string()))
}

// Every binary built on these tools reads and writes snapshots with the built-in types'
// fast path (the bytes are the same either way; see rtwisted_services::codec).
rtwisted_core::inventory::submit! {
    rtwisted_persist::codec::Registered(
        &rtwisted_persist::codec::CatalogCodec::<rtwisted_services::codec::BuiltIns>::NEW,
    )
}
