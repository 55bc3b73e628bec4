//! Constructors named after Twisted's `twisted.application.internet` services, for code (and
//! configuration) ported from Twisted: `TCPServer(7001, factory)` is [`tcp_server`]`(7001, f)`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use super::{DatagramServer, StreamClient, StreamServer};
use crate::protocols::{DatagramProtocol, ProtocolFactory};
use crate::strports::{
    ClientEndpoint, DEFAULT_BACKLOG, DEFAULT_TIMEOUT, ServerEndpoint, TcpConnect, TcpListen,
    TlsListen, UdpListen, UnixConnect, UnixListen,
};

fn tcp(port: u16) -> TcpListen {
    TcpListen {
        interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port,
        backlog: DEFAULT_BACKLOG,
    }
}

/// Twisted's `TCPServer(port, factory)`: TCP on every IPv4 address.
pub fn tcp_server(port: u16, factory: Arc<dyn ProtocolFactory>) -> StreamServer {
    StreamServer::new(ServerEndpoint::Tcp(tcp(port)), factory)
}

/// Twisted's `UNIXServer(path, factory)`: mode 666, lockfile on.
pub fn unix_server(path: impl Into<PathBuf>, factory: Arc<dyn ProtocolFactory>) -> StreamServer {
    StreamServer::new(
        ServerEndpoint::Unix(UnixListen {
            path: path.into(),
            mode: 0o666,
            lockfile: true,
            backlog: DEFAULT_BACKLOG,
        }),
        factory,
    )
}

/// Twisted's `SSLServer(port, factory, contextFactory)`, with the key and certificate files.
pub fn ssl_server(
    port: u16,
    private_key: impl Into<PathBuf>,
    certificate: impl Into<PathBuf>,
    factory: Arc<dyn ProtocolFactory>,
) -> StreamServer {
    let private_key = private_key.into();
    let certificate = certificate.into();
    StreamServer::new(
        ServerEndpoint::Tls(TlsListen {
            tcp: tcp(port),
            cert_key: (certificate != private_key).then_some(certificate),
            private_key,
            extra_cert_chain: None,
        }),
        factory,
    )
}

/// Twisted's `UDPServer(port, protocol)`.
pub fn udp_server(port: u16, protocol: Arc<dyn DatagramProtocol>) -> DatagramServer {
    DatagramServer::new(
        ServerEndpoint::Udp(UdpListen {
            interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        }),
        protocol,
    )
}

/// Twisted's `TCPClient(host, port, factory)`.
pub fn tcp_client(
    host: impl Into<String>,
    port: u16,
    factory: Arc<dyn ProtocolFactory>,
) -> StreamClient {
    StreamClient::new(
        ClientEndpoint::Tcp(TcpConnect {
            host: host.into(),
            port,
            timeout: DEFAULT_TIMEOUT,
            bind_address: None,
        }),
        factory,
    )
}

/// Twisted's `UNIXClient(path, factory)`.
pub fn unix_client(path: impl Into<PathBuf>, factory: Arc<dyn ProtocolFactory>) -> StreamClient {
    StreamClient::new(
        ClientEndpoint::Unix(UnixConnect {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
            lockfile: false,
        }),
        factory,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::Echo;

    #[test]
    fn the_constructors_make_the_endpoints_twisted_would() {
        let echo = || Arc::new(Echo::default());
        assert_eq!(tcp_server(7001, echo()).endpoint().to_string(), "tcp:7001");
        assert_eq!(
            unix_server("/run/e.sock", echo()).endpoint().to_string(),
            "unix:/run/e.sock"
        );
        assert_eq!(
            ssl_server(443, "k.pem", "k.pem", echo())
                .endpoint()
                .to_string(),
            "ssl:443:privateKey=k.pem"
        );
        assert_eq!(
            ssl_server(443, "k.pem", "c.pem", echo())
                .endpoint()
                .to_string(),
            "ssl:443:privateKey=k.pem:certKey=c.pem"
        );
        let client = serde_json::to_value(tcp_client("example.org", 80, echo())).unwrap();
        assert_eq!(client["endpoint"], "tcp:host=example.org:port=80");
        let client = serde_json::to_value(unix_client("/run/e.sock", echo())).unwrap();
        assert_eq!(client["endpoint"], "unix:path=/run/e.sock");
        let udp = serde_json::to_value(udp_server(53, echo())).unwrap();
        assert_eq!(udp["endpoint"], "udp:53");
    }
}
