//! The `kv` plugin: a memcached (text protocol) key-value server on a strports endpoint, whose
//! data lives in the snapshot.

use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::net::StreamServer;
use crate::protocols::kv::Kv;
use crate::strports::ServerEndpoint;
use rtwisted_core::Child;

/// The kv plugin's default endpoint: memcached's well-known port.
pub const DEFAULT_PORT: &str = "tcp:11211";

/// The default `--max-value-size`: [`DEFAULT_MAX_VALUE_BYTES`](crate::protocols::kv::DEFAULT_MAX_VALUE_BYTES), 1 MiB.
const DEFAULT_MAX_VALUE_SIZE: &str = "1048576";

/// The largest `--max-value-size` accepted: 1 GiB (each connection may hold one value of this
/// size in memory while it arrives).
const MAX_MAX_VALUE_BYTES: u64 = 1 << 30;

fn options() -> Command {
    Command::new("kv")
        .arg(
            Arg::new("port")
                .long("port")
                .short('p')
                .value_name("STRPORT")
                .default_value(DEFAULT_PORT)
                .value_parser(ServerEndpoint::parse)
                .help(
                    "Where to listen, as a strports description (tcp:11211, tcp:0:interface=127.0.0.1)",
                ),
        )
        .arg(
            Arg::new("max-value-size")
                .long("max-value-size")
                .value_name("BYTES")
                .default_value(DEFAULT_MAX_VALUE_SIZE)
                .value_parser(clap::value_parser!(u64).range(0..=MAX_MAX_VALUE_BYTES))
                .help("The largest value a client may store, in bytes (at most 1073741824)"),
        )
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let endpoint = super::classic::port(options)?;
    let max_value_bytes = options
        .get_one::<u64>("max-value-size")
        .copied()
        .ok_or(PluginError::Option {
            option: "max-value-size",
            message: "missing".into(),
        })
        .and_then(|bytes| {
            usize::try_from(bytes).map_err(|_| PluginError::Option {
                option: "max-value-size",
                message: format!("{bytes} is too large for this machine"),
            })
        })?;
    Ok(Child::named(
        "kv",
        Box::new(StreamServer::new(
            endpoint,
            Arc::new(Kv::new(max_value_bytes)),
        )),
    )?)
}

inventory::submit! {
    ServiceMaker {
        name: "kv",
        description: "A key-value server speaking the memcached text protocol; its data lives in the snapshot",
        options,
        make_service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::kv::DEFAULT_MAX_VALUE_BYTES;

    fn build(args: &[&str]) -> Result<Child, String> {
        let maker = super::super::find("kv").unwrap();
        let matches = maker
            .command()
            .try_get_matches_from(std::iter::once("kv").chain(args.iter().copied()))
            .map_err(|error| error.to_string())?;
        (maker.make_service)(&matches).map_err(|error| error.to_string())
    }

    fn json(child: &Child) -> serde_json::Value {
        serde_json::to_value(child).unwrap()
    }

    #[test]
    fn kv_plugin_defaults_to_memcached_port_and_one_mebibyte() {
        let service = json(&build(&[]).unwrap());
        assert_eq!(service["name"], "kv");
        assert_eq!(service["endpoint"], "tcp:11211");
        assert_eq!(service["factory"]["type"], "rtwisted.Kv");
        assert_eq!(service["factory"]["max_value_bytes"], 1_048_576);
        assert_eq!(DEFAULT_MAX_VALUE_SIZE, DEFAULT_MAX_VALUE_BYTES.to_string());
        assert_eq!(service["factory"]["table"]["items"], serde_json::json!([]));
    }

    #[test]
    fn kv_plugin_takes_a_port_and_a_value_size() {
        let service = build(&[
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--max-value-size",
            "10",
        ]);
        let service = json(&service.unwrap());
        assert_eq!(service["endpoint"], "tcp:0:interface=127.0.0.1");
        assert_eq!(service["factory"]["max_value_bytes"], 10);
    }

    #[test]
    fn kv_plugin_refuses_bad_options() {
        for args in [
            &["--port", "tcp:70000"][..],
            &["--max-value-size", "-1"],
            &["--max-value-size", "big"],
            &["--max-value-size", "1073741825"],
        ] {
            assert!(build(args).is_err(), "{args:?}");
        }
    }
}
