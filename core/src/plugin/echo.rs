//! The `echo` plugin: an RFC 862 echo server on a strports endpoint.

use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::net::StreamServer;
use crate::protocols::Echo;
use crate::service::Service;
use crate::strports::ServerEndpoint;

/// The echo plugin's default endpoint (Echo's well-known port 7 is privileged; the seed uses
/// 7001).
pub const DEFAULT_PORT: &str = "tcp:7001";

fn options() -> Command {
    Command::new("echo").arg(
        Arg::new("port")
            .long("port")
            .short('p')
            .value_name("STRPORT")
            .default_value(DEFAULT_PORT)
            .value_parser(ServerEndpoint::parse)
            .help(
                "Where to listen, as a strports description (tcp:7001, tcp:0:interface=127.0.0.1)",
            ),
    )
}

fn make_service(options: &ArgMatches) -> Result<Box<dyn Service>, PluginError> {
    let endpoint =
        options
            .get_one::<ServerEndpoint>("port")
            .cloned()
            .ok_or(PluginError::Option {
                option: "port",
                message: "missing".into(),
            })?;
    Ok(Box::new(
        StreamServer::new(endpoint, Arc::new(Echo::default())).named("echo")?,
    ))
}

inventory::submit! {
    ServiceMaker {
        name: "echo",
        description: "An RFC 862 echo server: sends back every byte it receives",
        options,
        make_service,
    }
}
