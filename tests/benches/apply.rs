//! A live apply that replaces one of 100 services, while clients stream through the other 99:
//! how long the apply takes, how long the replaced service is unreachable, and what the 99
//! notice (their longest round trip during the apply against the longest before it, and any
//! error). Run with `bash bench/apply.sh`; prints a table and a JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtwisted_tests::{run_ok, service_address};

const SERVICES: usize = 100;
const REPLACED: usize = 50;
const ROUNDS: usize = 5;

fn tac(replaced_factory: &str) -> String {
    let mut text = String::from("application = Application(\"bench\")\n");
    for i in 0..SERVICES {
        let factory = if i == REPLACED {
            replaced_factory
        } else {
            "Echo()"
        };
        text.push_str(&format!(
            "service(\"tcp:0:interface=127.0.0.1\", {factory}, name = \"s{i}\").setServiceParent(application)\n"
        ));
    }
    text
}

fn rtap(bins: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    run_ok(Command::new(bins.join("rtap")).args(args).current_dir(dir))
}

fn addresses(bins: &Path, dir: &Path) -> Vec<SocketAddr> {
    let output = rtap(bins, dir, &["status", "bench", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (0..SERVICES)
        .map(|i| service_address(&status, &format!("s{i}")))
        .collect()
}

/// One client per address, echoing 64 bytes in a loop; the longest round trip since the last
/// `take_max`, in microseconds, and the first error.
struct Clients {
    stop: Arc<AtomicBool>,
    max_micros: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(addresses: Vec<SocketAddr>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_micros = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = addresses
            .into_iter()
            .map(|address| {
                let (stop, max_micros, errors) = (stop.clone(), max_micros.clone(), errors.clone());
                std::thread::spawn(move || {
                    let mut stream = TcpStream::connect(address).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let message = [b'x'; 64];
                    let mut reply = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        if let Err(error) = stream
                            .write_all(&message)
                            .and_then(|()| stream.read_exact(&mut reply))
                        {
                            errors.lock().unwrap().push(format!("{address}: {error}"));
                            return;
                        }
                        let micros = began.elapsed().as_micros() as u64;
                        max_micros.fetch_max(micros, Ordering::Relaxed);
                        // A steady trickle, not a flood: the apply should be what is measured.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        Clients {
            stop,
            max_micros,
            errors,
            threads,
        }
    }

    fn take_max(&self) -> f64 {
        self.max_micros.swap(0, Ordering::Relaxed) as f64 / 1000.0
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.errors.lock().unwrap())
    }
}

/// Connects to `address` in a loop; the longest gap between two successful connects, in ms.
fn prober(address: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut last = Instant::now();
        let mut longest = 0f64;
        while !stop.load(Ordering::Relaxed) {
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                longest = longest.max(last.elapsed().as_secs_f64() * 1000.0);
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        longest
    })
}

fn main() {
    let bins = rtwisted_tests::release_bin_dir();
    assert!(
        bins.join("rtwistd").exists() && bins.join("rtap").exists(),
        "build the release binaries first: bash bench/apply.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tac"), tac("Echo()")).unwrap();
    std::fs::write(
        dir.path().join("b.tac"),
        tac("Qotd(quotes = [\"replaced\"])"),
    )
    .unwrap();
    rtap(
        &bins,
        dir.path(),
        &["save", "-y", "a.tac", "-o", "bench.tap"],
    );
    let mut daemon = Command::new(bins.join("rtwistd"))
        .args(["-n", "-f", "bench.tap", "--no-save"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("bench.ctl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "rtwistd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rows = Vec::new();
    for round in 0..ROUNDS {
        let addresses = addresses(&bins, dir.path());
        let replaced = addresses[REPLACED];
        let others: Vec<SocketAddr> = addresses
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != REPLACED)
            .map(|(_, address)| *address)
            .collect();
        let clients = Clients::start(others);
        std::thread::sleep(Duration::from_millis(300));
        clients.take_max();
        std::thread::sleep(Duration::from_millis(300));
        let quiet_max = clients.take_max();
        let stop = Arc::new(AtomicBool::new(false));
        let probe = prober(replaced, stop.clone());
        std::thread::sleep(Duration::from_millis(50));
        let file = if round % 2 == 0 { "b.tac" } else { "a.tac" };
        let began = Instant::now();
        rtap(&bins, dir.path(), &["apply", "bench", file]);
        let apply_ms = began.elapsed().as_secs_f64() * 1000.0;
        std::thread::sleep(Duration::from_millis(50));
        let during_max = clients.take_max();
        stop.store(true, Ordering::Relaxed);
        let gap_ms = probe.join().unwrap();
        let errors = clients.finish();
        rows.push((apply_ms, gap_ms, quiet_max, during_max, errors.len()));
        for error in errors.iter().take(3) {
            eprintln!("error: {error}");
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    println!(
        "{:>5} {:>10} {:>16} {:>18} {:>18} {:>7}",
        "round",
        "apply ms",
        "replaced gap ms",
        "others max rtt ms",
        "(before) max rtt ms",
        "errors"
    );
    for (i, (apply, gap, quiet, during, errors)) in rows.iter().enumerate() {
        println!("{i:>5} {apply:>10.1} {gap:>16.2} {during:>18.2} {quiet:>18.2} {errors:>7}");
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "{{\"services\":{SERVICES},\"apply_ms\":{:.2},\"replaced_gap_ms\":{:.2},\"others_max_rtt_ms\":{:.2},\"others_max_rtt_before_ms\":{:.2},\"errors\":{}}}",
        median(rows.iter().map(|r| r.0).collect()),
        median(rows.iter().map(|r| r.1).collect()),
        median(rows.iter().map(|r| r.3).collect()),
        median(rows.iter().map(|r| r.2).collect()),
        rows.iter().map(|r| r.4).sum::<usize>()
    );
}
