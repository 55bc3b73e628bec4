//! Issue 19's benchmark ("fleet on etcd"), end to end: the real release `rtap` and `rtwistd`
//! against a real three-member etcd cluster on loopback (`fleet/tests/harness`). It measures
//!
//! 1. **rollout**: five `rtwistd --follow` members of `echo@prod`; each round adds a service
//!    (`rtap add`, a new snapshot) and moves the tag onto it (`rtap store tag --move`); the time
//!    from the start of that command until every member's `rtap status --control` shows the new
//!    service `running` (and, polled in the same loop, until `rtap status --fleet` lists every
//!    member on the new snapshot). Five rounds.
//! 2. **failover**: a `--singleton` kv leader and one standby; 1,000 keys set, `rtap checkpoint`,
//!    100 more set; the leader killed with SIGKILL; the time until the standby's kv port answers
//!    a `get`, and how many of the 1,000 checkpointed and of the 100 later keys it has. Three
//!    rounds.
//! 3. **an etcd member killed under load**: a kv singleton leader with `--checkpoint-every 1s`,
//!    a client doing set/get for 10 s; the etcd Raft leader killed with SIGKILL halfway; client
//!    errors, requests done, and the daemon's failed timer checkpoints (from its log).
//!
//! It prints a Markdown table against the goals. Run with `bash bench/fleet.sh`, which
//! builds the release binaries first; they are looked for in `RTWISTED_BIN_DIR`, else next to
//! this bench (`$CARGO_TARGET_DIR/release`), else in `target/release`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use harness::EtcdCluster;

/// Followers in the rollout.
const FOLLOWERS: usize = 5;
/// Rollout rounds.
const ROLLOUTS: usize = 5;
/// Failover rounds.
const FAILOVERS: usize = 3;
/// Keys set and checkpointed before the kill, and set after the checkpoint.
const CHECKPOINTED: usize = 1000;
const LATER: usize = 100;
/// How long the client of the steady-load run runs, and when in it an etcd member is killed.
const LOAD_FOR: Duration = Duration::from_secs(10);
const KILL_AT: Duration = Duration::from_secs(5);
/// The singleton lease's TTL (rtwistd's, not configurable).
const SINGLETON_TTL: Duration = Duration::from_secs(3);
/// Between two polls.
const POLL: Duration = Duration::from_millis(10);

/// A table row: what, measured, goal.
type Row = (String, String, String);

/// The folder with the release `rtap` and `rtwistd`.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("RTWISTED_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let exe = std::env::current_exe().unwrap();
        // .../release/deps/rollout-HASH -> .../release
        if let Some(dir) = exe.parent().and_then(Path::parent)
            && dir.join("rtap").is_file()
            && dir.join("rtwistd").is_file()
        {
            return dir.to_owned();
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release")
    })
}

fn binary(name: &str) -> PathBuf {
    let how = "run `cargo build --release -p rtwisted-cli` (bench/fleet.sh does), or set RTWISTED_BIN_DIR";
    harness::binary_in(bin_dir(), name, how)
}

/// Runs `rtap ARGS` in `folder`, with no terminal and no passphrase to ask for.
fn rtap(folder: &Path, args: &[&str]) -> Output {
    crate::harness::run_rtap(&binary("rtap"), folder, args)
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `rtap ARGS` and panics unless it succeeds; returns what it said.
fn must(folder: &Path, args: &[&str]) -> String {
    let output = rtap(folder, args);
    assert!(
        output.status.success(),
        "rtap {args:?} failed ({:?}): {}",
        output.status.code(),
        said(&output)
    );
    said(&output)
}

/// Polls `check` every [`POLL`] until it gives a value; panics after `limit`.
fn until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(POLL);
    }
}

/// A foreground rtwistd in a temporary folder of its own, killed (SIGKILL) when dropped.
struct Daemon {
    child: Child,
    folder: tempfile::TempDir,
    control: String,
}

impl Daemon {
    fn spawn(app: &str, args: &[&str]) -> Daemon {
        let (child, folder) = crate::harness::spawn_rtwistd(&binary("rtwistd"), args);
        Daemon {
            child,
            folder,
            control: format!("{app}.ctl"),
        }
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Whether it has a control socket (a standby has none).
    fn serving(&self) -> bool {
        self.path().join(&self.control).exists()
    }

    fn status(&self) -> serde_json::Value {
        let output = rtap(
            self.path(),
            &["status", "--control", &self.control, "--json"],
        );
        serde_json::from_slice(&output.stdout).unwrap_or_default()
    }

    /// The service at `path`, if the daemon answers and has it.
    fn service(&self, path: &str) -> Option<serde_json::Value> {
        if !self.serving() {
            return None;
        }
        let status = self.status();
        status["services"]
            .as_array()?
            .iter()
            .find(|s| s["path"] == path)
            .cloned()
    }

    /// Whether the service at `path` runs.
    fn running(&self, path: &str) -> bool {
        self.service(path).is_some_and(|s| s["state"] == "running")
    }

    /// The address the service at `path` listens on.
    fn address(&self, path: &str) -> Option<String> {
        self.service(path)?["facts"]["address"]
            .as_str()
            .map(str::to_owned)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("rtwistd.log")).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The members of `app`'s fleet, from `rtap status --fleet APP --json`.
fn fleet(folder: &Path, store: &str, app: &str) -> Vec<serde_json::Value> {
    let output = rtap(
        folder,
        &["status", "--fleet", app, "--store", store, "--json"],
    );
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Sends memcached text-protocol `request` and reads the reply through `end`.
fn exchange(stream: &mut TcpStream, request: &str, end: &str) -> std::io::Result<String> {
    stream.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    while !reply.ends_with(end.as_bytes()) {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the kv server closed the connection",
            ));
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn set(stream: &mut TcpStream, key: &str, value: &str) -> std::io::Result<bool> {
    let request = format!("set {key} 0 0 {}\r\n{value}\r\n", value.len());
    Ok(exchange(stream, &request, "\r\n")? == "STORED\r\n")
}

fn get(stream: &mut TcpStream, key: &str) -> std::io::Result<Option<String>> {
    let reply = exchange(stream, &format!("get {key}\r\n"), "END\r\n")?;
    Ok(reply
        .strip_prefix(&format!("VALUE {key} "))
        .and_then(|rest| rest.split("\r\n").nth(1))
        .map(str::to_owned))
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }
}

fn median_max(samples: &[Duration]) -> String {
    format!(
        "{} / {}",
        ms(median(samples)),
        ms(*samples.iter().max().unwrap())
    )
}

/// Runs the edit `rtap ARGS` (again when it raced a member's checkpoint and was refused);
/// returns the snapshot it wrote (`APP@N`).
fn edit(folder: &Path, args: &[&str]) -> String {
    let mut tries = 0;
    let wrote = loop {
        tries += 1;
        let output = rtap(folder, args);
        if output.status.success() {
            break said(&output);
        }
        assert!(tries < 5, "rtap {args:?}: {}", said(&output));
    };
    wrote
        .split_whitespace()
        .skip_while(|w| *w != "wrote")
        .nth(1)
        .unwrap_or_else(|| panic!("rtap {args:?} said: {wrote}"))
        .to_owned()
}

/// 1. A tag move rolled out to five followers.
fn rollout(cluster: &EtcdCluster, rows: &mut Vec<Row>) {
    let scratch = tempfile::tempdir().unwrap();
    let here = scratch.path();
    let store = cluster.address("rollout");
    must(
        here,
        &[
            "save", "echo", "--port", "tcp:0", "--store", &store, "--tag", "prod",
        ],
    );
    let follow = ["--store", store.as_str(), "-f", "echo@prod", "--follow"];
    let members: Vec<Daemon> = (0..FOLLOWERS)
        .map(|_| Daemon::spawn("echo", &follow))
        .collect();
    for member in &members {
        until(Duration::from_secs(30), "a follower serves echo", || {
            member.running("echo").then_some(())
        });
    }
    let all_on = |snapshot: &str| {
        let listed = fleet(here, &store, "echo");
        listed.len() == FOLLOWERS && listed.iter().all(|m| m["snapshot"] == snapshot)
    };
    until(Duration::from_secs(15), "five members listed", || {
        all_on("echo@1").then_some(())
    });

    let (mut served, mut listed, mut commands) = (Vec::new(), Vec::new(), Vec::new());
    let mut current = "echo@1".to_owned();
    for round in 0..ROLLOUTS {
        // A new snapshot with one more service: `add` names it after its plugin, so it is
        // renamed for the round.
        let service = format!("discard{round}");
        let added = edit(
            here,
            &[
                "add", &current, "discard", "--port", "tcp:0", "--store", &store,
            ],
        );
        let new = edit(
            here,
            &["rename", &added, "discard", &service, "--store", &store],
        );

        let started = Instant::now();
        let moved = rtap(
            here,
            &["store", "--store", &store, "tag", &new, "prod", "--move"],
        );
        commands.push(started.elapsed());
        assert!(moved.status.success(), "{}", said(&moved));
        let deadline = started + Duration::from_secs(20);
        let mut pending: Vec<&Daemon> = members.iter().collect();
        let (mut all_served, mut all_listed) = (None, None);
        while all_served.is_none() || all_listed.is_none() {
            if all_served.is_none() {
                pending.retain(|member| !member.running(&service));
                if pending.is_empty() {
                    all_served = Some(started.elapsed());
                }
            }
            if all_listed.is_none() && all_on(&new) {
                all_listed = Some(started.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {} of {FOLLOWERS} members still without {service} ({new}) after 20 s:\n{}",
                pending.len(),
                pending.first().map(|m| m.log()).unwrap_or_default()
            );
            std::thread::sleep(POLL);
        }
        served.push(all_served.unwrap());
        listed.push(all_listed.unwrap());
        current = new;
    }
    rows.push((
        format!(
            "rollout to {FOLLOWERS} followers: `tag --move` start → the new service running on all (`status --control`), median / max of {ROLLOUTS}"
        ),
        median_max(&served),
        "< 1 s".into(),
    ));
    rows.push((
        format!(
            "same, → all {FOLLOWERS} listed on the new snapshot (`status --fleet`), median / max of {ROLLOUTS}"
        ),
        median_max(&listed),
        "< 1 s".into(),
    ));
    rows.push((
        format!("of which the `rtap store tag --move` command itself, median of {ROLLOUTS}"),
        ms(median(&commands)),
        "–".into(),
    ));
}

/// Saves a kv application on loopback into `store`.
fn save_kv(here: &Path, store: &str) {
    must(
        here,
        &[
            "save",
            "kv",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--store",
            store,
        ],
    );
}

/// 2. A singleton leader killed with SIGKILL; its standby takes over.
fn failover(cluster: &EtcdCluster, rows: &mut Vec<Row>) {
    let (mut took, mut kept, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..FAILOVERS {
        let scratch = tempfile::tempdir().unwrap();
        let here = scratch.path();
        let store = cluster.address(&format!("failover{round}"));
        save_kv(here, &store);
        let args = ["--store", store.as_str(), "-f", "kv", "--singleton"];
        let mut leader = Daemon::spawn("kv", &args);
        let address = until(Duration::from_secs(30), "the leader serves kv", || {
            leader.address("kv")
        });
        let standby = Daemon::spawn("kv", &args);
        until(Duration::from_secs(15), "a standby listed", || {
            fleet(here, &store, "kv")
                .iter()
                .any(|m| m["state"] == "standby")
                .then_some(())
        });
        assert!(!standby.serving());

        let mut client = connect(&address).unwrap();
        for i in 0..CHECKPOINTED + LATER {
            if i == CHECKPOINTED {
                must(leader.path(), &["checkpoint", "--control", "kv.ctl"]);
            }
            assert!(set(&mut client, &format!("k{i}"), &format!("v{i:05}")).unwrap());
        }
        drop(client);

        let killed = Instant::now();
        leader.kill();
        let address = until(
            Duration::from_secs(20),
            "the standby serves kv after the leader's kill",
            || {
                let address = standby.address("kv")?;
                let mut stream = connect(&address).ok()?;
                get(&mut stream, "k0").ok()?;
                Some(address)
            },
        );
        took.push(killed.elapsed());

        let mut client = connect(&address).unwrap();
        let mut present = |range: std::ops::Range<usize>| {
            range
                .filter(|i| {
                    get(&mut client, &format!("k{i}")).unwrap().as_deref()
                        == Some(format!("v{i:05}").as_str())
                })
                .count()
        };
        kept.push(present(0..CHECKPOINTED));
        later.push(present(CHECKPOINTED..CHECKPOINTED + LATER));
        assert!(standby.log().contains("Leading kv"), "{}", standby.log());
    }
    let list = |counts: &[usize]| {
        counts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows.push((
        format!(
            "failover: `kill -9` of the kv leader → the standby answers `get`, median / max of {FAILOVERS}"
        ),
        median_max(&took),
        format!(
            "< TTL + 1 s ({} s)",
            (SINGLETON_TTL + Duration::from_secs(1)).as_secs()
        ),
    ));
    rows.push((
        format!("checkpointed keys the new leader has (of {CHECKPOINTED}), each round"),
        list(&kept),
        format!("all {CHECKPOINTED}"),
    ));
    rows.push((
        format!(
            "keys set after the checkpoint it has (of {LATER}, never checkpointed), each round"
        ),
        list(&later),
        "– (may be lost)".into(),
    ));
}

/// What the client of the steady load saw.
#[derive(Default)]
struct Load {
    requests: u64,
    errors: u64,
    first_errors: Vec<String>,
    slowest: Duration,
}

/// 3. An etcd member (the Raft leader) killed under steady load on a checkpointing singleton.
fn etcd_kill(cluster: &mut EtcdCluster, rows: &mut Vec<Row>) {
    let scratch = tempfile::tempdir().unwrap();
    let here = scratch.path();
    let store = cluster.address("steady");
    save_kv(here, &store);
    let mut leader = Daemon::spawn(
        "kv",
        &[
            "--store",
            &store,
            "-f",
            "kv",
            "--singleton",
            "--checkpoint-every",
            "1s",
        ],
    );
    let address = until(Duration::from_secs(30), "the leader serves kv", || {
        leader.address("kv")
    });

    let client = std::thread::spawn(move || {
        let mut load = Load::default();
        fn note(load: &mut Load, error: String) {
            load.errors += 1;
            if load.first_errors.len() < 3 {
                load.first_errors.push(error);
            }
        }
        let started = Instant::now();
        let mut stream = connect(&address).ok();
        let mut i = 0u64;
        while started.elapsed() < LOAD_FOR {
            let Some(s) = stream.as_mut() else {
                stream = connect(&address).ok();
                if stream.is_none() {
                    note(&mut load, "cannot connect".into());
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            };
            let (key, value) = (format!("k{}", i % 1000), format!("v{i}"));
            let began = Instant::now();
            let outcome = set(s, &key, &value).and_then(|stored| {
                let read = get(s, &key)?;
                Ok(stored && read.as_deref() == Some(value.as_str()))
            });
            load.slowest = load.slowest.max(began.elapsed());
            load.requests += 2;
            match outcome {
                Ok(true) => {}
                Ok(false) => note(&mut load, format!("wrong reply for {key}")),
                Err(error) => {
                    note(&mut load, error.to_string());
                    stream = None;
                }
            }
            i += 1;
        }
        load
    });

    // The scenario's own timing, not a wait for readiness: the kill comes halfway.
    std::thread::sleep(KILL_AT);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raft_leader = runtime.block_on(cluster.leader_index());
    cluster.kill(raft_leader);
    let load = client.join().unwrap();
    let alive = leader.child.try_wait().unwrap().is_none();
    let log = leader.log();
    let failed = log.matches("Checkpoint (timer) failed").count();
    let saved = log.matches("Checkpoint (timer) saved").count();
    let skipped = log.matches("Checkpoint (timer) skipped").count();
    if !load.first_errors.is_empty() {
        eprintln!("client errors (first ones): {:?}", load.first_errors);
    }
    if failed > 0 || !alive {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("failed") || l.contains("Lost"))
            .take(5)
            .collect();
        eprintln!("daemon log (alive: {alive}): {lines:#?}");
    }
    leader.kill();
    rows.push((
        format!(
            "etcd Raft leader `kill -9`ed at {} s of {} s of set/get on a kv singleton: client errors / requests (set + get), slowest pair",
            KILL_AT.as_secs(),
            LOAD_FOR.as_secs()
        ),
        format!(
            "{} / {}, {}",
            load.errors,
            load.requests,
            ms(load.slowest)
        ),
        "0 errors".into(),
    ));
    rows.push((
        "its `--checkpoint-every 1s` meanwhile: failed / saved / skipped; daemon still leading"
            .into(),
        format!(
            "{failed} / {saved} / {skipped}; {}",
            if alive { "yes" } else { "NO" }
        ),
        "0 failed".into(),
    ));
}

/// Runs one part; a part that fails gives a row saying so, and the others still run.
fn part(name: &str, rows: &mut Vec<Row>, run: impl FnOnce(&mut Vec<Row>)) {
    let started = Instant::now();
    let mut own = Vec::new();
    match std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut own))) {
        Ok(()) => rows.extend(own),
        Err(_) => rows.push((name.into(), "FAILED (see above)".into(), "–".into())),
    }
    eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    let started = Instant::now();
    // Fail early, before a cluster runs, when the binaries are not built.
    binary("rtap");
    binary("rtwistd");
    let Some(mut cluster) = EtcdCluster::start("rollout bench") else {
        std::process::exit(1);
    };
    let mut rows = Vec::new();
    part("rollout", &mut rows, |rows| rollout(&cluster, rows));
    part("failover", &mut rows, |rows| failover(&cluster, rows));
    part("etcd member kill under load", &mut rows, |rows| {
        etcd_kill(&mut cluster, rows);
    });
    drop(cluster);

    let etcd = Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version: ").to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "Release `rtap`/`rtwistd` from {}; etcd {etcd}, three members on loopback; this {cores}-core machine, shared with other work, so times are this machine's, not a promise (singleton lease {} s, follower lease 5 s):",
        bin_dir().display(),
        SINGLETON_TTL.as_secs()
    );
    println!();
    println!("| what | measured | goal |");
    println!("| --- | --- | --- |");
    for (what, measured, goal) in &rows {
        println!("| {what} | {measured} | {goal} |");
    }
    println!();
    println!("(ran {:.0} s)", started.elapsed().as_secs_f64());
    if rows.iter().any(|r| r.1.starts_with("FAILED")) {
        std::process::exit(1);
    }
}
