//! The daemon's [`Status`] in the Prometheus text exposition format (version 0.0.4), as
//! `rtwistd --metrics` serves it at `/metrics`.
//!
//! Every live counter of every service becomes `rtwisted_NAME{path="..."}`: a counter when its
//! name ends in `_total`, else a gauge. Then the daemon (`rtwisted_service_up`, `rtwisted_info`,
//! `rtwisted_live_changes_total`, the last checkpoint) and the standard process metrics
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
//! `process_start_time_seconds`).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::status::Status;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its type, help and samples (labels already rendered, value).
struct Family {
    kind: &'static str,
    help: String,
    samples: Vec<(String, f64)>,
}

/// The families in name order, so every sample of a metric is together, as the format asks.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn add(&mut self, name: &str, kind: &'static str, help: &str, labels: &str, value: f64) {
        self.0
            .entry(name.to_owned())
            .or_insert_with(|| Family {
                kind,
                help: help.to_owned(),
                samples: Vec::new(),
            })
            .samples
            .push((labels.to_owned(), value));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, value) in &family.samples {
                let _ = writeln!(out, "{name}{labels} {}", number(*value));
            }
        }
        out
    }
}

/// A sample value as the format spells it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// `{key="value",...}` with the format's escapes (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(key, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A counter's name as a metric name: `[a-zA-Z0-9_]`, anything else becomes `_`.
fn metric_name(counter: &str) -> String {
    let cleaned: String = counter
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("rtwisted_{cleaned}")
}

/// The metrics page for `status`.
pub fn render(status: &Status) -> String {
    let mut families = Families::default();
    for service in &status.services {
        let path = labels(&[("path", &service.path)]);
        let up = f64::from(u8::from(service.state == "running"));
        families.add(
            "rtwisted_service_up",
            "gauge",
            "1 while the service runs, else 0 (stopped, failed, starting, stopping).",
            &labels(&[("path", &service.path), ("type", &service.type_tag)]),
            up,
        );
        for (name, value) in &service.counters {
            let Some(value) = value.as_f64() else {
                continue;
            };
            let (kind, help) = if name.ends_with("_total") {
                ("counter", "A service's live counter (see rtap status).")
            } else {
                ("gauge", "A service's live gauge (see rtap status).")
            };
            families.add(&metric_name(name), kind, help, &path, value);
        }
    }
    let app = labels(&[
        ("app", &status.app),
        ("version", &status.process.version),
        ("source", &status.snapshot.source),
    ]);
    families.add(
        "rtwisted_info",
        "gauge",
        "Always 1: the application, the rtwistd version and the snapshot it runs from.",
        &app,
        1.0,
    );
    families.add(
        "rtwisted_live_changes_total",
        "counter",
        "Live changes (rtap apply, set --live, ...) applied since the start.",
        "",
        status.snapshot.changes as f64,
    );
    families.add(
        "rtwisted_uptime_seconds",
        "gauge",
        "Seconds since this process started.",
        "",
        status.process.uptime_seconds,
    );
    if let Some(checkpoint) = &status.last_checkpoint {
        if let Ok(at) = humantime::parse_rfc3339(&checkpoint.at)
            && let Ok(since_epoch) = at.duration_since(std::time::UNIX_EPOCH)
        {
            families.add(
                "rtwisted_last_checkpoint_timestamp_seconds",
                "gauge",
                "When the last checkpoint was taken, in seconds since the epoch.",
                "",
                since_epoch.as_secs_f64(),
            );
        }
        families.add(
            "rtwisted_last_checkpoint_duration_seconds",
            "gauge",
            "How long the last checkpoint took.",
            "",
            checkpoint.millis / 1000.0,
        );
        families.add(
            "rtwisted_last_checkpoint_success",
            "gauge",
            "1 if the last checkpoint was saved, 0 if it failed.",
            "",
            f64::from(u8::from(checkpoint.error.is_none())),
        );
    }
    process_metrics(&mut families, status);
    families.render()
}

/// The standard `process_*` metrics, from /proc/self.
fn process_metrics(families: &mut Families, status: &Status) {
    if let Some(rss) = status.process.rss_bytes {
        families.add(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            "",
            rss as f64,
        );
    }
    if let Ok(started) = humantime::parse_rfc3339(&status.process.started)
        && let Ok(since_epoch) = started.duration_since(std::time::UNIX_EPOCH)
    {
        families.add(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the epoch in seconds.",
            "",
            since_epoch.as_secs_f64(),
        );
    }
    if let Some(seconds) = cpu_seconds() {
        families.add(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            "",
            seconds,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        families.add(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            "",
            fds.count() as f64,
        );
    }
}

/// User and system CPU time of this process (fields 14 and 15 of /proc/self/stat).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((user + system) / ticks as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control::status::{ProcessStatus, ServiceStatus, SnapshotOrigin};

    fn service(path: &str, counters: serde_json::Value) -> ServiceStatus {
        ServiceStatus {
            path: path.into(),
            type_tag: "rtwisted.StreamServer".into(),
            state: "running".into(),
            since: None,
            summary: None,
            counters: counters.as_object().unwrap().clone(),
            facts: Default::default(),
            error: None,
        }
    }

    fn status(services: Vec<ServiceStatus>) -> Status {
        Status {
            app: "shop".into(),
            process: ProcessStatus {
                pid: 1,
                started: "2026-12-02T10:00:00.000Z".into(),
                uptime_seconds: 5.5,
                rss_bytes: Some(1024),
                version: "0.1.0".into(),
            },
            snapshot: SnapshotOrigin {
                source: "shop.tap".into(),
                ..Default::default()
            },
            last_checkpoint: None,
            services,
        }
    }

    #[test]
    fn every_sample_of_a_family_is_together_under_one_type_line() {
        let page = render(&status(vec![
            service(
                "web",
                serde_json::json!({"connections_total": 3, "connections_open": 1}),
            ),
            service("cache", serde_json::json!({"connections_total": 7})),
        ]));
        assert_eq!(
            page.matches("# TYPE rtwisted_connections_total counter")
                .count(),
            1
        );
        assert!(
            page.contains("# TYPE rtwisted_connections_open gauge"),
            "{page}"
        );
        let lines: Vec<&str> = page.lines().collect();
        let first = lines
            .iter()
            .position(|line| line.starts_with("rtwisted_connections_total{"))
            .unwrap();
        assert!(
            lines[first + 1].starts_with("rtwisted_connections_total{"),
            "{page}"
        );
        assert!(
            page.contains("rtwisted_connections_total{path=\"cache\"} 7\n"),
            "{page}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("path", "a\"b\\c\nd")]),
            "{path=\"a\\\"b\\\\c\\nd\"}"
        );
        assert_eq!(metric_name("kv items-bytes"), "rtwisted_kv_items_bytes");
    }

    #[test]
    fn the_process_start_is_in_seconds_since_the_epoch() {
        let page = render(&status(Vec::new()));
        assert!(
            page.contains("process_start_time_seconds 1796205600\n"),
            "{page}"
        );
        assert!(
            page.contains("rtwisted_info{app=\"shop\",version=\"0.1.0\",source=\"shop.tap\"} 1\n"),
            "{page}"
        );
    }
}
