//! Applications held by a running `rtwistd`: the store's version of
//! [`HeldMark`](crate::lock::HeldMark). A daemon that runs from the store records its PID (and
//! the start time of its process, so a reused PID is not mistaken for it) under the
//! application's name; an edit of the application refuses while the record names a live
//! process. The daemon removes its record at exit; a record left by a crash names a dead process
//! and is ignored (and replaced by the next daemon).

use serde::{Deserialize, Serialize};

use super::{SledStore, StoreError, space};

/// Who holds an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The daemon's PID.
    pub pid: u32,
    /// Its process's start time, in clock ticks since boot (`/proc/PID/stat`), when known.
    #[serde(default)]
    pub started: Option<u64>,
    /// The snapshot it runs from.
    pub number: Option<u64>,
}

impl Hold {
    /// A hold by this process, running from snapshot `number`.
    pub fn by_this_process(number: Option<u64>) -> Self {
        let pid = std::process::id();
        Hold {
            pid,
            started: start_time(pid),
            number,
        }
    }

    /// True if the process it names is still the one that made it.
    pub fn is_live(&self) -> bool {
        if !std::path::Path::new("/proc/self").exists() {
            return true; // no way to tell: take it as live, never as stale
        }
        match (start_time(self.pid), self.started) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl SledStore {
    /// Records that this process runs from `app`. Refuses when a live process holds it.
    pub fn hold(&self, app: &str, number: Option<u64>) -> Result<Hold, StoreError> {
        if let Some(other) = self.holder(app)?
            && other.pid != std::process::id()
        {
            return Err(StoreError::Held {
                app: app.to_owned(),
                pid: other.pid,
            });
        }
        self.record_hold(app, number)
    }

    /// Takes over `app`'s hold from process `from` (a hot restart's predecessor): records this
    /// process instead. Refuses when another live process holds it.
    pub fn take_over_hold(
        &self,
        app: &str,
        number: Option<u64>,
        from: u32,
    ) -> Result<Hold, StoreError> {
        if let Some(other) = self.holder(app)?
            && other.pid != from
            && other.pid != std::process::id()
        {
            return Err(StoreError::Held {
                app: app.to_owned(),
                pid: other.pid,
            });
        }
        self.record_hold(app, number)
    }

    fn record_hold(&self, app: &str, number: Option<u64>) -> Result<Hold, StoreError> {
        space::ensure(self.dir(), 4096)?;
        let hold = Hold::by_this_process(number);
        let record = serde_json::to_vec(&hold).map_err(|error| StoreError::Damaged {
            dir: self.dir().to_owned(),
            detail: format!("cannot encode a hold: {error}"),
        })?;
        self.held
            .insert(app.as_bytes(), record)
            .map_err(|error| self.failed(error))?;
        self.flush()?;
        Ok(hold)
    }

    /// Removes this process's hold on `app` (another process's is left alone).
    pub fn release(&self, app: &str) -> Result<(), StoreError> {
        if self
            .holder(app)?
            .is_some_and(|hold| hold.pid == std::process::id())
        {
            self.held
                .remove(app.as_bytes())
                .map_err(|error| self.failed(error))?;
            self.flush()?;
        }
        Ok(())
    }

    /// The live hold on `app`, if there is one.
    pub fn holder(&self, app: &str) -> Result<Option<Hold>, StoreError> {
        let Some(record) = self
            .held
            .get(app.as_bytes())
            .map_err(|error| self.failed(error))?
        else {
            return Ok(None);
        };
        // A record that does not parse was not written by this code: it holds nothing.
        Ok(serde_json::from_slice::<Hold>(&record)
            .ok()
            .filter(Hold::is_live))
    }
}
