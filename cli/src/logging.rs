//! Log output: `tracing` events as plain lines (twistd logs to stdout when it stays in the
//! foreground). `RTWISTD_LOG` sets the filter (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sends log lines to stdout, with colour only on a terminal. Safe to call twice.
pub fn init_stdout() {
    let filter = EnvFilter::try_from_env("RTWISTD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false)
        .try_init();
}
