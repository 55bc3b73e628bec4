//! The running daemon, seen and steered through its control socket: `rtap status`, `apply`,
//! `set --live`, `stop`, `checkpoint`, `inspect --live`, and a socket that refuses strangers and
//! survives garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rtwisted_tests::{
    DEADLINE, Daemon, NotifySocket, Scratch, eventually, exchange, fails_with, free_port,
    service_address, service_status, text,
};
use serde_json::Value;

/// Saves `tac` as `app.tap` and runs it in the foreground; returns once its socket answers.
fn start(scratch: &Scratch, tac: &str) -> Daemon {
    std::fs::write(scratch.join("app.tac"), tac).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "app.tap"]);
    daemon.wait_for_line("waiting for SIGTERM");
    daemon
}

fn status(scratch: &Scratch) -> Value {
    let output = scratch.rtap_ok(&["status", "app", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn counter(status: &Value, path: &str, name: &str) -> u64 {
    service_status(status, path)["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn memcache(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    // A retrieval ends with END; anything else is one line.
    let done = |reply: &[u8]| {
        reply.ends_with(b"END\r\n") || (!reply.starts_with(b"VALUE") && reply.ends_with(b"\r\n"))
    };
    while !done(&reply) {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    text(&reply)
}

#[test]
fn status_shows_the_counters_that_client_traffic_caused() {
    let scratch = Scratch::new();
    let echo_port = free_port();
    let tac = format!(
        r#"application = Application("app")
service("tcp:{echo_port}:interface=127.0.0.1", Echo(), name = "echo").setServiceParent(application)
service("tcp:0:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
service("tcp:0:interface=127.0.0.1", PortForward(dest = "tcp:host=127.0.0.1:port={echo_port}"), name = "relay").setServiceParent(application)
TimerService(0.05, LogLine(message = "tick"), name = "tick").setServiceParent(application)
"#
    );
    let daemon = start(&scratch, &tac);
    let before = status(&scratch);
    assert_eq!(
        exchange(service_address(&before, "echo"), b"hello"),
        b"hello"
    );
    assert_eq!(
        exchange(service_address(&before, "relay"), b"through"),
        b"through"
    );
    let stored = memcache(service_address(&before, "kv"), b"set k 0 0 1\r\nv\r\n");
    assert_eq!(stored, "STORED\r\n");
    assert!(eventually(|| {
        let now = status(&scratch);
        counter(&now, "echo", "bytes_in_total") >= 12
            && counter(&now, "relay", "bytes_in_total") >= 7
            && counter(&now, "kv", "connections_total") >= 1
            && counter(&now, "tick", "runs_total") >= 2
    }));
    let now = status(&scratch);
    // The echo server saw its own client and the relay's connection.
    assert!(counter(&now, "echo", "connections_total") >= 2, "{now:#}");
    assert_eq!(counter(&now, "echo", "connections_open"), 0);
    assert_eq!(counter(&now, "relay", "bytes_out_total"), 7);
    assert_eq!(service_status(&now, "kv")["state"], "running");
    assert_eq!(now["process"]["pid"], daemon.pid());
    assert_eq!(now["snapshot"]["source"], "app.tap");
    let text_status = text(&scratch.rtap_ok(&["status", "app"]).stdout);
    assert!(text_status.contains("echo"), "{text_status}");
    assert!(text_status.contains("connections 0 open"), "{text_status}");
    assert!(text_status.contains("runs "), "{text_status}");
    stop(&scratch, daemon);
}

fn stop(scratch: &Scratch, daemon: Daemon) {
    let output = scratch.rtap_ok(&["stop", "app"]);
    assert!(
        text(&output.stdout).contains("app-shutdown.tap"),
        "{}",
        text(&output.stdout)
    );
    let (status, _, _) = daemon.wait_exit();
    assert!(status.success(), "{status}");
}

/// A client that echoes messages over one connection until told to stop, counting failures.
struct Streamer {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<String>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Streamer {
    fn start(address: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let failure = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, rounds, failure) = (stop.clone(), rounds.clone(), failure.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).unwrap();
                stream.set_read_timeout(Some(DEADLINE)).unwrap();
                let mut echoed = [0u8; 8];
                while !stop.load(Ordering::SeqCst) {
                    let result = stream
                        .write_all(b"ping1234")
                        .and_then(|()| stream.read_exact(&mut echoed));
                    match result {
                        Ok(()) if &echoed == b"ping1234" => {
                            rounds.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(()) => *failure.lock().unwrap() = Some("wrong bytes".into()),
                        Err(error) => {
                            *failure.lock().unwrap() = Some(error.to_string());
                            return;
                        }
                    }
                }
            })
        };
        Streamer {
            stop,
            rounds,
            failure,
            thread,
        }
    }

    /// Stops it; returns how many round trips it made, failing the test if one failed.
    fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        if let Some(failure) = self.failure.lock().unwrap().take() {
            panic!("the untouched service's client failed: {failure}");
        }
        self.rounds.load(Ordering::SeqCst)
    }
}

/// An application of two echoes, `keep` and `change`, on those loopback ports.
fn two_echoes(keep: u16, change: u16) -> String {
    format!(
        r#"application = Application("app")
service("tcp:{keep}:interface=127.0.0.1", Echo(), name = "keep").setServiceParent(application)
service("tcp:{change}:interface=127.0.0.1", Echo(), name = "change").setServiceParent(application)
"#
    )
}

#[test]
fn an_apply_adds_changes_and_leaves_the_rest_streaming_untouched() {
    let scratch = Scratch::new();
    let (keep, change, changed, added) = (free_port(), free_port(), free_port(), free_port());
    let daemon = start(&scratch, &two_echoes(keep, change));
    let streamer = Streamer::start(format!("127.0.0.1:{keep}").parse().unwrap());
    assert!(eventually(|| streamer.rounds.load(Ordering::SeqCst) > 10));
    let qotd = format!(
        r#"service("tcp:{added}:interface=127.0.0.1", Qotd(quotes = ["new"]), name = "added").setServiceParent(application)
"#
    );
    std::fs::write(scratch.join("new.tac"), two_echoes(keep, changed) + &qotd).unwrap();
    let output = scratch.rtap_ok(&["apply", "app", "new.tac"]);
    let said = text(&output.stdout);
    assert!(said.contains("added added"), "{said}");
    assert!(said.contains("replaced change"), "{said}");
    assert!(said.contains("1 untouched"), "{said}");
    let before = streamer.rounds.load(Ordering::SeqCst);
    assert!(eventually(
        || streamer.rounds.load(Ordering::SeqCst) > before + 10
    ));
    assert!(streamer.finish() > 20);
    // The untouched service kept its one connection: it never saw a second.
    let now = status(&scratch);
    assert_eq!(counter(&now, "keep", "connections_total"), 1, "{now:#}");
    assert_eq!(
        exchange(format!("127.0.0.1:{changed}").parse().unwrap(), b"x"),
        b"x"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", change)).is_err(),
        "the old port is closed"
    );
    let quote = exchange(format!("127.0.0.1:{added}").parse().unwrap(), b"");
    assert!(text(&quote).contains("new"), "{}", text(&quote));
    // The applied tree is what the shutdown save writes.
    stop(&scratch, daemon);
    let saved = scratch.inspect_json("app-shutdown.tap");
    let names: Vec<_> = saved["services"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["keep", "change", "added"]);
}

#[test]
fn a_failing_apply_rolls_back_and_the_old_services_still_answer() {
    let scratch = Scratch::new();
    let (keep, change, moved) = (free_port(), free_port(), free_port());
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let daemon = start(&scratch, &two_echoes(keep, change));
    let blocked = format!(
        r#"service("tcp:{busy_port}:interface=127.0.0.1", Echo(), name = "blocked").setServiceParent(application)
"#
    );
    std::fs::write(scratch.join("new.tac"), two_echoes(keep, moved) + &blocked).unwrap();
    let output = scratch.rtap(&["apply", "app", "new.tac"]);
    let error = fails_with(&output, 1, "cannot add 'blocked'");
    assert!(error.contains("the running tree is as it was"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    for port in [keep, change] {
        assert_eq!(
            exchange(format!("127.0.0.1:{port}").parse().unwrap(), b"still"),
            b"still"
        );
    }
    assert!(TcpStream::connect(("127.0.0.1", moved)).is_err());
    let now = status(&scratch);
    let paths: Vec<_> = now["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["/", "keep", "change"]);
    drop(busy);
    stop(&scratch, daemon);
}

#[test]
fn a_live_set_on_kv_keeps_every_key() {
    let scratch = Scratch::new();
    let daemon = start(
        &scratch,
        r#"application = Application("app")
service("tcp:0:interface=127.0.0.1", Kv(), name = "kv").setServiceParent(application)
"#,
    );
    let kv = service_address(&status(&scratch), "kv");
    for i in 0..100 {
        let reply = memcache(kv, format!("set key{i} 0 0 3\r\nv{i:02}\r\n").as_bytes());
        assert_eq!(reply, "STORED\r\n");
    }
    let output = scratch.rtap_ok(&["set", "--live", "app", "kv", "factory.max_value_bytes=4096"]);
    let said = text(&output.stdout);
    assert!(
        said.contains("factory.max_value_bytes: 1048576 -> 4096"),
        "{said}"
    );
    let kv = service_address(&status(&scratch), "kv");
    for i in 0..100 {
        let reply = memcache(kv, format!("get key{i}\r\n").as_bytes());
        assert_eq!(reply, format!("VALUE key{i} 0 3\r\nv{i:02}\r\nEND\r\n"));
    }
    // The new limit holds.
    let big = "x".repeat(5000);
    let reply = memcache(kv, format!("set big 0 0 5000\r\n{big}\r\n").as_bytes());
    assert!(reply.starts_with("SERVER_ERROR"), "{reply}");
    // A field that does not exist is refused before anything stops.
    let output = scratch.rtap(&["set", "--live", "app", "kv", "factory.nope=1"]);
    fails_with(&output, 1, "no field 'factory.nope'");
    stop(&scratch, daemon);
}

#[test]
fn checkpoint_and_inspect_live_show_the_running_tree_and_stop_says_where_it_saved() {
    let scratch = Scratch::new();
    let daemon = start(&scratch, &two_echoes(free_port(), free_port()));
    let output = scratch.rtap_ok(&["inspect", "--live", "app"]);
    let shown = text(&output.stdout);
    assert!(shown.contains("── keep"), "{shown}");
    assert!(shown.contains("(live)"), "{shown}");
    assert!(
        !scratch.join("app-checkpoint.tap").exists(),
        "inspect writes nothing"
    );
    let output = scratch.rtap_ok(&["checkpoint", "app"]);
    assert!(
        text(&output.stdout).starts_with("checkpoint saved to app-checkpoint.tap"),
        "{}",
        text(&output.stdout)
    );
    assert!(scratch.join("app-checkpoint.tap").exists());
    let now = status(&scratch);
    assert_eq!(now["last_checkpoint"]["why"], "rtap checkpoint");
    stop(&scratch, daemon);
    assert!(
        !scratch.join("app.ctl").exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn a_daemon_that_is_not_there_is_one_clear_line() {
    let scratch = Scratch::new();
    let output = scratch.rtap(&["status", "nothing"]);
    let error = fails_with(&output, 1, "no rtwistd answers on 'nothing.ctl'");
    assert_eq!(error.lines().count(), 1);
    let output = scratch.rtap(&["status"]);
    assert_eq!(output.status.code(), Some(2));
}

fn request(stream: &mut UnixStream, reader: &mut BufReader<UnixStream>, line: &[u8]) -> Value {
    stream.write_all(line).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|error| panic!("{error}: {reply:?}"))
}

#[test]
fn a_thousand_garbage_requests_get_error_replies_and_disturb_nothing() {
    let scratch = Scratch::new();
    let port = free_port();
    let daemon = start(&scratch, &two_echoes(port, free_port()));
    let mut stream = UnixStream::connect(scratch.join("app.ctl")).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"hello".to_vec(),
        b"{".to_vec(),
        b"[1,2,3]".to_vec(),
        br#"{"v":1}"#.to_vec(),
        br#"{"v":1,"command":"format_disk"}"#.to_vec(),
        br#"{"v":99,"command":"status"}"#.to_vec(),
        br#"{"v":1,"command":"remove"}"#.to_vec(),
        br#"{"v":1,"command":"remove","path":"nope"}"#.to_vec(),
        br#"{"v":1,"command":"apply","snapshot":"!!!"}"#.to_vec(),
        br#"{"v":1,"command":"apply","snapshot":"aGVsbG8="}"#.to_vec(),
        br#"{"v":1,"command":"set","path":"keep","fields":{"endpoint":7}}"#.to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        "x".repeat(100_000).into_bytes(),
    ];
    for i in 0..1000 {
        let reply = request(&mut stream, &mut reader, &garbage[i % garbage.len()]);
        assert_eq!(reply["ok"], false, "request {i}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(!error.is_empty() && !error.contains('\n'), "{error}");
    }
    let reply = request(&mut stream, &mut reader, br#"{"v":1,"command":"status"}"#);
    assert_eq!(reply["ok"], true);
    assert_eq!(
        exchange(format!("127.0.0.1:{port}").parse().unwrap(), b"ok"),
        b"ok"
    );
    let now = status(&scratch);
    assert_eq!(service_status(&now, "keep")["state"], "running");
    assert_eq!(now["snapshot"]["changes"], 0, "nothing was changed");
    stop(&scratch, daemon);
}

#[test]
fn the_control_socket_refuses_another_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root, to run a client as nobody");
        return;
    }
    let scratch = Scratch::new();
    let daemon = start(&scratch, &two_echoes(free_port(), free_port()));
    let socket = scratch.join("app.ctl");
    let mode = std::fs::metadata(&socket).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(mode.mode() & 0o777, 0o600);
    // rtap itself, run as nobody from a copy nobody may run.
    let rtap = scratch.join("rtap-copy");
    std::fs::copy(rtwisted_tests::binary("rtap"), &rtap).unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        for _ in 0..100 {
            let output = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&rtap)
                .args(["status", "--control"])
                .arg(&socket)
                .current_dir(scratch.path())
                .output()
                .unwrap();
            let error = text(&output.stderr);
            // A copy just written can be "busy" while another test's fork still holds it.
            if error.contains("Text file busy") {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
            return error;
        }
        panic!("the copy of rtap stayed busy");
    };
    // The file's mode alone keeps nobody out...
    let refused = as_nobody();
    assert!(refused.contains("permission denied"), "{refused}");
    assert!(refused.contains("no rtwistd answers"), "{refused}");
    // ...and with the file opened up, the daemon checks the peer's uid itself.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = as_nobody();
    assert!(
        refused.contains("permission denied: this rtwistd runs as uid 0"),
        "{refused}"
    );
    stop(&scratch, daemon);
}

#[test]
fn systemd_hears_status_watchdog_and_reloading_around_an_apply() {
    let scratch = Scratch::new();
    let notify = NotifySocket::bind(&scratch);
    let (keep, change) = (free_port(), free_port());
    std::fs::write(scratch.join("app.tac"), two_echoes(keep, change)).unwrap();
    scratch.rtap_ok(&["save", "-y", "app.tac", "-o", "app.tap"]);
    let daemon = notify.spawn_rtwistd(&scratch, Some("100000"), &["-n", "-f", "app.tap"]);
    let next = || notify.next();
    assert_eq!(next(), "READY=1");
    assert_eq!(next(), "STATUS=2 services running; no checkpoint yet");
    let beats = (0..3).map(|_| next()).collect::<Vec<_>>();
    assert_eq!(beats, ["WATCHDOG=1"; 3], "the watchdog is kept alive");
    std::fs::write(scratch.join("new.tac"), two_echoes(keep, free_port())).unwrap();
    scratch.rtap_ok(&["apply", "app", "new.tac"]);
    let mut seen: Vec<String> = Vec::new();
    while !seen.last().is_some_and(|line| line.starts_with("STATUS=")) {
        let line = next();
        if line != "WATCHDOG=1" {
            seen.push(line);
        }
    }
    assert_eq!(seen[0], "RELOADING=1");
    assert_eq!(seen[1], "READY=1");
    assert!(
        seen[2].starts_with("STATUS=2 services running; last checkpoint "),
        "{seen:?}"
    );
    stop(&scratch, daemon);
}
