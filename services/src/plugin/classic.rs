//! Plugins for the classic small services: `echo`, `discard`, `chargen`, `qotd`, `daytime` and
//! `time`. Each takes `--port STRPORT`: a stream endpoint (`tcp:`, `unix:`, `ssl:`, ...) gives a
//! stream server, a `udp:` endpoint a datagram server.

use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::net::{DatagramServer, StreamServer};
use crate::protocols::{
    Chargen, DatagramProtocol, Daytime, Discard, Echo, ProtocolFactory, Qotd, Time,
};
use crate::strports::ServerEndpoint;
use rtwisted_core::Child;

/// The `--port` option, with a default.
pub fn port_option(default: &'static str) -> Arg {
    Arg::new("port")
        .long("port")
        .short('p')
        .value_name("STRPORT")
        .default_value(default)
        .value_parser(ServerEndpoint::parse)
        .help("Where to listen, as a strports description (tcp:7001, unix:/run/x.sock, udp:7001, ...)")
}

/// The parsed `--port`.
pub fn port(options: &ArgMatches) -> Result<ServerEndpoint, PluginError> {
    super::required(options, "port")
}

/// A server named `name` for `protocol` on `endpoint`: a datagram server for `udp:`, else a
/// stream server.
pub fn server<P>(name: &str, endpoint: ServerEndpoint, protocol: P) -> Result<Child, PluginError>
where
    P: ProtocolFactory + DatagramProtocol + 'static,
{
    let protocol = Arc::new(protocol);
    Ok(if endpoint.is_stream() {
        Child::named(name, Box::new(StreamServer::new(endpoint, protocol)))?
    } else {
        Child::named(name, Box::new(DatagramServer::new(endpoint, protocol)))?
    })
}

macro_rules! classic {
    ($module:ident, $name:literal, $port:literal, $description:literal, $protocol:expr) => {
        mod $module {
            use super::*;

            fn options() -> Command {
                Command::new($name).arg(port_option($port))
            }

            fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
                server($name, port(options)?, $protocol)
            }

            inventory::submit! {
                ServiceMaker {
                    name: $name,
                    description: $description,
                    options,
                    make_service,
                }
            }
        }
    };
}

// The well-known ports (7, 9, 19, 13, 37) need root; the defaults add 7000, as the seed's echo.
classic!(
    echo,
    "echo",
    "tcp:7001",
    "An RFC 862 echo server: sends back every byte it receives",
    Echo::default()
);
classic!(
    discard,
    "discard",
    "tcp:7009",
    "An RFC 863 discard server: reads and drops everything",
    Discard::default()
);
classic!(
    chargen,
    "chargen",
    "tcp:7019",
    "An RFC 864 character generator: streams a rotating pattern",
    Chargen::default()
);
classic!(
    daytime,
    "daytime",
    "tcp:7013",
    "An RFC 867 daytime server: sends the time in words and closes",
    Daytime::default()
);
classic!(
    time,
    "time",
    "tcp:7037",
    "An RFC 868 time server: sends the seconds since 1900 and closes",
    Time::default()
);

mod qotd {
    use super::*;

    fn options() -> Command {
        Command::new("qotd").arg(port_option("tcp:7017")).arg(
            Arg::new("quote")
                .long("quote")
                .value_name("TEXT")
                .action(ArgAction::Append)
                .help("A quote to serve (repeat for several; they take turns)"),
        )
    }

    fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
        let quotes: Vec<String> = options
            .get_many::<String>("quote")
            .map(|quotes| quotes.cloned().collect())
            .unwrap_or_default();
        server("qotd", port(options)?, Qotd::new(quotes))
    }

    inventory::submit! {
        ServiceMaker {
            name: "qotd",
            description: "An RFC 865 quote-of-the-day server; the quotes live in the snapshot",
            options,
            make_service,
        }
    }
}
