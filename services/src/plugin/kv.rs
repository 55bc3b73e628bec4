//! The `kv` plugin: a memcached-compatible key-value server (text, meta and binary protocols)
//! on a strports endpoint, whose data lives in the snapshot.

use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::net::StreamServer;
use crate::protocols::kv::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MEMORY_LIMIT_MB, Kv};
use crate::strports::ServerEndpoint;
use rtwisted_core::Child;

/// The kv plugin's default endpoint: memcached's well-known port.
pub const DEFAULT_PORT: &str = "tcp:11211";

/// The default `--max-value-size`: [`DEFAULT_MAX_VALUE_BYTES`](crate::protocols::kv::DEFAULT_MAX_VALUE_BYTES), 1 MiB.
const DEFAULT_MAX_VALUE_SIZE: &str = "1048576";

/// The largest `--max-value-size` accepted: 1 GiB (each connection may hold one value of this
/// size in memory while it arrives).
const MAX_MAX_VALUE_BYTES: u64 = 1 << 30;

/// The largest `--memory-limit`: 1 TiB, in MiB.
const MAX_MEMORY_LIMIT_MB: u64 = 1 << 20;

/// The listen backlog of the kv plugin unless the endpoint names one: memcached's 1024, so a
/// burst of connects is not throttled.
pub const KV_BACKLOG: u32 = 1024;

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
        .arg(
            Arg::new("memory-limit")
                .long("memory-limit")
                .short('m')
                .value_name("MB")
                .default_value("64")
                .value_parser(clap::value_parser!(u64).range(1..=MAX_MEMORY_LIMIT_MB))
                .help(
                    "Memory for items, in MiB (memcached's -m); past it the least recently used items are evicted",
                ),
        )
        .arg(
            Arg::new("max-connections")
                .long("max-connections")
                .short('c')
                .value_name("COUNT")
                .default_value("1024")
                .value_parser(clap::value_parser!(u64).range(1..=1_000_000))
                .help("The most connections open at once (memcached's -c); more are turned away"),
        )
}

/// Gives a TCP, TLS or Unix endpoint memcached's backlog, unless its description named one.
fn with_kv_backlog(endpoint: ServerEndpoint, description: Option<&str>) -> ServerEndpoint {
    if description.is_some_and(|text| text.to_ascii_lowercase().contains("backlog")) {
        return endpoint;
    }
    match endpoint {
        ServerEndpoint::Tcp(mut tcp) => {
            tcp.backlog = KV_BACKLOG;
            ServerEndpoint::Tcp(tcp)
        }
        ServerEndpoint::Tls(mut tls) => {
            tls.tcp.backlog = KV_BACKLOG;
            ServerEndpoint::Tls(tls)
        }
        ServerEndpoint::Unix(mut unix) => {
            unix.backlog = KV_BACKLOG;
            ServerEndpoint::Unix(unix)
        }
        other => other,
    }
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let description = options
        .get_raw("port")
        .and_then(|mut raw| raw.next())
        .and_then(|raw| raw.to_str());
    let endpoint = with_kv_backlog(super::classic::port(options)?, description);
    let memory_limit_mb = options
        .get_one::<u64>("memory-limit")
        .copied()
        .unwrap_or(DEFAULT_MEMORY_LIMIT_MB);
    let max_connections = options
        .get_one::<u64>("max-connections")
        .and_then(|&count| usize::try_from(count).ok())
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let max_value_bytes = super::required::<u64>(options, "max-value-size").and_then(|bytes| {
        usize::try_from(bytes).map_err(|_| PluginError::Option {
            option: "max-value-size",
            message: format!("{bytes} is too large for this machine"),
        })
    })?;
    Ok(Child::named(
        "kv",
        Box::new(StreamServer::new(
            endpoint,
            Arc::new(
                Kv::new(max_value_bytes)
                    .with_memory_limit_mb(memory_limit_mb)
                    .with_max_connections(max_connections),
            ),
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
        crate::plugin::build("kv", args)
    }

    fn json(child: &Child) -> serde_json::Value {
        serde_json::to_value(child).unwrap()
    }

    #[test]
    fn kv_plugin_defaults_to_memcached_port_and_one_mebibyte() {
        let service = json(&build(&[]).unwrap());
        assert_eq!(service["name"], "kv");
        assert_eq!(service["endpoint"], "tcp:11211:backlog=1024");
        assert_eq!(service["factory"]["type"], "rtwisted.Kv");
        assert_eq!(service["factory"]["max_value_bytes"], 1_048_576);
        assert_eq!(DEFAULT_MAX_VALUE_SIZE, DEFAULT_MAX_VALUE_BYTES.to_string());
        // The help's defaults are the library's.
        let maker = super::super::find("kv").unwrap();
        let command = maker.command();
        let default = |name: &str| {
            let arg = command.get_arguments().find(|arg| arg.get_id() == name);
            arg.unwrap().get_default_values()[0]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(default("memory-limit"), DEFAULT_MEMORY_LIMIT_MB.to_string());
        assert_eq!(
            default("max-connections"),
            DEFAULT_MAX_CONNECTIONS.to_string()
        );
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
        assert_eq!(
            service["endpoint"],
            "tcp:0:interface=127.0.0.1:backlog=1024"
        );
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
