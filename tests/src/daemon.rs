//! A running binary whose stdout and stderr are read line by line, with deadlines: wait for
//! a line, signal it, stop it, collect everything it printed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::DEADLINE;

fn read_lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// A running `rtwistd`; killed when dropped.
pub struct Daemon {
    child: Child,
    lines: Receiver<String>,
    errors: Receiver<String>,
    seen: Vec<String>,
    seen_errors: Vec<String>,
}

impl Daemon {
    /// Takes over `child`, spawned with piped stdout and stderr.
    pub(crate) fn new(mut child: Child) -> Self {
        let lines = read_lines(child.stdout.take().unwrap());
        let errors = read_lines(child.stderr.take().unwrap());
        Daemon {
            child,
            lines,
            errors,
            seen: Vec::new(),
            seen_errors: Vec::new(),
        }
    }

    /// Waits (up to [`DEADLINE`]) for a stdout line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} within {DEADLINE:?}; saw {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let stderr: Vec<String> = self.errors.try_iter().collect();
                    panic!(
                        "rtwistd closed stdout before {needle:?}; saw {:#?}, stderr {stderr:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Waits for the "listening on ADDR" line and returns the address.
    pub fn listening_address(&mut self) -> SocketAddr {
        let line = self.wait_for_line("listening on ");
        let address = line.rsplit("listening on ").next().unwrap().trim();
        address.parse().unwrap()
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Sends SIGTERM and fails the test unless the process exits with 0; returns all of its
    /// stdout.
    pub fn stop(self) -> Vec<String> {
        self.signal(Signal::SIGTERM);
        let (status, out, err) = self.wait_exit();
        assert_eq!(status.code(), Some(0), "stdout {out:#?} stderr {err:#?}");
        out
    }

    /// Waits for the process to exit and fails the test unless it exited with `code` and a
    /// line of its stderr holds `needle`.
    pub fn wait_failure(self, code: i32, needle: &str) {
        let (status, out, err) = self.wait_exit();
        assert_eq!(status.code(), Some(code), "stdout {out:#?} stderr {err:#?}");
        assert!(err.iter().any(|l| l.contains(needle)), "{err:#?}");
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it; returns its status.
    pub fn kill(self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        self.wait_exit().0
    }

    /// Waits (up to [`DEADLINE`]) for the process to exit; returns its status, all of its
    /// stdout and all of its stderr.
    pub fn wait_exit(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let end = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < end,
                "rtwistd did not exit within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut out = std::mem::take(&mut self.seen);
        out.extend(drain(&self.lines));
        let mut err = std::mem::take(&mut self.seen_errors);
        err.extend(drain(&self.errors));
        (status, out, err)
    }
}

fn drain(receiver: &Receiver<String>) -> Vec<String> {
    // The reader threads end at EOF, which follows the exit closely.
    let mut lines = Vec::new();
    while let Ok(line) = receiver.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    lines
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
