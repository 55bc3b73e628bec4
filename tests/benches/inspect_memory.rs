//! Peak memory of `rtap inspect` on large and hostile snapshots, and the time to open a
//! snapshot encrypted with the default work factor. Run with `bash bench/inspect_memory.sh`,
//! which builds the release binaries first. Peak RSS is `/usr/bin/time -v`'s "Maximum resident
//! set size"; the reference in the same run is `rtap inspect` of a one-service snapshot.
//!
//! The snapshots are written here byte by byte (MessagePack and the tap framing), as a foreign
//! writer would: a kv table of 1,000,000 items, an array of 1,000,000 nils in a field of a type
//! this binary does not link, and a tree whose `children` are 1,000,000 nils.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// A tiny MessagePack writer: just what these snapshots need.
#[derive(Default)]
struct Pack(Vec<u8>);

impl Pack {
    fn map(&mut self, len: u32) -> &mut Self {
        if len < 16 {
            self.0.push(0x80 | len as u8);
        } else {
            self.0.push(0xdf);
            self.0.extend_from_slice(&len.to_be_bytes());
        }
        self
    }
    fn array(&mut self, len: u32) -> &mut Self {
        if len < 16 {
            self.0.push(0x90 | len as u8);
        } else {
            self.0.push(0xdd);
            self.0.extend_from_slice(&len.to_be_bytes());
        }
        self
    }
    fn str(&mut self, text: &str) -> &mut Self {
        let len = text.len();
        if len < 32 {
            self.0.push(0xa0 | len as u8);
        } else {
            self.0.push(0xd9);
            self.0.push(len as u8);
        }
        self.0.extend_from_slice(text.as_bytes());
        self
    }
    fn bin(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.push(0xc4);
        self.0.push(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
        self
    }
    fn uint(&mut self, n: u64) -> &mut Self {
        if n < 128 {
            self.0.push(n as u8);
        } else {
            self.0.push(0xcf);
            self.0.extend_from_slice(&n.to_be_bytes());
        }
        self
    }
    fn nil(&mut self) -> &mut Self {
        self.0.push(0xc0);
        self
    }
}

/// A tap file: magic, version, lengths, header, payload, SHA-256.
fn seal(app: &str, manifest: &[(&str, &str, u64)], payload: &[u8]) -> Vec<u8> {
    let mut header = Pack::default();
    header
        .map(5)
        .str("style")
        .str("tap")
        .str("app")
        .str(app)
        .str("created")
        .str("2026-12-01T00:00:00Z")
        .str("producer")
        .str("rtwisted 0.1.0")
        .str("manifest")
        .array(manifest.len() as u32);
    for (tag, kind, version) in manifest {
        header
            .map(3)
            .str("type")
            .str(tag)
            .str("kind")
            .str(kind)
            .str("version")
            .uint(*version);
    }
    let mut bytes = b"\x89RTWTAP\n".to_vec();
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&(header.0.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    bytes.extend_from_slice(&header.0);
    bytes.extend_from_slice(payload);
    let sum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&sum);
    bytes
}

/// The start of an application: name, process and persistence settings, then `services`.
fn application(pack: &mut Pack, name: &str) {
    pack.map(4)
        .str("name")
        .str(name)
        .str("process")
        .map(4)
        .str("uid")
        .nil()
        .str("gid")
        .nil()
        .str("process_name")
        .nil()
        .str("umask")
        .nil()
        .str("persistence")
        .map(2)
        .str("style")
        .str("tap")
        .str("file_name")
        .nil()
        .str("services");
}

fn kv_snapshot(items: u32) -> Vec<u8> {
    let mut pack = Pack::default();
    application(&mut pack, "big");
    pack.map(2)
        .str("name")
        .nil()
        .str("children")
        .array(1)
        .map(4)
        .str("type")
        .str("rtwisted.StreamServer")
        .str("name")
        .str("kv")
        .str("endpoint")
        .str("tcp:11211")
        .str("factory")
        .map(3)
        .str("type")
        .str("rtwisted.Kv")
        .str("max_value_bytes")
        .uint(1 << 20)
        .str("table")
        .map(2)
        .str("next_cas")
        .uint(u64::from(items) + 1)
        .str("items")
        .array(items);
    for item in 0..items {
        pack.map(5)
            .str("key")
            .bin(format!("k{item:07}").as_bytes())
            .str("flags")
            .uint(0)
            .str("expires_at")
            .uint(0)
            .str("cas")
            .uint(u64::from(item) + 1)
            .str("value")
            .bin(&[(item % 251) as u8, 0xff, 0, 7]);
    }
    seal(
        "big",
        &[
            ("rtwisted.Kv", "factory", 2),
            ("rtwisted.MultiService", "service", 1),
            ("rtwisted.StreamServer", "service", 1),
        ],
        &pack.0,
    )
}

/// A service of a type this binary does not link, with a field of `count` nils.
fn nils_in_a_field(count: u32) -> Vec<u8> {
    let mut pack = Pack::default();
    application(&mut pack, "nils");
    pack.map(2)
        .str("name")
        .nil()
        .str("children")
        .array(1)
        .map(3)
        .str("type")
        .str("acme.Nils")
        .str("name")
        .str("n")
        .str("nils")
        .array(count);
    for _ in 0..count {
        pack.nil();
    }
    seal(
        "nils",
        &[
            ("acme.Nils", "service", 1),
            ("rtwisted.MultiService", "service", 1),
        ],
        &pack.0,
    )
}

/// A tree whose children are `count` nils.
fn nil_children(count: u32) -> Vec<u8> {
    let mut pack = Pack::default();
    application(&mut pack, "nils");
    pack.map(2).str("name").nil().str("children").array(count);
    for _ in 0..count {
        pack.nil();
    }
    seal("nils", &[("rtwisted.MultiService", "service", 1)], &pack.0)
}

/// Runs `rtap ARGS` under `/usr/bin/time -v`; returns (exit code, peak RSS in MB, seconds).
fn measure(rtap: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, f64, f64) {
    let start = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(rtap)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kbytes: f64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .unwrap_or_else(|| panic!("no RSS in {stderr}"))
        .trim()
        .parse()
        .unwrap();
    (output.status.code().unwrap_or(-1), kbytes / 1000.0, seconds)
}

fn main() {
    let rtap = rtwisted_tests::release_bin_dir().join("rtap");
    assert!(
        rtap.exists(),
        "{} is missing: run bash bench/inspect_memory.sh",
        rtap.display()
    );
    let folder = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { folder.path().join(name) };
    let write = |name: &str, bytes: Vec<u8>| {
        let size = bytes.len();
        std::fs::write(path(name), bytes).unwrap();
        size
    };
    let status = Command::new(&rtap)
        .args(["save", "echo", "-o"])
        .arg(path("echo.tap"))
        .status()
        .unwrap();
    assert!(status.success());
    let sizes = [
        (
            "echo.tap",
            std::fs::metadata(path("echo.tap")).unwrap().len() as usize,
        ),
        ("kv-1m.tap", write("kv-1m.tap", kv_snapshot(1_000_000))),
        (
            "nils-field.tap",
            write("nils-field.tap", nils_in_a_field(1_000_000)),
        ),
        (
            "nils-children.tap",
            write("nils-children.tap", nil_children(1_000_000)),
        ),
    ];
    println!("| snapshot | size | rtap inspect | rtap inspect --json | exit |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, size) in sizes {
        let file = path(name);
        let file = file.to_str().unwrap();
        let (code, text_rss, _) = measure(&rtap, &["inspect", file], &[]);
        let (_, json_rss, _) = measure(&rtap, &["inspect", "--json", file], &[]);
        println!(
            "| {name} | {:.1} MB | {text_rss:.1} MB | {json_rss:.1} MB | {code} |",
            size as f64 / 1e6
        );
    }

    // Encryption at the default work factor: save, then the time and memory of one load.
    std::fs::write(path("pass"), "a passphrase\n").unwrap();
    let pass = path("pass");
    let pass = pass.to_str().unwrap();
    let encrypted = path("echo.etap");
    let status = Command::new(&rtap)
        .args(["save", "echo", "--encrypt", "--passphrase-file", pass, "-o"])
        .arg(&encrypted)
        .env_remove("RTWISTED_SCRYPT_WORK_FACTOR")
        .status()
        .unwrap();
    assert!(status.success());
    let (code, rss, seconds) = measure(
        &rtap,
        &[
            "inspect",
            encrypted.to_str().unwrap(),
            "--passphrase-file",
            pass,
        ],
        &[],
    );
    let (_, plain_rss, plain_seconds) =
        measure(&rtap, &["inspect", path("echo.tap").to_str().unwrap()], &[]);
    println!();
    println!("| load | time | peak RSS | exit |");
    println!("| --- | ---: | ---: | ---: |");
    println!("| echo.etap, default work factor (17) | {seconds:.2} s | {rss:.1} MB | {code} |");
    println!("| echo.tap, plain (reference) | {plain_seconds:.2} s | {plain_rss:.1} MB | 0 |");
}
