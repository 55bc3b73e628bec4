//! A spinner on stderr for loads, saves and converts that take longer than a second. It never
//! appears when stderr is not a terminal, so scripts and logs see nothing of it.

use std::io::IsTerminal;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How long work runs before the spinner shows.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// Runs `work`; if it is still running after a second and stderr is a terminal, shows
/// `label` with a spinner and the elapsed time until it ends.
pub fn track<T>(label: &str, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let (finished, wait) = channel::<()>();
    let label = label.to_owned();
    let spinner = std::thread::spawn(move || {
        if !matches!(wait.recv_timeout(QUIET_FOR), Err(RecvTimeoutError::Timeout)) {
            return;
        }
        let bar = ProgressBar::new_spinner().with_message(label);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        let _ = wait.recv();
        bar.finish_and_clear();
    });
    let result = work();
    drop(finished);
    let _ = spinner.join();
    result
}
