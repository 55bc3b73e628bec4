//! The snapshot store: save, load, log and gc times and the disk bytes per snapshot, for 10,
//! 1,000 and 10,000 snapshots of a small application; the folder's size against the kept bytes
//! when 3 MB snapshots are saved and collected (`gc --keep 10`) again and again; and, given
//! `RTAP=path/to/rtap`, how long `rtap store log` takes on 1,000 snapshots. Run with
//! `bash bench/store.sh`; prints JSON lines and a table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Instant;

use rtwisted_core::{Application, MultiService, Style};
use rtwisted_persist::store::{ReadStore, SledStore, Store, StoreAddress};

/// A snapshot of an application with `children` services (names `name_len` digits long) and
/// one more named `v{variant}`, so every save stores different bytes.
fn snapshot(children: usize, name_len: usize, variant: usize) -> Vec<u8> {
    let mut app = app_with(children, name_len);
    app.services_mut()
        .insert_named(format!("v{variant}"), Box::new(MultiService::new()))
        .unwrap();
    rtwisted_persist::encode(&app, Style::Tap).unwrap().0
}

fn app_with(children: usize, name_len: usize) -> Application {
    let mut app = Application::new("bench").unwrap();
    for child in 0..children {
        let name = format!("{child:0width$}", width = name_len);
        app.services_mut()
            .insert_named(name, Box::new(MultiService::new()))
            .unwrap();
    }
    app
}

/// Bytes on disk under `dir` (allocated blocks, as `du` counts them).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                stack.push(entry.path());
            } else {
                total += metadata.blocks() * 512;
            }
        }
    }
    total
}

fn median_ms(runs: usize, mut work: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            work();
            began.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let rtap = std::env::var_os("RTAP");
    let mut rows = Vec::new();
    for count in [10usize, 1_000, 10_000] {
        let folder = tempfile::tempdir().unwrap();
        let dir = folder.path().join("store");
        let store = SledStore::open_or_create(&dir).unwrap();
        let bytes: Vec<Vec<u8>> = (0..count).map(|i| snapshot(10, 8, i)).collect();
        let snapshot_bytes = bytes.iter().map(Vec::len).sum::<usize>() / count;
        let began = Instant::now();
        for snapshot in &bytes {
            store.put("bench", snapshot, None).unwrap();
        }
        let save_ms = began.elapsed().as_secs_f64() * 1000.0 / count as f64;
        drop(store);
        let disk = disk_bytes(&dir);
        let log_ms = median_ms(5, || {
            let entries = ReadStore::open(&dir).unwrap().log("bench").unwrap();
            assert_eq!(entries.len(), count);
        });
        let load_ms = median_ms(5, || {
            ReadStore::open(&dir)
                .unwrap()
                .get(&StoreAddress::latest("bench"))
                .unwrap();
        });
        let open_ms = median_ms(5, || drop(SledStore::open(&dir).unwrap()));
        let rtap_log_ms = rtap.as_ref().filter(|_| count == 1_000).map(|rtap| {
            median_ms(9, || {
                let output = std::process::Command::new(rtap)
                    .args(["store", "log", "bench", "--store"])
                    .arg(&dir)
                    .output()
                    .unwrap();
                assert!(output.status.success());
            })
        });
        let began = Instant::now();
        let store = SledStore::open(&dir).unwrap();
        store.gc("bench", 10).unwrap();
        drop(store);
        let gc_ms = began.elapsed().as_secs_f64() * 1000.0;
        let after_gc = disk_bytes(&dir);
        let row = serde_json::json!({
            "snapshots": count,
            "snapshot_bytes": snapshot_bytes,
            "save_ms": save_ms,
            "load_ms": load_ms,
            "log_ms": log_ms,
            "writer_open_ms": open_ms,
            "rtap_store_log_ms": rtap_log_ms,
            "gc_keep_10_ms": gc_ms,
            "disk_bytes_per_snapshot": disk / count as u64,
            "disk_bytes_after_gc": after_gc,
        });
        println!("{row}");
        rows.push(row);
    }

    // Steady state: 3 MB snapshots saved and collected with --keep 10.
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("store");
    let saves = 200;
    let mut kept_bytes = 0u64;
    let mut worst_ratio: f64 = 0.0;
    let mut size = 0;
    for i in 0..saves {
        let bytes = snapshot(40_000, 48, i);
        size = bytes.len();
        let store = SledStore::open_or_create(&dir).unwrap();
        store.put("bench", &bytes, None).unwrap();
        store.gc("bench", 10).unwrap();
        kept_bytes = store.log("bench").unwrap().iter().map(|e| e.size).sum();
        drop(store);
        if i >= 10 {
            worst_ratio = worst_ratio.max(disk_bytes(&dir) as f64 / kept_bytes as f64);
        }
    }
    let steady = serde_json::json!({
        "steady_state_saves": saves,
        "snapshot_bytes": size,
        "kept_bytes": kept_bytes,
        "folder_bytes": disk_bytes(&dir),
        "worst_folder_to_kept_ratio": worst_ratio,
    });
    println!("{steady}");

    println!();
    println!(
        "| snapshots | save | load | log | writer open | gc --keep 10 | disk bytes / snapshot |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {} |",
            row["snapshots"],
            row["save_ms"].as_f64().unwrap(),
            row["load_ms"].as_f64().unwrap(),
            row["log_ms"].as_f64().unwrap(),
            row["writer_open_ms"].as_f64().unwrap(),
            row["gc_keep_10_ms"].as_f64().unwrap(),
            row["disk_bytes_per_snapshot"],
        );
    }
}
