//! Save and load of trees of 1,000, 10,000 and 100,000 services, in both styles: time, bytes
//! written, and peak heap (measured by a counting allocator around each operation). Run with
//! `cargo bench -p rtwisted-persist --bench snapshots`; prints a table and JSON lines.
//!
//! Two trees: `echo` (stream servers with the echo factory, the common case) and `mixed` (every
//! fifth service each of: echo server, kv server, port forward, timer, UDP echo), so types read
//! through typetag's generic path are measured too.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rtwisted_core::{Application, Child, IntoChild, MultiService, Style};
use rtwisted_services::net::{DatagramServer, StreamServer};
use rtwisted_services::protocols::{Echo, Kv, PortForward};
use rtwisted_services::timer::{LogLine, TimerService};

// Snapshots go through the built-in types' fast path, as in rtap and rtwistd.
rtwisted_core::inventory::submit! {
    rtwisted_persist::codec::Registered(
        &rtwisted_persist::codec::CatalogCodec::<rtwisted_services::codec::BuiltIns>::NEW,
    )
}

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work`, returning its result, the time it took (best of `runs`) and the peak heap it
/// added above what was live before it.
fn measure<T>(runs: usize, mut work: impl FnMut() -> T) -> (T, f64, usize) {
    let mut best = f64::MAX;
    let mut peak = 0;
    let mut last = None;
    for _ in 0..runs {
        drop(last.take());
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let began = Instant::now();
        let value = work();
        best = best.min(began.elapsed().as_secs_f64() * 1000.0);
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
        last = Some(value);
    }
    (last.unwrap(), best, peak)
}

fn tree(services: usize, mixed: bool) -> Application {
    let mut app = Application::new("bench").unwrap();
    // 100 collections of services, so the tree has depth as well as breadth.
    let groups = 100.min(services);
    let mut collections: Vec<MultiService> = (0..groups).map(|_| MultiService::new()).collect();
    for i in 0..services - groups {
        let port = 1024 + i % 60000;
        let tcp = || format!("tcp:{port}:interface=127.0.0.1").parse().unwrap();
        let name = format!("s{i}");
        let service: Child = match (mixed, i % 5) {
            (false, _) | (true, 0) => StreamServer::new(tcp(), Arc::new(Echo::default()))
                .named(name)
                .unwrap(),
            (true, 1) => StreamServer::new(tcp(), Arc::new(Kv::default()))
                .named(name)
                .unwrap(),
            (true, 2) => {
                let dest = format!("tcp:host=127.0.0.1:port={port}").parse().unwrap();
                StreamServer::new(tcp(), Arc::new(PortForward::new(dest)))
                    .named(name)
                    .unwrap()
            }
            (true, 3) => TimerService::new(
                60.0,
                Arc::new(LogLine {
                    message: name.clone(),
                }),
            )
            .unwrap()
            .named(name)
            .unwrap(),
            (true, _) => {
                let udp = format!("udp:{port}:interface=127.0.0.1").parse().unwrap();
                DatagramServer::new(udp, Arc::new(Echo::default()))
                    .named(name)
                    .unwrap()
            }
        };
        collections[i % groups].insert(service).unwrap();
    }
    for (g, collection) in collections.into_iter().enumerate() {
        app.services_mut()
            .insert_named(format!("group{g}"), Box::new(collection))
            .unwrap();
    }
    app
}

fn main() {
    let dir = std::env::temp_dir().join(format!("rtwisted-bench-snapshots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{:>8} {:>6} {:>5} {:>12} {:>10} {:>10} {:>13} {:>13}",
        "services", "tree", "style", "bytes", "save ms", "load ms", "save peak MB", "load peak MB"
    );
    let mut rows = Vec::new();
    let sizes = [
        (1_000usize, false),
        (10_000, false),
        (100_000, false),
        (100_000, true),
    ];
    for (services, mixed) in sizes {
        let app = tree(services, mixed);
        let kind = if mixed { "mixed" } else { "echo" };
        for style in [Style::Tap, Style::Tas] {
            let path = dir.join(format!("bench-{services}-{kind}.{}", style.extension()));
            let runs = if services >= 100_000 { 3 } else { 10 };
            let (header, save_ms, save_peak) =
                measure(runs, || rtwisted_persist::save(&app, &path, style).unwrap());
            drop(header);
            let bytes = std::fs::metadata(&path).unwrap().len();
            let (loaded, load_ms, load_peak) =
                measure(runs, || rtwisted_persist::load(&path).unwrap());
            assert_eq!(loaded.app.services().len(), app.services().len());
            drop(loaded);
            let mb = |b: usize| b as f64 / 1e6;
            println!(
                "{services:>8} {kind:>6} {:>5} {bytes:>12} {save_ms:>10.1} {load_ms:>10.1} {:>13.1} {:>13.1}",
                style.extension(),
                mb(save_peak),
                mb(load_peak)
            );
            rows.push(format!(
                "{{\"services\":{services},\"tree\":\"{kind}\",\"style\":\"{}\",\"bytes\":{bytes},\"save_ms\":{save_ms:.2},\"load_ms\":{load_ms:.2},\"save_peak_bytes\":{save_peak},\"load_peak_bytes\":{load_peak}}}",
                style.extension()
            ));
        }
    }
    println!("[{}]", rows.join(","));
    let _ = std::fs::remove_dir_all(&dir);
}
