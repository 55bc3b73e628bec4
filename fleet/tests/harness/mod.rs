//! A real etcd cluster for the tests: three `etcd` processes on free loopback ports in a
//! temporary folder, healthy before [`EtcdCluster::start`] returns, killed when it is dropped.
//!
//! When `etcd` is not installed, [`EtcdCluster::start`] prints why the test is skipped and
//! returns `None`, unless `RTWISTED_REQUIRE_ETCD=1` is set (as `.ci/run` does): then it fails
//! the test, so CI never passes by skipping.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a cluster may take to become healthy.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// How many clusters may run at once: the machine is small, and the timing tests (leases,
/// watches) need etcd to be scheduled promptly.
const MAX_CLUSTERS: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// One slot of [`MAX_CLUSTERS`], given back on drop.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_CLUSTERS {
            running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        FREED.notify_one();
    }
}

/// One etcd process of the cluster.
struct Member {
    name: String,
    client_port: u16,
    child: Option<Child>,
}

/// A running etcd cluster on loopback. Dropping it kills and reaps every member and removes
/// its data.
pub struct EtcdCluster {
    members: Vec<Member>,
    folder: tempfile::TempDir,
    _slot: Slot,
}

/// The etcd binary: `RTWISTED_ETCD` if set, else `etcd` on the PATH.
fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RTWISTED_ETCD") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

fn required() -> bool {
    std::env::var("RTWISTED_REQUIRE_ETCD").is_ok_and(|v| v == "1")
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl EtcdCluster {
    /// Starts a three-member cluster, or returns `None` (after printing why) when etcd is not
    /// installed and not required. `test` names the caller in the skip message.
    pub fn start(test: &str) -> Option<EtcdCluster> {
        Self::start_members(test, 3)
    }

    /// Starts a cluster of `count` members; see [`EtcdCluster::start`].
    pub fn start_members(test: &str, count: usize) -> Option<EtcdCluster> {
        let Some(etcd) = etcd_binary() else {
            assert!(
                !required(),
                "{test}: etcd is not installed and RTWISTED_REQUIRE_ETCD=1: install it (apt-get install etcd-server) or unset the variable"
            );
            eprintln!(
                "SKIPPED {test}: etcd is not installed (apt-get install etcd-server, or set RTWISTED_ETCD to its path)"
            );
            return None;
        };
        // A port picked free can be taken by someone else before etcd binds it: a member that
        // exits at once is retried on new ports.
        for attempt in 1..=3 {
            let mut cluster = Self::spawn(&etcd, test, count);
            match cluster.wait_healthy(test) {
                Ok(()) => return Some(cluster),
                Err(exited) if attempt < 3 => {
                    eprintln!("{test}: {exited}; starting the cluster again on other ports");
                }
                Err(exited) => panic!("{test}: {exited}:\n{}", cluster.logs()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts `count` etcd processes on fresh ports (not yet healthy).
    fn spawn(etcd: &Path, test: &str, count: usize) -> EtcdCluster {
        let slot = Slot::take();
        let folder = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("rtwisted-{}", std::process::id());
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let log = File::create(folder.path().join(format!("{name}.log"))).unwrap();
            let child = Command::new(etcd)
                .arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(folder.path().join(&name))
                .arg("--listen-client-urls")
                .arg(format!("http://127.0.0.1:{client}"))
                .arg("--advertise-client-urls")
                .arg(format!("http://127.0.0.1:{client}"))
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .arg("--initial-cluster-token")
                .arg(&token)
                .arg("--initial-cluster-state")
                .arg("new")
                // Fast elections on loopback, so a killed member is replaced quickly.
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{test}: cannot start {}: {e}", etcd.display()));
            members.push(Member {
                name,
                client_port: *client,
                child: Some(child),
            });
        }
        EtcdCluster {
            members,
            folder,
            _slot: slot,
        }
    }

    /// Polls every member's `/health` until all report healthy; an error if a member exited
    /// (its port was taken, say). Panics with the members' logs at the deadline.
    fn wait_healthy(&mut self, test: &str) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if self.members.iter().all(|m| healthy(m.client_port)) {
                return Ok(());
            }
            for member in &mut self.members {
                if let Some(child) = member.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(format!("etcd member {} exited ({status})", member.name));
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{test}: the etcd cluster was not healthy within {STARTUP_DEADLINE:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client endpoints of the members still running, as `127.0.0.1:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// An `etcd://` store address for every member, under `prefix`.
    pub fn address(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints().join(","))
    }

    /// Kills member `index` (SIGKILL) and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every member's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for member in &self.members {
            let path = self.folder.path().join(format!("{}.log", member.name));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: String = text
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            out.push_str(&format!("--- {}:\n{tail}\n", member.name));
        }
        out
    }

    /// The cluster's scratch folder.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}

/// True when the member on `port` answers `GET /health` with `"health":"true"`.
fn healthy(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.take(64 * 1024).read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// A store under `prefix` on this cluster.
    pub async fn store(&self, prefix: &str) -> rtwisted_fleet::EtcdStore {
        rtwisted_fleet::EtcdStore::new(self.connect(prefix).await)
    }

    /// A connection under `prefix` to this cluster.
    pub async fn connect(&self, prefix: &str) -> rtwisted_fleet::Etcd {
        let address: rtwisted_fleet::EtcdAddress = self.address(prefix).parse().unwrap();
        rtwisted_fleet::Etcd::connect(&address).await.unwrap()
    }

    /// A plain etcd client, to look at (or damage) keys directly.
    pub async fn raw_client(&self) -> etcd_client::Client {
        let urls: Vec<String> = self
            .endpoints()
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        etcd_client::Client::connect(urls, None).await.unwrap()
    }

    /// The index of the member that is the Raft leader now.
    pub async fn leader_index(&self) -> usize {
        for (index, member) in self.members.iter().enumerate() {
            let url = format!("http://127.0.0.1:{}", member.client_port);
            let mut client = etcd_client::Client::connect([url], None).await.unwrap();
            let status = client.status().await.unwrap();
            if status.leader() == status.header().unwrap().member_id() {
                return index;
            }
        }
        panic!("no member of the cluster is the leader:\n{}", self.logs());
    }
}

/// `len` bytes that do not compress or repeat (a xorshift stream from `seed`).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The built `fleet-member` example (`cargo test -p rtwisted-fleet` builds the examples).
pub fn member_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("examples").join("fleet-member");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p rtwisted-fleet` (which builds the examples), not only --test etcd",
        path.display()
    );
    path
}

/// A `fleet-member` process, killed on drop, whose output lines are read with a deadline.
pub struct MemberProcess {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl MemberProcess {
    /// Starts `fleet-member ADDRESS APP TTL [--campaign]`.
    pub fn start(address: &str, app: &str, ttl_seconds: u64, campaign: bool) -> MemberProcess {
        Self::start_with(address, app, ttl_seconds, campaign.then_some("--campaign"))
    }

    /// Starts `fleet-member ADDRESS APP TTL [MODE]`.
    pub fn start_with(
        address: &str,
        app: &str,
        ttl_seconds: u64,
        mode: Option<&str>,
    ) -> MemberProcess {
        let mut command = Command::new(member_example());
        command
            .arg(address)
            .arg(app)
            .arg(ttl_seconds.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(mode) = mode {
            command.arg(mode);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tell, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tell.send(line).is_err() {
                    break;
                }
            }
        });
        MemberProcess { child, lines }
    }

    /// The next line that starts with `word `, without it; panics past `deadline`.
    pub fn expect(&self, word: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(&format!("{word} ")) {
                        return rest.to_owned();
                    }
                }
                Err(_) => panic!("fleet-member said no '{word} ...' line within {deadline:?}"),
            }
        }
    }

    /// Every line said so far and not read yet.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The lines said until the process exits (within `deadline`).
    pub fn rest(&self, deadline: Duration) -> Vec<String> {
        let until = Instant::now() + deadline;
        let mut lines = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("fleet-member did not exit within {deadline:?}; said {lines:?}")
                }
            }
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap (a stopped process is killed too).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `rtap` binary at `program` with `args` in `folder`: no terminal to ask on, and no
/// store named by the environment.
pub fn run_rtap(program: &Path, folder: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(folder)
        .stdin(Stdio::null())
        .env_remove("RTWISTED_STORE")
        .output()
        .unwrap()
}

/// The binary `name` in `dir`; fails saying `how` to build it when it is missing.
pub fn binary_in(dir: &Path, name: &str, how: &str) -> PathBuf {
    let path = dir.join(name);
    assert!(path.is_file(), "{} is missing: {how}", path.display());
    path
}

/// Starts the `rtwistd` at `program` in the foreground in a new temporary folder, logging to
/// `rtwistd.log` there, with `args` after the harness's own; returns it and its folder.
pub fn spawn_rtwistd(program: &Path, args: &[&str]) -> (Child, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let child = Command::new(program)
        .args(["-n", "--pidfile", "", "--logfile", "rtwistd.log"])
        .args(args)
        .current_dir(folder.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("RTWISTED_STORE")
        .spawn()
        .unwrap();
    (child, folder)
}
