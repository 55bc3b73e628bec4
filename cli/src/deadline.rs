//! A deadline for a whole store command: past it, the command ends with one line and exit 1
//! instead of hanging (a store write waits for other writers up to `--wait`, and a disk that
//! stops answering would otherwise hold it forever). Ending mid-write is safe: every file is
//! written atomically and a change counts only once its journal line is synced.

use std::time::Duration;

/// How long a store command may take beyond its wait for other writers.
pub const STORE_COMMAND_GRACE: Duration = Duration::from_secs(120);

/// Ends the process with exit 1 if it is still running after `wait` plus
/// [`STORE_COMMAND_GRACE`], saying `what` did not finish.
pub fn arm(tool: &'static str, what: String, wait: Duration) {
    let limit = wait + STORE_COMMAND_GRACE;
    let armed = std::thread::Builder::new()
        .name("deadline".to_owned())
        .spawn(move || {
            std::thread::sleep(limit);
            eprintln!(
                "{tool}: error: {what} did not finish within {} s (the store did not answer); nothing more was written: run `rtap store verify`",
                limit.as_secs()
            );
            std::process::exit(1);
        });
    // Without the thread there is no deadline, and the command still runs.
    drop(armed);
}
