//! Your own `rtwistd`, knowing your own service types and plugins: link the crate that defines
//! them and call `rtwisted_cli::rtwistd::main()`. This one adds a `sleeper` plugin whose
//! service takes `--stop-seconds` to stop (the black-box tests use it as a service that hangs).
//!
//! ```sh
//! cargo run --example custom_rtwistd -- -n sleeper --stop-seconds 2
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgMatches, Command};
use rtwisted_core::{Child, IntoChild, Service, ServiceError, StopContext};
use rtwisted_services::plugin::{PluginError, ServiceMaker};
use serde::{Deserialize, Serialize};

/// A service that takes its time to stop.
#[derive(Debug, Serialize, Deserialize)]
struct Sleeper {
    stop_seconds: u64,
}

rtwisted_core::register_type!(service Sleeper = "example.Sleeper", version 1);

#[typetag::serde(name = Sleeper::TAG)]
#[async_trait::async_trait]
impl Service for Sleeper {
    async fn stop(&mut self, _cx: &StopContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_secs(self.stop_seconds)).await;
        Ok(())
    }
}

fn options() -> Command {
    Command::new("sleeper").arg(
        Arg::new("stop-seconds")
            .long("stop-seconds")
            .value_parser(clap::value_parser!(u64))
            .default_value("3600"),
    )
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let sleeper = Sleeper {
        stop_seconds: options
            .get_one::<u64>("stop-seconds")
            .copied()
            .unwrap_or(3600),
    };
    Ok(sleeper.named("sleeper")?)
}

rtwisted_core::inventory::submit! {
    ServiceMaker {
        name: "sleeper",
        description: "A service that takes --stop-seconds to stop",
        options,
        make_service,
    }
}

fn main() -> ExitCode {
    rtwisted_cli::rtwistd::main()
}
