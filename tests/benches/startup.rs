//! Launch-to-accept time: how long from starting `rtwistd -n -f echo.tap` until its port
//! accepts a connection, against a plain tokio echo server (`examples/plain_echo.rs`) started
//! the same way in the same run. Run with `bash bench/startup.sh`, which builds the release
//! binaries first. Prints a table and one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn launch_to_accept(command: &mut Command, port: u16) -> Duration {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = start + Duration::from_secs(10);
    let elapsed = loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break start.elapsed();
        }
        assert!(Instant::now() < deadline, "no accept within 10 s");
        std::thread::sleep(Duration::from_micros(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
    )
}

fn main() {
    let bins = rtwisted_tests::release_bin_dir();
    let (rtap, rtwistd, plain) = (
        bins.join("rtap"),
        bins.join("rtwistd"),
        bins.join("examples/plain_echo"),
    );
    for path in [&rtap, &rtwistd, &plain] {
        assert!(
            path.exists(),
            "{} is missing: run bash bench/startup.sh",
            path.display()
        );
    }
    let scratch = tempfile_dir();
    let mut rtwisted = Vec::new();
    let mut reference = Vec::new();
    for _ in 0..RUNS {
        let port = rtwisted_tests::free_port();
        let saved = Command::new(&rtap)
            .current_dir(&scratch)
            .args([
                "save",
                "echo",
                "--port",
                &format!("tcp:{port}:interface=127.0.0.1"),
            ])
            .output()
            .unwrap();
        assert!(saved.status.success());
        rtwisted.push(launch_to_accept(
            Command::new(&rtwistd)
                .current_dir(&scratch)
                .args(["-n", "-o", "-f", "echo.tap"]),
            port,
        ));
        let port = rtwisted_tests::free_port();
        reference.push(launch_to_accept(
            Command::new(&plain).arg(format!("127.0.0.1:{port}")),
            port,
        ));
    }
    let (r_median, r_p90) = stats(rtwisted);
    let (p_median, p_p90) = stats(reference);
    println!("launch to accept, {RUNS} runs each (ms)");
    println!("{:<32} {:>8} {:>8}", "", "median", "p90");
    println!(
        "{:<32} {r_median:>8.2} {r_p90:>8.2}",
        "rtwistd -n -f echo.tap"
    );
    println!(
        "{:<32} {p_median:>8.2} {p_p90:>8.2}",
        "plain tokio echo (reference)"
    );
    println!("ratio (rtwistd / plain): {:.2}", r_median / p_median);
    println!(
        "{{\"runs\":{RUNS},\"rtwistd_median_ms\":{r_median:.3},\"rtwistd_p90_ms\":{r_p90:.3},\"plain_median_ms\":{p_median:.3},\"plain_p90_ms\":{p_p90:.3},\"ratio\":{:.3}}}",
        r_median / p_median
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtwisted-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
