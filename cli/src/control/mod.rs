//! The control socket: how `rtap` sees and steers a running `rtwistd`.
//!
//! [`protocol`] is the wire format (versioned JSON lines), [`server`] the daemon's listener,
//! [`client`] what `rtap status`, `checkpoint`, `stop`, `apply` and the `--live` edits use.

pub mod client;
pub mod protocol;
pub mod server;
pub mod status;
