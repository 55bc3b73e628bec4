//! Echo throughput through `rtwistd -n echo` against a plain tokio echo server
//! (`examples/plain_echo.rs`) in the same run: round trips per second and MB/s with 1, 16 and
//! 64 connections and 64 B and 4 KiB messages, and the ratio. Run with `bash bench/echo.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SECONDS_PER_CASE: f64 = 1.0;

fn wait_until_accepting(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(program: &Path, args: &[String], port: u16) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_accepting(port);
    Server(child)
}

/// Round trips per second over `connections` connections with `size`-byte messages.
fn measure(port: u16, connections: usize, size: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, trips) = (Arc::clone(&stop), Arc::clone(&trips));
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let message = vec![b'x'; size];
                let mut reply = vec![0u8; size];
                while !stop.load(Ordering::Relaxed) {
                    stream.write_all(&message).unwrap();
                    stream.read_exact(&mut reply).unwrap();
                    trips.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(SECONDS_PER_CASE));
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    for worker in workers {
        worker.join().unwrap();
    }
    trips.load(Ordering::Relaxed) as f64 / elapsed
}

fn main() {
    let bins = rtwisted_tests::release_bin_dir();
    let (rtwistd, plain) = (bins.join("rtwistd"), bins.join("examples/plain_echo"));
    for path in [&rtwistd, &plain] {
        assert!(
            path.exists(),
            "{} is missing: run bash bench/echo.sh",
            path.display()
        );
    }
    let rt_port = rtwisted_tests::free_port();
    let _rtwisted = start(
        &rtwistd,
        &[
            "-n".into(),
            "-o".into(),
            "echo".into(),
            "--port".into(),
            format!("tcp:{rt_port}:interface=127.0.0.1"),
        ],
        rt_port,
    );
    let plain_port = rtwisted_tests::free_port();
    let _plain = start(&plain, &[format!("127.0.0.1:{plain_port}")], plain_port);

    println!("echo round trips per second ({SECONDS_PER_CASE} s per case, same run)");
    println!(
        "{:>5} {:>6} {:>14} {:>10} {:>14} {:>10} {:>7}",
        "conns", "bytes", "rtwistd rt/s", "MB/s", "plain rt/s", "MB/s", "ratio"
    );
    let mut rows = Vec::new();
    for connections in [1usize, 16, 64] {
        for size in [64usize, 4096] {
            let ours = measure(rt_port, connections, size);
            let theirs = measure(plain_port, connections, size);
            let mb = |trips: f64| trips * size as f64 * 2.0 / 1e6;
            let ratio = ours / theirs;
            println!(
                "{connections:>5} {size:>6} {ours:>14.0} {:>10.1} {theirs:>14.0} {:>10.1} {ratio:>7.2}",
                mb(ours),
                mb(theirs)
            );
            rows.push(format!(
                "{{\"connections\":{connections},\"bytes\":{size},\"rtwistd_rt_per_s\":{ours:.0},\"plain_rt_per_s\":{theirs:.0},\"ratio\":{ratio:.3}}}"
            ));
        }
    }
    println!("[{}]", rows.join(","));
}
