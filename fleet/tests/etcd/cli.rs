//! `rtap` and `rtwistd` with `--store etcd://...`: the same story of commands told against a
//! store folder and against a store on a three-member etcd cluster gives the same words and
//! exit codes (the store's name, times and checksums aside); what only etcd has (many writers
//! without a lock, a cluster that goes away) is tested on its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::EtcdCluster;

/// A binary of the workspace, built by `cargo test --workspace`.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let how = "run the tests with `cargo test --workspace`, which builds it";
    crate::harness::binary_in(dir, name, how)
}

/// Runs `rtap ARGS` in `folder`, with no terminal and no passphrase to ask for.
fn rtap(folder: &Path, args: &[&str]) -> Output {
    crate::harness::run_rtap(&binary("rtap"), folder, args)
}

/// A scratch folder, and a store under `prefix` on `cluster` holding `echo@1`, tagged `prod`.
fn echo_tagged_prod(cluster: &EtcdCluster, prefix: &str) -> (tempfile::TempDir, String) {
    let scratch = tempfile::tempdir().unwrap();
    let store = cluster.address(prefix);
    let save = [
        "save", "echo", "--port", "tcp:0", "--store", &store, "--tag", "prod",
    ];
    rtap_ok(scratch.path(), &save, &store);
    (scratch, store)
}

/// Runs `rtap ARGS` in `folder` and insists that it succeeds.
fn rtap_ok(folder: &Path, args: &[&str], store: &str) -> Output {
    let output = rtap(folder, args);
    assert!(output.status.success(), "{}", told(&output, store));
    output
}

/// One step's exit code and words, with the store's name, times and checksums replaced.
fn told(output: &Output, store: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let masked = mask(&text);
    let words = if store.is_empty() {
        masked
    } else {
        masked.replace(store, "STORE")
    };
    format!("exit {:?}: {words}", output.status.code())
}

/// `text` with RFC 3339 times as `TIME` and 64-digit hex as `HEX`.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    while at < chars.len() {
        let rest = &chars[at..];
        let hex = rest.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if hex >= 64 {
            out.push_str("HEX");
            at += hex;
        } else if rest.len() >= 20 && is_time(&rest[..20]) {
            out.push_str("TIME");
            at += 20;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

/// `2026-12-03T12:49:54Z`.
fn is_time(chars: &[char]) -> bool {
    chars.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == '-',
        10 => *c == 'T',
        13 | 16 => *c == ':',
        19 => *c == 'Z',
        _ => c.is_ascii_digit(),
    })
}

/// The story: every store command a user runs, in order; returns what each said.
fn store_story(folder: &Path, store: &str) -> Vec<String> {
    let steps: &[&[&str]] = &[
        &["store", "--store", store, "import", "echo.tap"],
        &["save", "echo", "--port", "tcp:0", "--store", store],
        &["store", "--store", store, "list"],
        &["store", "--store", store, "log", "echo"],
        &["store", "--store", store, "tag", "echo@1", "prod"],
        &["store", "--store", store, "tag", "echo@2", "prod"],
        &["store", "--store", store, "tag", "echo@2", "prod", "--move"],
        &["set", "--store", store, "echo", "echo", "endpoint=tcp:7"],
        &["store", "--store", store, "diff", "echo@1", "echo@3"],
        &["get", "--store", store, "echo@prod", "echo", "endpoint"],
        &["store", "--store", store, "untag", "echo@2"],
        &["store", "--store", store, "untag", "echo@2"],
        &["store", "--store", store, "tag", "echo@1", "keep"],
        &["store", "--store", store, "gc", "echo", "--keep", "1"],
        &["store", "--store", store, "log", "echo"],
        &["store", "--store", store, "export", "echo@keep", "out.tap"],
        &["store", "--store", store, "verify"],
        &["inspect", "--store", store, "echo@9"],
        &["inspect", "--store", store, "nothing"],
        &["store", "--store", store, "gc", "echo", "--keep", "0"],
    ];
    steps
        .iter()
        .map(|args| told(&rtap(folder, args), store))
        .collect()
}

#[test]
fn the_store_commands_tell_the_same_story_on_etcd_as_in_a_folder() {
    let Some(cluster) = EtcdCluster::start("the_store_commands_on_etcd") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let made = rtap(
        scratch.path(),
        &["save", "echo", "--port", "tcp:0", "-o", "echo.tap"],
    );
    assert!(made.status.success(), "{}", told(&made, ""));

    let in_folder = store_story(scratch.path(), "the-store-folder");
    let etcd = cluster.address("story");
    let on_etcd = store_story(scratch.path(), &etcd);
    for (step, (folder, etcd)) in in_folder.iter().zip(&on_etcd).enumerate() {
        assert_eq!(folder, etcd, "step {step} differs");
    }
    // The story is not empty words: the steps did what they say.
    assert!(
        on_etcd[0].starts_with("exit Some(0): echo@1"),
        "{}",
        on_etcd[0]
    );
    assert!(on_etcd[5].contains("already on echo@1"), "{}", on_etcd[5]);
    assert!(on_etcd[9].contains("tcp:0"), "{}", on_etcd[9]);
    assert!(
        on_etcd[13].contains("removed 1 (echo@2)"),
        "{}",
        on_etcd[13]
    );
    assert!(on_etcd[17].starts_with("exit Some(1)"), "{}", on_etcd[17]);
    let exported = std::fs::read(scratch.path().join("out.tap")).unwrap();
    assert_eq!(
        exported,
        std::fs::read(scratch.path().join("echo.tap")).unwrap()
    );
}

#[test]
fn concurrent_edits_on_etcd_never_lose_a_change() {
    let Some(cluster) = EtcdCluster::start("concurrent_edits_on_etcd") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let store = cluster.address("edits");
    rtap_ok(
        scratch.path(),
        &["save", "echo", "--port", "tcp:0", "--store", &store],
        &store,
    );

    let editors: Vec<_> = (0..6)
        .map(|i| {
            let (folder, store) = (scratch.path().to_owned(), store.clone());
            std::thread::spawn(move || {
                let value = format!("endpoint=tcp:{}", 7000 + i);
                rtap(&folder, &["set", "--store", &store, "echo", "echo", &value])
            })
        })
        .collect();
    let outputs: Vec<Output> = editors.into_iter().map(|t| t.join().unwrap()).collect();
    let won: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        let words = told(lost, &store);
        assert!(
            words.contains("nothing was written: run the edit again"),
            "{words}"
        );
    }
    assert!(!won.is_empty());
    // Each edit reported written is a snapshot of its own: one per success, none lost.
    let log = rtap(scratch.path(), &["store", "--store", &store, "log", "echo"]);
    let lines = String::from_utf8_lossy(&log.stdout).lines().count();
    assert_eq!(lines, 1 + 1 + won.len(), "{}", told(&log, &store));
}

#[test]
fn rtwistd_runs_from_etcd_and_saves_back_into_it() {
    let Some(cluster) = EtcdCluster::start("rtwistd_runs_from_etcd") else {
        return;
    };
    let (scratch, store) = echo_tagged_prod(&cluster, "daemon");
    let mut daemon = Member::start(&["--store", &store, "-f", "echo@prod"]);
    let checkpoint = rtap(
        daemon.folder.path(),
        &["checkpoint", "--control", "echo.ctl"],
    );
    assert!(
        told(&checkpoint, &store).contains("checkpoint saved as echo@2 in the store 'STORE'"),
        "{}",
        told(&checkpoint, &store)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = daemon.child.wait().unwrap();
    let log = daemon.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("as echo@3 in the store '{store}'")),
        "{log}"
    );
    let entries = rtap(scratch.path(), &["store", "--store", &store, "log", "echo"]);
    let entries = told(&entries, &store);
    assert_eq!(entries.lines().count(), 4, "{entries}");
}

/// A foreground rtwistd in a folder of its own, killed when dropped.
struct Member {
    child: std::process::Child,
    folder: tempfile::TempDir,
    control: String,
}

impl Member {
    fn start(args: &[&str]) -> Member {
        let member = Member::spawn("echo", args);
        member.wait_serving(20);
        member
    }

    /// Starts rtwistd running `app`; it serves once its control socket is there.
    fn spawn(app: &str, args: &[&str]) -> Member {
        let (child, folder) = crate::harness::spawn_rtwistd(&binary("rtwistd"), args);
        Member {
            child,
            folder,
            control: format!("{app}.ctl"),
        }
    }

    fn serving(&self) -> bool {
        self.folder.path().join(&self.control).exists()
    }

    fn wait_serving(&self, seconds: u64) {
        assert!(
            eventually(seconds, || self.serving()),
            "no control socket:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("rtwistd.log")).unwrap_or_default()
    }

    fn status(&self) -> serde_json::Value {
        let output = rtap(
            self.folder.path(),
            &["status", "--control", &self.control, "--json"],
        );
        serde_json::from_slice(&output.stdout).unwrap_or_default()
    }

    /// The address the service at `path` listens on, once the daemon answers.
    fn address(&self, path: &str) -> Option<String> {
        let mut found = None;
        eventually(10, || {
            found = self.listening(path);
            found.is_some()
        });
        found
    }

    fn listening(&self, path: &str) -> Option<String> {
        let status = self.status();
        let services = status["services"].as_array()?;
        let service = services.iter().find(|s| s["path"] == path)?;
        service["facts"]["address"].as_str().map(str::to_owned)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it holds or `seconds` pass.
fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn a_tag_move_rolls_out_live_to_three_followers_and_status_lists_them() {
    use std::io::{Read, Write};
    let Some(cluster) = EtcdCluster::start("a_tag_move_rolls_out") else {
        return;
    };
    let (scratch, store) = echo_tagged_prod(&cluster, "rollout");
    let follow = ["--store", store.as_str(), "-f", "echo@prod", "--follow"];
    let members: Vec<Member> = (0..3).map(|_| Member::start(&follow)).collect();
    let fleet = || {
        let output = rtap(
            scratch.path(),
            &["status", "--fleet", "echo", "--store", &store, "--json"],
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap_or_default()
    };
    let on = |number: &str| {
        let listed = fleet();
        let listed = listed.as_array().cloned().unwrap_or_default();
        listed.len() == 3 && listed.iter().all(|m| m["snapshot"] == number)
    };
    assert!(eventually(10, || on("echo@1")), "{}", fleet());
    // A connection to each member's echo service, open across the rollout.
    let mut connections: Vec<std::net::TcpStream> = members
        .iter()
        .map(|m| std::net::TcpStream::connect(m.address("echo").unwrap()).unwrap())
        .collect();

    rtap_ok(
        scratch.path(),
        &[
            "add", "echo@1", "discard", "--port", "tcp:0", "--store", &store,
        ],
        &store,
    );
    rtap_ok(
        scratch.path(),
        &[
            "store", "--store", &store, "tag", "echo@2", "prod", "--move",
        ],
        &store,
    );
    assert!(eventually(10, || on("echo@2")), "{}", fleet());
    // Each follower kept the live change as a checkpoint, and its record says where.
    let checkpointed = || {
        let listed = fleet();
        let listed = listed.as_array().cloned().unwrap_or_default();
        listed.iter().all(|m| {
            m["last_checkpoint"]
                .as_str()
                .is_some_and(|to| to.starts_with("echo@"))
        })
    };
    assert!(eventually(10, checkpointed), "{}", fleet());
    for (member, connection) in members.iter().zip(&mut connections) {
        let services = member.status()["services"].as_array().unwrap().len();
        assert_eq!(services, 3, "the root, echo and discard:\n{}", member.log());
        assert!(
            member.log().contains("Rolled out echo@2"),
            "{}",
            member.log()
        );
        // The untouched service kept its connection through the rollout.
        connection
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        connection.write_all(b"still here").unwrap();
        let mut echoed = [0u8; 10];
        connection.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"still here");
    }
    // A member killed with SIGKILL leaves the list once its lease runs out.
    let mut members = members;
    let mut gone = members.pop().unwrap();
    let _ = gone.child.kill();
    let _ = gone.child.wait();
    assert!(
        eventually(15, || fleet().as_array().is_some_and(|l| l.len() == 2)),
        "{}",
        fleet()
    );
}

#[test]
fn follow_without_a_tag_in_a_store_on_etcd_is_a_usage_error() {
    let scratch = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-f", "echo@prod"], "give --store etcd://HOST:PORT/PREFIX"),
        (
            &["--store", "db", "-f", "echo@prod"],
            "give --store etcd://",
        ),
        (
            &["--store", "etcd://127.0.0.1:9/x", "-f", "echo@2"],
            "give -f APP@TAG (not 'echo@2')",
        ),
    ];
    for (args, words) in cases {
        let output = Command::new(binary("rtwistd"))
            .args(["-n", "--follow"])
            .args(*args)
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(words), "{args:?}: {said}");
    }
}

/// Sends memcached text-protocol `request` on `stream` and reads the reply through `end`.
fn kv_exchange(stream: &mut std::net::TcpStream, request: &str, end: &str) -> String {
    use std::io::{Read, Write};
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).ends_with(end) {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the kv server closed the connection");
        reply.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

fn kv_connect(address: &str) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// A kv application saved into `store`, and two singletons of it: the one that leads and
/// the one that stands by.
fn leader_and_standby(store: &str, leader_options: &[&str]) -> (Member, Member) {
    let scratch = tempfile::tempdir().unwrap();
    let port = "tcp:0:interface=127.0.0.1";
    let made = rtap(
        scratch.path(),
        &["save", "kv", "--port", port, "--store", store],
    );
    assert!(made.status.success(), "{}", told(&made, store));
    let args = ["--store", store, "-f", "kv", "--singleton"];
    let first = Member::spawn("kv", &[&args[..], leader_options].concat());
    first.wait_serving(20);
    let second = Member::spawn("kv", &args);
    // The second stands by: listed as such, serving nothing.
    let standby = || {
        let output = rtap(
            scratch.path(),
            &["status", "--fleet", "kv", "--store", store, "--json"],
        );
        let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["state"] == "standby"))
    };
    assert!(
        eventually(10, standby),
        "no standby listed:\n{}",
        second.log()
    );
    assert!(!second.serving());
    (first, second)
}

#[test]
fn a_standby_takes_over_with_every_key_of_the_last_checkpoint_when_the_leader_is_killed() {
    let Some(cluster) = EtcdCluster::start("singleton_failover") else {
        return;
    };
    let (mut leader, standby) = leader_and_standby(&cluster.address("failover"), &[]);
    let address = leader.address("kv");
    let mut client = kv_connect(
        address
            .as_deref()
            .unwrap_or_else(|| panic!("{}\n{}", leader.status(), leader.log())),
    );
    for i in 0..200 {
        let reply = kv_exchange(
            &mut client,
            &format!("set k{i} 0 0 4\r\nv{i:03}\r\n"),
            "\r\n",
        );
        assert_eq!(reply, "STORED\r\n");
    }
    let checkpoint = rtap(leader.folder.path(), &["checkpoint", "--control", "kv.ctl"]);
    assert!(checkpoint.status.success(), "{}", told(&checkpoint, ""));

    let _ = leader.child.kill();
    let _ = leader.child.wait();
    let killed = Instant::now();
    standby.wait_serving(10);
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(6), "took over after {took:?}");
    let mut client = kv_connect(&standby.address("kv").unwrap());
    for i in 0..200 {
        let reply = kv_exchange(&mut client, &format!("get k{i}\r\n"), "END\r\n");
        assert!(reply.contains(&format!("v{i:03}")), "k{i} lost: {reply}");
    }
    assert!(standby.log().contains("Leading kv"), "{}", standby.log());
}

#[test]
fn a_leader_paused_past_its_lease_stops_and_writes_nothing_after_it_resumes() {
    use nix::sys::signal::{Signal, kill};
    let Some(cluster) = EtcdCluster::start("singleton_fencing") else {
        return;
    };
    let store = cluster.address("fencing");
    // Its checkpoint timer keeps it busy writing: it must stop all the same.
    let (mut leader, standby) = leader_and_standby(&store, &["--checkpoint-every", "1s"]);
    let scratch = standby.folder.path();
    let address = leader.address("kv").unwrap();
    let pid = nix::unistd::Pid::from_raw(leader.child.id() as i32);

    kill(pid, Signal::SIGSTOP).unwrap();
    standby.wait_serving(15);
    let log_before = rtap(scratch, &["store", "--store", &store, "log", "kv"]);
    kill(pid, Signal::SIGCONT).unwrap();
    let resumed = Instant::now();
    // It knows it lost, stops serving at once, and exits non-zero: its shutdown save is
    // refused by etcd, so nothing it writes lands after the standby took over.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = leader.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the old leader still runs:\n{}",
            leader.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(status.code(), Some(0), "{}", leader.log());
    let took = resumed.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "stopped {took:?} after it resumed"
    );
    assert!(
        leader.log().contains("Lost the leadership"),
        "{}",
        leader.log()
    );
    assert!(std::net::TcpStream::connect(&address).is_err());
    let log_after = rtap(scratch, &["store", "--store", &store, "log", "kv"]);
    assert_eq!(
        String::from_utf8_lossy(&log_before.stdout),
        String::from_utf8_lossy(&log_after.stdout)
    );
}
