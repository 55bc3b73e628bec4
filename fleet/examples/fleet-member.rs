//! A fleet member in a process of its own, for the tests that kill one:
//! `fleet-member ADDRESS APP TTL_SECONDS [--campaign]`.
//!
//! Registers as a member of APP under a lease of TTL_SECONDS and prints `member ID`; with
//! `--campaign` it then stands for election and prints `leader REVISION` once it leads. Then
//! it waits (at most two minutes, so a forgotten one ends by itself) to be killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rtwisted_fleet::{Election, Etcd, EtcdAddress, MemberInfo, members};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(address), Some(app), Some(ttl)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: fleet-member ADDRESS APP TTL_SECONDS [--campaign]");
        return ExitCode::from(2);
    };
    let campaign = args.get(3).is_some_and(|a| a == "--campaign");
    let Ok(ttl) = ttl.parse::<u64>().map(Duration::from_secs) else {
        eprintln!("fleet-member: TTL_SECONDS must be a whole number, not '{ttl}'");
        return ExitCode::from(2);
    };
    match run(address, app, ttl, campaign).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fleet-member: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    address: &str,
    app: &str,
    ttl: Duration,
    campaign: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let address: EtcdAddress = address.parse()?;
    let etcd = Etcd::connect(&address).await?;
    let info = MemberInfo {
        host: "test-host".to_owned(),
        pid: std::process::id(),
        snapshot: Some(format!("{app}@1")),
        state: if campaign { "standby" } else { "running" }.to_owned(),
        last_checkpoint: None,
    };
    let membership = members::register(&etcd, app, &info, ttl).await?;
    say(&format!("member {}", membership.id()));
    let _leader = if campaign {
        let leader = Election::new(&etcd, app)?
            .campaign(membership.id(), ttl)
            .await?;
        say(&format!("leader {}", leader.fence().revision));
        Some(leader)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(120)).await;
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
