//! Hot restarts under load, against the cold restart they replace (`rtap stop` and a new
//! `rtwistd`): echo clients connecting anew for every request and a kv writer run while
//! `rtap restart` is repeated; then one restart of a kv holding 100,000 items, and the same
//! daemon stopped and started. Prints a table and a JSON line. Run with `bash bench/restart.sh`
//! (`RESTARTS=N` to change the 100 restarts).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rtwisted_tests::load::{Load, missing_keys};
use rtwisted_tests::{exited, run_ok, service_address};

/// The application, on fixed ports so the cold restart comes back on the same ones.
fn app() -> String {
    let [echo, kv] = [(); 2].map(|()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    });
    format!(
        r#"application = Application("bench")
service("tcp:{echo}:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
service("tcp:{kv}:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
"#
    )
}
const ECHO_CLIENTS: usize = 4;

struct Bench {
    bins: PathBuf,
    dir: tempfile::TempDir,
}

impl Bench {
    fn rtap(&self, args: &[&str]) -> String {
        let mut command = Command::new(self.bins.join("rtap"));
        let output = run_ok(command.args(args).current_dir(self.dir.path()));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn start(&self, file: &str) {
        let mut command = Command::new(self.bins.join("rtwistd"));
        command
            .args(["-f", file, "--pidfile", "bench.pid", "-l", "bench.log"])
            .current_dir(self.dir.path());
        run_ok(&mut command);
    }

    fn pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.dir.path().join("bench.pid")).unwrap();
        text.trim().parse().unwrap()
    }

    fn address(&self, name: &str) -> SocketAddr {
        let status: serde_json::Value =
            serde_json::from_str(&self.rtap(&["status", "bench", "--json"])).unwrap();
        service_address(&status, name)
    }
}

fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Restarts: `(rtap restart wall ms, reported hand-over ms, writes paused ms)`.
fn restart(bench: &Bench) -> (f64, f64, f64) {
    let old = bench.pid();
    let began = Instant::now();
    let line = bench.rtap(&["restart", "bench"]);
    let wall = began.elapsed().as_secs_f64() * 1000.0;
    wait_for(|| exited(old), "the old rtwistd's exit");
    let number = |after: &str| -> f64 {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (wall, number("hand-over "), number("paused "))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The longest time `address` refused connections while `action` ran, in ms.
fn refusal_gap(address: SocketAddr, action: impl FnOnce()) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let prober = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let mut longest = 0f64;
            let mut refused_since: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                match TcpStream::connect(address) {
                    Ok(_) => {
                        if let Some(since) = refused_since.take() {
                            longest = longest.max(since.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    Err(_) => {
                        refused_since.get_or_insert_with(Instant::now);
                    }
                }
            }
            longest
        }
    });
    action();
    wait_for(
        || TcpStream::connect(address).is_ok(),
        "the server's return",
    );
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap()
}

fn preload(address: SocketAddr, items: u64) {
    let mut reader = BufReader::new(TcpStream::connect(address).unwrap());
    let value = "x".repeat(100);
    let mut line = String::new();
    for chunk in (0..items).collect::<Vec<_>>().chunks(1000) {
        let mut batch = String::new();
        for n in chunk {
            batch.push_str(&format!("set item{n} 0 0 {}\r\n{value}\r\n", value.len()));
        }
        reader.get_mut().write_all(batch.as_bytes()).unwrap();
        for _ in chunk {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "STORED\r\n");
        }
    }
}

fn main() {
    let bins = rtwisted_tests::release_bin_dir();
    assert!(
        bins.join("rtwistd").exists() && bins.join("rtap").exists(),
        "build the release binaries first: bash bench/restart.sh"
    );
    let restarts: usize = std::env::var("RESTARTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100);
    let bench = Bench {
        bins,
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(bench.dir.path().join("bench.tac"), app()).unwrap();
    bench.rtap(&["save", "-y", "bench.tac", "-o", "bench.tap"]);
    bench.start("bench.tap");
    wait_for(
        || std::os::unix::net::UnixStream::connect(bench.dir.path().join("bench.ctl")).is_ok(),
        "rtwistd's start",
    );
    let (echo, kv) = (bench.address("echo"), bench.address("kv"));

    // 1. Restarts under load.
    let load = Load::start(echo, ECHO_CLIENTS, kv);
    std::thread::sleep(Duration::from_millis(500));
    let mut rows = Vec::new();
    for _ in 0..restarts {
        rows.push(restart(&bench));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let seen = load.finish();
    let written = seen.acknowledged.load(Ordering::Relaxed);
    let kept = written - missing_keys(kv, "k", written).len() as u64;
    let mut latencies = std::mem::take(&mut *seen.latencies.lock().unwrap());
    latencies.sort_unstable();

    // 2. 100,000 kv items: a hot restart against a stop and a start.
    preload(kv, 100_000);
    let mut hot = (0.0, 0.0, 0.0);
    let hot_gap = refusal_gap(kv, || hot = restart(&bench));
    let cold_began = Instant::now();
    let cold_gap = refusal_gap(kv, || {
        let old = bench.pid();
        bench.rtap(&["stop", "bench"]);
        wait_for(|| exited(old), "the stop");
        bench.start("bench-shutdown.tap");
    });
    let cold_ms = cold_began.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(bench.address("kv"), kv, "the cold start took the same port");
    let kept_items = 100_000 - missing_keys(kv, "item", 100_000).len() as u64;
    let old = bench.pid();
    bench.rtap(&["stop", "bench"]);
    wait_for(|| exited(old), "the last stop");

    let walls: Vec<f64> = rows.iter().map(|row| row.0).collect();
    let handovers: Vec<f64> = rows.iter().map(|row| row.1).collect();
    let paused: Vec<f64> = rows.iter().map(|row| row.2).collect();
    let longest_pause = paused.iter().copied().fold(0f64, f64::max);
    let refused = seen.refused.load(Ordering::Relaxed);
    let failed = seen.failed.load(Ordering::Relaxed);
    let requests = seen.echoed.load(Ordering::Relaxed);
    println!(
        "{restarts} hot restarts under load ({ECHO_CLIENTS} echo clients connecting per request, 1 kv writer):"
    );
    println!(
        "  rtap restart, median wall time    {:>8.1} ms",
        median(walls)
    );
    println!(
        "  hand-over (median, as reported)   {:>8.1} ms",
        median(handovers)
    );
    println!(
        "  writes paused: median / longest   {:>8.1} / {longest_pause:.1} ms",
        median(paused.clone())
    );
    println!("  echo requests / refused / failed  {requests:>8} / {refused} / {failed}");
    println!(
        "  echo latency p50 / p99 / max      {:>8.2} / {:.2} / {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "  kv writes acknowledged / kept     {written:>8} / {kept}  (retried after a cut: {})",
        seen.retried.load(Ordering::Relaxed)
    );
    println!("kv with 100,000 items:");
    println!(
        "  hot restart: hand-over {:.1} ms, writes paused {:.1} ms, port refused for {hot_gap:.2} ms",
        hot.1, hot.2
    );
    println!(
        "  stop + start (reference): {cold_ms:.1} ms, port refused for {cold_gap:.2} ms; items kept {kept_items}"
    );
    println!(
        "{{\"restarts\":{restarts},\"handover_ms\":{:.2},\"paused_ms_longest\":{longest_pause:.2},\"refused\":{refused},\"failed\":{failed},\"requests\":{requests},\"p99_ms\":{:.2},\"acknowledged\":{written},\"kept\":{kept},\"kv100k_handover_ms\":{:.2},\"kv100k_paused_ms\":{:.2},\"kv100k_hot_refused_ms\":{hot_gap:.2},\"kv100k_cold_ms\":{cold_ms:.2},\"kv100k_cold_refused_ms\":{cold_gap:.2}}}",
        median(rows.iter().map(|row| row.1).collect()),
        percentile(&latencies, 0.99),
        hot.1,
        hot.2
    );
}
