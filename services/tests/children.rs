//! Child processes of services are reaped by the runtime rtwistd runs them on, even when a
//! service drops its handle without waiting. (rtwistd installs no blanket `waitpid(-1)` reaper:
//! it would steal the exit status of children that services wait for themselves.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            zombies.push(pid);
        }
    }
    zombies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_whose_handles_were_dropped_are_reaped() {
    for _ in 0..5 {
        let child = tokio::process::Command::new("true").spawn().unwrap();
        drop(child);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Any later SIGCHLD (here: one more child that is waited for) drives the reaping.
        tokio::process::Command::new("true").status().await.unwrap();
        if zombie_children().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zombies left: {:?}",
            zombie_children()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
