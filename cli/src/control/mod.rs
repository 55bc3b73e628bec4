//! The control socket: how `rtap` sees and steers a running `rtwistd`.
//!
//! [`protocol`] is the wire format (versioned JSON lines), [`server`] the daemon's listener,
//! [`client`] what `rtap status`, `checkpoint`, `stop`, `apply` and the `--live` edits use,
//! [`prometheus`] the status as `rtwistd --metrics` serves it.

pub mod client;
pub mod prometheus;
pub mod protocol;
pub mod server;
pub mod status;
