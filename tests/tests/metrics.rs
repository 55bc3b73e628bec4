//! `rtwistd --metrics`: the live counters at `/metrics`, read by a Prometheus text parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use prometheus_parse::{Sample, Scrape, Value};
use rtwisted_tests::{
    DEADLINE, Scratch, eventually, exchange, exited, fails_with, read_pid, text, wait_for_log_line,
};

const APP: &str = r#"application = Application("app")
service("tcp:0:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
TimerService(0.05, LogLine(message = "tick"), name = "tick").setServiceParent(application)
"#;

/// A daemon with `--metrics` on an ephemeral port; the metrics address.
fn start(scratch: &Scratch) -> SocketAddr {
    std::fs::write(scratch.join("app.tac"), APP).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let output = scratch.rtwistd(&[
        "-f",
        "app.tap",
        "--pidfile",
        "app.pid",
        "-l",
        "app.log",
        "--metrics",
        "tcp:0:interface=127.0.0.1",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line = wait_for_log_line(&scratch.join("app.log"), "at /metrics");
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap()
}

/// `GET path`: the status line and the body.
fn get(address: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn scrape(address: SocketAddr) -> Scrape {
    let (status, body) = get(address, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

fn sample<'a>(scrape: &'a Scrape, name: &str, path: Option<&str>) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name && path.is_none_or(|path| sample.labels.get("path") == Some(path))
        })
        .unwrap_or_else(|| panic!("no {name} {path:?} in {:#?}", scrape.samples))
}

fn value(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
        ref other => panic!("{} is {other:?}", sample.metric),
    }
}

fn echo_address(scratch: &Scratch) -> SocketAddr {
    let output = scratch.rtap_ok(&["status", "app", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let echo = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["path"] == "echo")
        .unwrap();
    echo["facts"]["address"].as_str().unwrap().parse().unwrap()
}

#[test]
fn metrics_parse_and_show_the_counters_that_traffic_caused() {
    let scratch = Scratch::new();
    let metrics = start(&scratch);
    let echo = echo_address(&scratch);
    assert_eq!(exchange(echo, b"hello"), b"hello");
    assert!(eventually(|| {
        let now = scrape(metrics);
        value(sample(&now, "rtwisted_bytes_in_total", Some("echo"))) >= 5.0
            && value(sample(&now, "rtwisted_runs_total", Some("tick"))) >= 2.0
    }));
    let now = scrape(metrics);
    let connections = sample(&now, "rtwisted_connections_total", Some("echo"));
    assert!(
        matches!(connections.value, Value::Counter(total) if total >= 1.0),
        "{connections:?}"
    );
    let open = sample(&now, "rtwisted_connections_open", Some("echo"));
    assert!(matches!(open.value, Value::Gauge(_)), "{open:?}");
    assert_eq!(
        value(sample(&now, "rtwisted_service_up", Some("echo"))),
        1.0
    );
    assert!(value(sample(&now, "process_resident_memory_bytes", None)) > 1_000_000.0);
    assert!(value(sample(&now, "process_open_fds", None)) > 3.0);
    let info = sample(&now, "rtwisted_info", None);
    assert_eq!(info.labels.get("app"), Some("app"));
    assert_eq!(info.labels.get("source"), Some("app.tap"));
    // Every family is typed once.
    let (_, body) = get(metrics, "/metrics");
    assert_eq!(body.matches("# TYPE rtwisted_bytes_in_total ").count(), 1);
    assert_eq!(get(metrics, "/").0, "HTTP/1.1 404 Not Found");

    // A hot restart keeps the endpoint: the same address answers for the new process.
    let old = read_pid(&scratch.join("app.pid"));
    scratch.rtap_ok(&["restart", "app"]);
    assert!(eventually(|| exited(old)));
    let after = scrape(metrics);
    assert!(
        value(sample(&after, "rtwisted_uptime_seconds", None))
            < value(sample(&now, "rtwisted_uptime_seconds", None)) + 60.0
    );
    assert_ne!(read_pid(&scratch.join("app.pid")), old);
    let pid = read_pid(&scratch.join("app.pid"));
    scratch.rtap_ok(&["stop", "app"]);
    assert!(eventually(|| exited(pid)));
    // Gone with the daemon.
    assert!(TcpStream::connect(metrics).is_err());
}

#[test]
fn a_metrics_endpoint_that_is_not_one_is_a_usage_error() {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("app.tac"), APP).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let output = scratch.rtwistd(&["-n", "-f", "app.tap", "--metrics", "carrier-pigeon:7"]);
    let error = fails_with(
        &output,
        2,
        "--metrics 'carrier-pigeon:7' is not an endpoint",
    );
    assert!(
        error.contains("unknown endpoint type 'carrier-pigeon'"),
        "{error}"
    );
    // Refused before anything started: nothing listened, nothing was saved.
    assert!(text(&output.stdout).is_empty(), "{}", text(&output.stdout));
    assert!(!scratch.join("app-shutdown.tap").exists());
}
