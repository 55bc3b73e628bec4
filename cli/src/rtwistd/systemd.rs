//! What rtwistd tells systemd (`Type=notify`): `READY=1`, `STATUS=` lines, `RELOADING=1`,
//! `MAINPID=` after a hot restart, and the watchdog's keep-alives.

use rtwisted_core::Application;

use super::live;

/// Half of `WATCHDOG_USEC`, when systemd set it for this process (as `sd_watchdog_enabled`
/// reads it: a `WATCHDOG_PID` that is not this process turns it off).
pub(super) fn watchdog_interval() -> Option<std::time::Duration> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| {
        std::time::Duration::from_micros(usec / 2).max(std::time::Duration::from_millis(10))
    })
}

/// `STATUS=`: services running, and the last checkpoint.
pub(super) fn notify_status(app: &Application, facts: &live::Facts) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let running = count_running(app.services());
    let checkpoint = match &facts.last_checkpoint {
        None => "no checkpoint yet".to_owned(),
        Some(record) => match &record.to {
            Some(to) => format!("last checkpoint {} {to}", record.at),
            None => format!("last checkpoint {} FAILED", record.at),
        },
    };
    let line = format!(
        "{running} service{} running; {checkpoint}",
        if running == 1 { "" } else { "s" }
    );
    notify_systemd(sd_notify::NotifyState::Status(&line));
}

fn count_running(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| {
            usize::from(child.running()) + child.service().collection().map_or(0, count_running)
        })
        .sum()
}

/// Sends `state` when systemd asked for notifications (`NOTIFY_SOCKET`).
pub(super) fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(error) = sd_notify::notify(false, &[state])
    {
        tracing::warn!("cannot notify systemd: {error}");
    }
}
