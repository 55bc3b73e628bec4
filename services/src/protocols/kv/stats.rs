//! The statistics of a `kv` server: the counters each table shard keeps, the server-wide ones
//! (connections, bytes on the wire), and the `stats` replies built from them, with memcached's
//! names so that `memcstat` and monitoring plugins read them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters one shard keeps under its own lock; added up for `stats`.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub total_items: u64,
    pub expired_unfetched: u64,
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        let pairs: [(&mut u64, u64); 19] = [
            (&mut self.cmd_get, other.cmd_get),
            (&mut self.cmd_set, other.cmd_set),
            (&mut self.cmd_flush, other.cmd_flush),
            (&mut self.cmd_touch, other.cmd_touch),
            (&mut self.get_hits, other.get_hits),
            (&mut self.get_misses, other.get_misses),
            (&mut self.delete_hits, other.delete_hits),
            (&mut self.delete_misses, other.delete_misses),
            (&mut self.incr_hits, other.incr_hits),
            (&mut self.incr_misses, other.incr_misses),
            (&mut self.decr_hits, other.decr_hits),
            (&mut self.decr_misses, other.decr_misses),
            (&mut self.cas_hits, other.cas_hits),
            (&mut self.cas_misses, other.cas_misses),
            (&mut self.cas_badval, other.cas_badval),
            (&mut self.touch_hits, other.touch_hits),
            (&mut self.touch_misses, other.touch_misses),
            (&mut self.total_items, other.total_items),
            (&mut self.expired_unfetched, other.expired_unfetched),
        ];
        for (total, more) in pairs {
            *total = total.saturating_add(more);
        }
    }
}

/// Server-wide counters, kept outside the table (connections, bytes read and written).
#[derive(Debug)]
pub(super) struct Wire {
    pub started: Instant,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub cmd_meta: AtomicU64,
    pub verbosity: AtomicU64,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            started: Instant::now(),
            curr_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            cmd_meta: AtomicU64::new(0),
            verbosity: AtomicU64::new(0),
        }
    }
}

/// Reads an atomic counter.
pub(super) fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds to an atomic counter.
pub(super) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Lines of a `stats` reply, as (name, value) pairs.
pub(super) type Lines = Vec<(&'static str, String)>;

/// Everything the general `stats` reply shows.
pub(super) struct General<'a> {
    pub counts: &'a Counts,
    pub wire: &'a Wire,
    pub now: i64,
    pub curr_items: usize,
    pub bytes: usize,
    pub limit_maxbytes: usize,
    pub max_connections: usize,
    pub threads: usize,
    pub evictions: u64,
    pub item_size_max: usize,
}

/// The general `stats` reply, in memcached's order and with its names.
pub(super) fn general(stats: &General<'_>) -> Lines {
    let c = stats.counts;
    let w = stats.wire;
    let (user, system) = rusage();
    vec![
        ("pid", std::process::id().to_string()),
        ("uptime", w.started.elapsed().as_secs().to_string()),
        ("time", stats.now.to_string()),
        ("version", super::VERSION.to_string()),
        ("rtwisted_version", env!("CARGO_PKG_VERSION").to_string()),
        ("pointer_size", usize::BITS.to_string()),
        ("rusage_user", user),
        ("rusage_system", system),
        ("max_connections", stats.max_connections.to_string()),
        ("curr_connections", load(&w.curr_connections).to_string()),
        ("total_connections", load(&w.total_connections).to_string()),
        (
            "rejected_connections",
            load(&w.rejected_connections).to_string(),
        ),
        ("cmd_get", c.cmd_get.to_string()),
        ("cmd_set", c.cmd_set.to_string()),
        ("cmd_flush", c.cmd_flush.to_string()),
        ("cmd_touch", c.cmd_touch.to_string()),
        ("cmd_meta", load(&w.cmd_meta).to_string()),
        ("get_hits", c.get_hits.to_string()),
        ("get_misses", c.get_misses.to_string()),
        ("get_expired", "0".into()),
        ("get_flushed", "0".into()),
        ("delete_misses", c.delete_misses.to_string()),
        ("delete_hits", c.delete_hits.to_string()),
        ("incr_misses", c.incr_misses.to_string()),
        ("incr_hits", c.incr_hits.to_string()),
        ("decr_misses", c.decr_misses.to_string()),
        ("decr_hits", c.decr_hits.to_string()),
        ("cas_misses", c.cas_misses.to_string()),
        ("cas_hits", c.cas_hits.to_string()),
        ("cas_badval", c.cas_badval.to_string()),
        ("touch_hits", c.touch_hits.to_string()),
        ("touch_misses", c.touch_misses.to_string()),
        ("auth_cmds", "0".into()),
        ("auth_errors", "0".into()),
        ("bytes_read", load(&w.bytes_read).to_string()),
        ("bytes_written", load(&w.bytes_written).to_string()),
        ("limit_maxbytes", stats.limit_maxbytes.to_string()),
        ("item_size_max", stats.item_size_max.to_string()),
        ("accepting_conns", "1".into()),
        ("threads", stats.threads.to_string()),
        ("conn_yields", "0".into()),
        ("bytes", stats.bytes.to_string()),
        ("curr_items", stats.curr_items.to_string()),
        ("total_items", c.total_items.to_string()),
        ("expired_unfetched", c.expired_unfetched.to_string()),
        ("evicted_unfetched", "0".into()),
        ("evictions", stats.evictions.to_string()),
        ("reclaimed", "0".into()),
    ]
}

/// This process's user and system CPU time, as memcached prints them (`seconds.micros`).
fn rusage() -> (String, String) {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    match usage {
        Ok(usage) => {
            let show =
                |time: nix::sys::time::TimeVal| format!("{}.{:06}", time.tv_sec(), time.tv_usec());
            (show(usage.user_time()), show(usage.system_time()))
        }
        Err(_) => ("0.000000".into(), "0.000000".into()),
    }
}

/// Writes `lines` as `STAT name value` lines and the closing `END`.
pub(super) fn render(lines: &Lines) -> String {
    let mut out = String::with_capacity(lines.len() * 32);
    for (name, value) in lines {
        out.push_str("STAT ");
        out.push_str(name);
        out.push(' ');
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("END\r\n");
    out
}
