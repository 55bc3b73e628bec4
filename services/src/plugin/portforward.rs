//! The `portforward` plugin: relays connections on `--port` to `--dest`, counting the traffic.

use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};

use super::classic::{port, port_option};
use super::{PluginError, ServiceMaker};
use crate::net::StreamServer;
use crate::protocols::PortForward;
use crate::strports::ClientEndpoint;
use rtwisted_core::Child;

fn options() -> Command {
    Command::new("portforward")
        .arg(port_option("tcp:8080"))
        .arg(
            Arg::new("dest")
                .long("dest")
                .value_name("CLIENT_STRPORT")
                .required(true)
                .value_parser(ClientEndpoint::parse)
                .help("Where to relay to (tcp:host=H:port=P, unix:path=PATH, tls:host=H:port=P)"),
        )
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let endpoint = port(options)?;
    if !endpoint.is_stream() {
        return Err(PluginError::Option {
            option: "port",
            message: format!("portforward relays streams; {endpoint} is a datagram endpoint"),
        });
    }
    let dest: ClientEndpoint = super::required(options, "dest")?;
    Ok(Child::named(
        "portforward",
        Box::new(StreamServer::new(
            endpoint,
            Arc::new(PortForward::new(dest)),
        )),
    )?)
}

inventory::submit! {
    ServiceMaker {
        name: "portforward",
        description: "A TCP/UNIX/TLS relay to another endpoint; its byte counters live in the snapshot",
        options,
        make_service,
    }
}
