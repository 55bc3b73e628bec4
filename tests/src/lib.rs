//! The harness for rtwisted's black-box tests: find the built `rtap` and `rtwistd`, run them in
//! a scratch folder, read their output with deadlines, and send them signals.
//!
//! The binaries are built by `cargo test --workspace` (the cli crate's own tests need them), and
//! found beside this test executable's folder, in `target/<profile>/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod checks;
mod daemon;
pub mod load;
mod memcache;
mod snapshots;
mod systemd;

pub use checks::{
    echo_backend, fails_with, fails_with_one_line, file_names, nobody_when_root, root_or_skip,
    run_ok, service_address, service_status,
};
pub use daemon::Daemon;
pub use memcache::{Item, MemcacheClient, memcache_get, memcache_request, memcache_store};
pub use snapshots::{foreign_snapshot, reseal_tas};
pub use systemd::{NotifySocket, socket_activated};

/// The endpoint the tests' servers listen on: an ephemeral port on loopback.
pub const LOOPBACK: &str = "tcp:0:interface=127.0.0.1";

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The path of a built binary of the workspace.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// Where the benchmarks find the release binaries: `RTWISTED_BIN_DIR`, else `target/release`.
pub fn release_bin_dir() -> PathBuf {
    std::env::var_os("RTWISTED_BIN_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"),
        PathBuf::from,
    )
}

/// A loopback TCP port free a moment ago (for servers that cannot take port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of a built example of the workspace (`cargo test` builds them).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// Polls `condition` every 10 ms until it holds or [`DEADLINE`] passes; returns whether it
/// held.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True once process `pid` has exited (gone, or a zombie waiting for its parent).
pub fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The PID in a pidfile.
pub fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: i32, signal: Signal) {
    kill(Pid::from_raw(pid), signal).unwrap();
}

/// Waits for a line containing `needle` in the file at `path` and returns it.
pub fn wait_for_log_line(path: &Path, needle: &str) -> String {
    let mut found = None;
    let ok = eventually(|| {
        found = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.lines().find(|l| l.contains(needle)).map(str::to_owned));
        found.is_some()
    });
    assert!(
        ok,
        "no line with {needle:?} in {} within {DEADLINE:?}: {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
    found.unwrap()
}

/// The address in the first "listening on ADDR" line of a log file.
pub fn logged_address(path: &Path) -> SocketAddr {
    let line = wait_for_log_line(path, "listening on ");
    line.rsplit("listening on ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A scratch folder that the binaries run in.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A new empty folder.
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command for a workspace binary, running in this folder with a quiet environment.
    pub fn command(&self, name: &str) -> Command {
        self.command_at(&binary(name))
    }

    /// A command for the program at `program`, set up as [`Scratch::command`] sets up the
    /// workspace's binaries: in a session of its own, so it has no controlling terminal and
    /// nothing it runs can prompt on the terminal of whoever runs the tests.
    pub fn command_at(&self, program: &Path) -> Command {
        let mut command = without_terminal(Command::new(program));
        command
            .current_dir(self.path())
            .env_remove("RTWISTD_LOG")
            .env_remove("RTWISTED_PASSPHRASE")
            .env_remove("EDITOR")
            .env_remove("VISUAL")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RTWISTD_SYSLOG_SOCKET")
            // A cheap scrypt work factor: encrypted tests stay fast.
            .env("RTWISTED_SCRYPT_WORK_FACTOR", "10")
            .stdin(Stdio::null());
        command
    }

    /// Runs `rtwistd` with `args` until it returns (in daemon mode: once the daemon started).
    pub fn rtwistd(&self, args: &[&str]) -> Output {
        self.command("rtwistd").args(args).output().unwrap()
    }

    /// Runs `rtap` with `args` to completion.
    pub fn rtap(&self, args: &[&str]) -> Output {
        self.command("rtap").args(args).output().unwrap()
    }

    /// Runs `rtap` with `args` and fails the test, showing stderr, unless it succeeds.
    pub fn rtap_ok(&self, args: &[&str]) -> Output {
        let output = self.rtap(args);
        assert!(
            output.status.success(),
            "rtap {args:?} failed: {}",
            text(&output.stderr)
        );
        output
    }

    /// Runs `rtap save PLUGIN --port LOOPBACK EXTRA...`: a snapshot of `plugin` listening on
    /// an ephemeral loopback port, saved as `EXTRA` says (`--store DIR`, `--style tas`, ...).
    pub fn save_on_loopback(&self, plugin: &str, extra: &[&str]) -> Output {
        let mut args = vec!["save", plugin, "--port", LOOPBACK];
        args.extend_from_slice(extra);
        self.rtap_ok(&args)
    }

    /// Saves `plugin` with [`Scratch::save_on_loopback`] as `PLUGIN.tap`, then starts
    /// `rtwistd -n -f PLUGIN.tap EXTRA...`.
    pub fn spawn_saved(&self, plugin: &str, extra: &[&str]) -> Daemon {
        self.save_on_loopback(plugin, &[]);
        let file = format!("{plugin}.tap");
        let mut args = vec!["-n", "-f", &file];
        args.extend_from_slice(extra);
        self.spawn_rtwistd(&args)
    }

    /// [`Scratch::spawn_saved`], once it listens; the daemon and its address.
    pub fn serve_saved(&self, plugin: &str, extra: &[&str]) -> (Daemon, SocketAddr) {
        let mut daemon = self.spawn_saved(plugin, extra);
        let address = daemon.listening_address();
        (daemon, address)
    }

    /// Relaunches kv from `file` (`rtwistd -n -o -f FILE`), fails the test unless it serves
    /// `value` for `key`, and stops it.
    pub fn assert_relaunch_serves(&self, file: &str, key: &str, value: &str) {
        let mut relaunched = self.spawn_rtwistd(&["-n", "-o", "-f", file]);
        let address = relaunched.listening_address();
        assert_eq!(memcache_get(address, key).as_deref(), Some(value), "{file}");
        relaunched.stop();
    }

    /// Stores `key` = `value` in the running kv `daemon`, waits until its checkpoint
    /// `kv-checkpoint.tap` holds the key (a timer's: no signal asks for it), kills the daemon
    /// as a crash would, and checks that a relaunch from the checkpoint serves the value.
    pub fn assert_checkpoint_outlives_a_crash(&self, mut daemon: Daemon, key: &str, value: &str) {
        memcache_store(daemon.listening_address(), key, value);
        let file = "kv-checkpoint.tap";
        self.wait_until_inspection_contains(file, &format!("\"{key}\""));
        daemon.kill();
        self.assert_relaunch_serves(file, key, value);
    }

    /// Runs `rtap inspect --json FILE` and parses the document.
    pub fn inspect_json(&self, file: &str) -> serde_json::Value {
        self.inspect_json_with(&[file])
    }

    /// Runs `rtap inspect --json` with `args` (a file, or an address and `--store DIR`) and
    /// parses the document.
    pub fn inspect_json_with(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["inspect", "--json"];
        all.extend_from_slice(args);
        let output = self.rtap_ok(&all);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Waits (up to [`DEADLINE`]) until `rtap inspect --json FILE` succeeds and its output
    /// contains `needle`: a checkpoint being written in the background holds what it should.
    pub fn wait_until_inspection_contains(&self, file: &str, needle: &str) {
        let holds = || {
            let output = self.rtap(&["inspect", "--json", file]);
            output.status.success() && text(&output.stdout).contains(needle)
        };
        assert!(eventually(holds), "{file} never held {needle:?}");
    }

    /// Starts `rtwistd` with `args`, its stdout read line by line.
    pub fn spawn_rtwistd(&self, args: &[&str]) -> Daemon {
        self.spawn(self.command("rtwistd").args(args))
    }

    /// Starts `command`, its stdout and stderr read line by line.
    pub fn spawn(&self, command: &mut Command) -> Daemon {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Daemon::new(child)
    }
}

/// `command`, set to start in a new session: it has no controlling terminal, so `/dev/tty` does
/// not open for it or for anything it starts, and it leads its own process group.
pub fn without_terminal(mut command: Command) -> Command {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; setsid(2) is one, and nothing is allocated or locked.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    command
}

/// Bytes as text, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Connects to `address`, sends `payload`, closes the sending side and returns all it gets back.
pub fn exchange(address: SocketAddr, payload: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(payload).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    received
}

/// A file of the repository (examples, golden snapshots), by its path from the root.
pub fn repository_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every node of an `rtap inspect --json` tree, depth-first.
pub fn nodes(root: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = vec![root];
    if let Some(children) = root["children"].as_array() {
        for child in children {
            out.extend(nodes(child));
        }
    }
    out
}
