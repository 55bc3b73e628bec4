//! A fleet member in a process of its own, for the tests that kill or pause one:
//! `fleet-member ADDRESS APP TTL_SECONDS [--campaign | --checkpoint]`.
//!
//! Registers as a member of APP under a lease of TTL_SECONDS and prints `member ID`; with
//! `--campaign` it then stands for election and prints `leader REVISION` once it leads. With
//! `--checkpoint` it also checkpoints into the store under its fence every 200 ms, printing
//! `saved N`; once it sees its lease lost it prints `lost` and tries one more write anyway, to
//! show etcd refuses it (`fenced`), then exits. Otherwise it waits (at most two minutes, so a
//! forgotten one ends by itself) to be killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rtwisted_fleet::{
    Election, Etcd, EtcdAddress, EtcdStore, FleetError, Leader, MemberInfo, Save, members,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(address), Some(app), Some(ttl)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: fleet-member ADDRESS APP TTL_SECONDS [--campaign]");
        return ExitCode::from(2);
    };
    let checkpoint = args.get(3).is_some_and(|a| a == "--checkpoint");
    let campaign = checkpoint || args.get(3).is_some_and(|a| a == "--campaign");
    let Ok(ttl) = ttl.parse::<u64>().map(Duration::from_secs) else {
        eprintln!("fleet-member: TTL_SECONDS must be a whole number, not '{ttl}'");
        return ExitCode::from(2);
    };
    match run(address, app, ttl, campaign, checkpoint).await {
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
    checkpoint: bool,
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
        if checkpoint {
            return checkpoints(&EtcdStore::new(etcd), app, &leader).await;
        }
        Some(leader)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(120)).await;
    Ok(())
}

/// Checkpoints under the leader's fence until the lease is lost; then one more, refused.
async fn checkpoints(
    store: &EtcdStore,
    app: &str,
    leader: &Leader,
) -> Result<(), Box<dyn std::error::Error>> {
    let save = Save {
        fence: Some(leader.fence()),
        ..Save::default()
    };
    for round in 0..600u32 {
        let current = leader.is_current();
        if !current {
            say("lost");
        }
        let bytes = format!("checkpoint {round} by {}", std::process::id());
        match store.save(app, bytes.as_bytes(), &save).await {
            Ok(entry) => say(&format!("saved {}", entry.number)),
            Err(FleetError::Fenced { .. }) => {
                say("fenced");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        if !current {
            return Err("a write after the lease was lost was accepted".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
