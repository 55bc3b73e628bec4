//! Twisted's own endpoint tests, replayed: each test is named after the one in
//! `src/twisted/internet/test/test_endpoints.py` it comes from (class and method), asserts what
//! that one asserts about the parsed endpoint, and also that the canonical form parses back to
//! the same endpoint. Where rtwisted differs on purpose, the test says so and asserts the
//! difference.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// Parses `text` as an endpoint of kind `E`, and checks that its canonical form parses back to
/// the same endpoint.
fn parsed<E>(text: &str) -> E
where
    E: std::str::FromStr<Err = InvalidEndpoint> + fmt::Display + fmt::Debug + PartialEq,
{
    let endpoint: E = text.parse().unwrap_or_else(|error| panic!("{error}"));
    let canonical = endpoint.to_string();
    assert_eq!(
        canonical.parse::<E>().as_ref(),
        Ok(&endpoint),
        "{canonical}"
    );
    endpoint
}

/// Why `text` is not an endpoint of kind `E`.
fn refused<E: std::str::FromStr<Err = InvalidEndpoint> + fmt::Debug>(text: &str) -> String {
    match text.parse::<E>() {
        Ok(endpoint) => panic!("{text} parsed as {endpoint:?}"),
        Err(error) => error.reason.to_string(),
    }
}

fn server(text: &str) -> ServerEndpoint {
    parsed(text)
}

fn server_error(text: &str) -> String {
    refused::<ServerEndpoint>(text)
}

fn client(text: &str) -> ClientEndpoint {
    parsed(text)
}

fn client_error(text: &str) -> String {
    refused::<ClientEndpoint>(text)
}

/// Functions that take the endpoint out of one variant; any other kind fails the test.
macro_rules! variants {
    ($($name:ident($kind:ty) -> $inner:ty = $variant:path;)*) => {
        $(
            fn $name(endpoint: $kind) -> $inner {
                match endpoint {
                    $variant(inner) => inner,
                    other => panic!("not {}: {other:?}", stringify!($variant)),
                }
            }
        )*
    };
}

variants! {
    tcp(ServerEndpoint) -> TcpListen = ServerEndpoint::Tcp;
    unix(ServerEndpoint) -> UnixListen = ServerEndpoint::Unix;
    tls(ServerEndpoint) -> TlsListen = ServerEndpoint::Tls;
    tcp_client(ClientEndpoint) -> TcpConnect = ClientEndpoint::Tcp;
    tls_client(ClientEndpoint) -> TlsConnect = ClientEndpoint::Tls;
    unix_client(ClientEndpoint) -> UnixConnect = ClientEndpoint::Unix;
}

/// An endpoint of a type no one knows, as Twisted's tests write it.
const UNKNOWN_TYPE: &str = "ftl:andromeda/carcosa/hali/2387";

/// Asserts that `reason` says the endpoint type of [`UNKNOWN_TYPE`] is unknown.
fn assert_unknown_type(reason: &str) {
    assert!(
        reason.starts_with("unknown endpoint type 'ftl'"),
        "{reason}"
    );
}

const ALL_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const PEM: &str = "/etc/rtwisted/server.pem";

// ParserTests: endpoints._parseServer, the low-level parsing.

#[test]
fn parser_tests_test_simple_tcp() {
    assert_eq!(
        tcp(server("tcp:80")),
        TcpListen {
            interface: ALL_V4,
            port: 80,
            backlog: 50
        }
    );
}

#[test]
fn parser_tests_test_interface_tcp() {
    let listen = tcp(server("tcp:80:interface=127.0.0.1"));
    assert_eq!(listen.interface, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(listen.backlog, 50);
}

#[test]
fn parser_tests_test_backlog_tcp() {
    let listen = tcp(server("tcp:80:backlog=6"));
    assert_eq!((listen.interface, listen.backlog), (ALL_V4, 6));
}

#[test]
fn parser_tests_test_simple_unix() {
    assert_eq!(
        unix(server("unix:/var/run/finger")),
        UnixListen {
            path: PathBuf::from("/var/run/finger"),
            mode: 0o666,
            lockfile: true,
            backlog: 50
        }
    );
}

#[test]
fn parser_tests_test_mode_unix() {
    assert_eq!(unix(server("unix:/var/run/finger:mode=0660")).mode, 0o660);
}

#[test]
fn parser_tests_test_want_pid_unix() {
    assert!(!unix(server("unix:/var/run/finger:lockfile=0")).lockfile);
}

#[test]
fn parser_tests_test_escape() {
    assert_eq!(
        unix(server(r"unix:foo\:bar\=baz\:qux\\")).path,
        PathBuf::from(r"foo:bar=baz:qux\")
    );
}

#[test]
fn parser_tests_test_quote_string_argument() {
    assert_eq!(quote(r"some : stuff \"), r"some \: stuff \\");
}

#[test]
fn parser_tests_test_implied_escape() {
    assert_eq!(
        unix(server("unix:address=foo=bar")).path,
        PathBuf::from("foo=bar")
    );
}

#[test]
fn parser_tests_test_unknown_type() {
    assert!(server_error("bogus-type:nothing").starts_with("unknown endpoint type 'bogus-type'"));
}

// Positional arguments past the first, in the order of Twisted's parser signatures
// (`_parseTCP(factory, port, interface, backlog)`, `_parseUNIX(factory, address, mode, backlog,
// lockfile)`, `_TCP6ServerParser._parseServer(reactor, port, backlog, interface)`,
// `_parseSSL(factory, port, privateKey, certKey, sslmethod, interface, backlog,
// extraCertChain, dhParameters)`, `_SystemdParser._parseServer(reactor, domain, index, name)`).

#[test]
fn positional_server_arguments_follow_twisteds_parser_signatures() {
    assert_eq!(
        tcp(server("tcp:80:127.0.0.1:6")),
        TcpListen {
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 80,
            backlog: 6
        }
    );
    assert_eq!(unix(server("unix:/tmp/x.sock:660")).mode, 0o660);
    let full = unix(server("unix:/tmp/x.sock:600:7:0"));
    assert_eq!((full.mode, full.backlog, full.lockfile), (0o600, 7, false));
    assert_eq!(
        tcp(server("tcp6:80:12")),
        TcpListen {
            interface: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port: 80,
            backlog: 12
        }
    );
    assert_eq!(
        tcp(server(r"tcp6:80:12:\:\:1")).interface,
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    );
    let ssl = tls(server("ssl:443:key.pem:cert.pem"));
    assert_eq!(ssl.private_key, PathBuf::from("key.pem"));
    assert_eq!(ssl.cert_key, Some(PathBuf::from("cert.pem")));
    assert_eq!(
        server("systemd:INET:0"),
        server("systemd:domain=INET:index=0")
    );
    // One argument given both ways is an error naming it, as Python's "got multiple values".
    assert_eq!(
        server_error("tcp:80:127.0.0.1:interface=127.0.0.1"),
        "parameter 'interface' is given twice"
    );
    assert_eq!(
        server_error("tcp:80:127.0.0.1:6:7"),
        "too many positional arguments for a tcp endpoint: '7'"
    );
}

// ServerStringTests: endpoints.serverFromString.

#[test]
fn server_string_tests_test_tcp() {
    assert_eq!(
        tcp(server("tcp:1234:backlog=12:interface=10.0.0.1")),
        TcpListen {
            interface: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 1234,
            backlog: 12
        }
    );
}

#[test]
fn server_string_tests_test_ssl_refuses_sslmethod_which_rustls_has_no_use_for() {
    // Twisted's test_ssl passes sslmethod=TLSv1_2_METHOD; rustls picks TLS 1.3 or 1.2 itself.
    let message = server_error(&format!(
        "ssl:1234:backlog=12:privateKey={PEM}:certKey={PEM}:sslmethod=TLSv1_2_METHOD:interface=10.0.0.1"
    ));
    assert_eq!(
        message,
        "sslmethod= has no meaning here: rustls always negotiates TLS 1.3 or 1.2 and has no older protocol to pick; leave it out"
    );
    // Without it, the same description is Twisted's endpoint.
    let ssl = tls(server(&format!(
        "ssl:1234:backlog=12:privateKey={PEM}:certKey={PEM}:interface=10.0.0.1"
    )));
    assert_eq!(ssl.tcp.port, 1234);
    assert_eq!(ssl.tcp.backlog, 12);
    assert_eq!(ssl.tcp.interface, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(ssl.certificate(), &PathBuf::from(PEM));
}

#[test]
fn server_string_tests_test_ssl_with_defaults() {
    let ssl = tls(server(&format!("ssl:4321:privateKey={PEM}")));
    assert_eq!(ssl.tcp.port, 4321);
    assert_eq!(ssl.tcp.backlog, 50);
    assert_eq!(ssl.tcp.interface, ALL_V4);
    assert_eq!(ssl.certificate(), &PathBuf::from(PEM));
}

#[test]
fn server_string_tests_test_ssl_chain_loads() {
    let ssl = tls(server(&format!(
        "ssl:1234:privateKey={PEM}:extraCertChain=/etc/rtwisted/chain.pem"
    )));
    assert_eq!(
        ssl.extra_cert_chain,
        Some(PathBuf::from("/etc/rtwisted/chain.pem"))
    );
}

#[test]
fn server_string_tests_test_ssl_dh_parameters_is_refused_as_rustls_has_no_dhe() {
    assert_eq!(
        server_error(&format!(
            "ssl:4321:privateKey={PEM}:certKey={PEM}:dhParameters=someFile"
        )),
        "dhParameters= has no meaning here: rustls uses only elliptic-curve key exchange (ECDHE), which needs no Diffie-Hellman parameters file; leave it out"
    );
}

#[test]
fn server_string_tests_test_unix() {
    assert_eq!(
        unix(server("unix:/var/foo/bar:backlog=7:mode=0123:lockfile=1")),
        UnixListen {
            path: PathBuf::from("/var/foo/bar"),
            mode: 0o123,
            lockfile: true,
            backlog: 7
        }
    );
}

#[test]
fn server_string_tests_test_unknown_type() {
    assert_unknown_type(&server_error(UNKNOWN_TYPE));
}

// TCP6ServerEndpointPluginTests.

#[test]
fn tcp6_server_endpoint_plugin_tests_test_string_description() {
    let endpoint = server(r"tcp6:8080:backlog=12:interface=\:\:1");
    assert_eq!(
        tcp(endpoint.clone()),
        TcpListen {
            interface: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 8080,
            backlog: 12
        }
    );
    // The canonical form is one Twisted reads back: escaped colons, not `[::1]`, which
    // Twisted takes for a host name.
    assert_eq!(
        endpoint.to_string(),
        r"tcp6:8080:interface=\:\:1:backlog=12"
    );
    assert_eq!(server("tcp6:8080:interface=[::1]:backlog=12"), endpoint);
}

// SystemdEndpointPluginTests.

/// The systemd socket domains, by the name an endpoint gives them.
const DOMAINS: [(&str, Domain); 3] = [
    ("INET", Domain::Inet),
    ("INET6", Domain::Inet6),
    ("UNIX", Domain::Unix),
];

fn systemd(domain: Domain, descriptor: Descriptor) -> ServerEndpoint {
    ServerEndpoint::Systemd(SystemdSocket { domain, descriptor })
}

#[test]
fn systemd_endpoint_plugin_tests_test_parse_index_stream_server() {
    // test_parseIndexStreamServerINET, ...INET6, ...UNIX
    for (text, domain) in DOMAINS {
        assert_eq!(
            server(&format!("systemd:domain={text}:index=3")),
            systemd(domain, Descriptor::Index(3))
        );
    }
}

#[test]
fn systemd_endpoint_plugin_tests_test_parse_name_stream_server() {
    // test_parseNameStreamServerINET, ...INET6, ...UNIX
    for (text, domain) in DOMAINS {
        let endpoint = server(&format!("systemd:domain={text}:name=foo"));
        assert_eq!(endpoint, systemd(domain, Descriptor::Name("foo".into())));
        assert_eq!(
            endpoint.to_string(),
            format!("systemd:domain={text}:name=foo")
        );
    }
}

#[test]
fn systemd_endpoint_plugin_tests_test_index_and_name_mutually_exclusive() {
    let message = "systemd endpoint takes exactly one of index= or name=, like 'systemd:domain=INET:name=web'";
    assert_eq!(
        server_error("systemd:domain=INET:index=0:name=foo"),
        message
    );
    assert_eq!(server_error("systemd:domain=INET"), message);
    assert!(server_error("systemd:domain=INET:name=a\\:b").starts_with("name must be a systemd"));
}

// ClientStringTests: endpoints.clientFromString.

#[test]
fn client_string_tests_test_tcp() {
    assert_eq!(
        tcp_client(client(
            "tcp:host=example.com:port=1234:timeout=7:bindAddress=10.0.0.2"
        )),
        TcpConnect {
            host: "example.com".into(),
            port: 1234,
            timeout: Duration::from_secs(7),
            bind_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        }
    );
}

#[test]
fn client_string_tests_test_tcp_positional_args() {
    assert_eq!(
        client("tcp:example.com:1234:timeout=7:bindAddress=10.0.0.2"),
        client("tcp:host=example.com:port=1234:timeout=7:bindAddress=10.0.0.2")
    );
}

#[test]
fn client_string_tests_test_tcp_host_positional_arg() {
    let connect = tcp_client(client(
        "tcp:example.com:port=1234:timeout=7:bindAddress=10.0.0.2",
    ));
    assert_eq!((connect.host.as_str(), connect.port), ("example.com", 1234));
}

#[test]
fn client_string_tests_test_tcp_port_positional_arg() {
    let connect = tcp_client(client(
        "tcp:host=example.com:1234:timeout=7:bindAddress=10.0.0.2",
    ));
    assert_eq!((connect.host.as_str(), connect.port), ("example.com", 1234));
}

#[test]
fn client_string_tests_test_tcp_defaults() {
    let connect = tcp_client(client("tcp:host=example.com:port=1234"));
    assert_eq!(connect.timeout, Duration::from_secs(30));
    assert_eq!(connect.bind_address, None);
}

#[test]
fn client_string_tests_test_unix() {
    assert_eq!(
        unix_client(client("unix:path=/var/foo/bar:lockfile=1:timeout=9")),
        UnixConnect {
            path: PathBuf::from("/var/foo/bar"),
            timeout: Duration::from_secs(9),
            lockfile: true,
        }
    );
}

#[test]
fn client_string_tests_test_unix_defaults() {
    let connect = unix_client(client("unix:path=/var/foo/bar"));
    assert_eq!(connect.timeout, Duration::from_secs(30));
    assert!(!connect.lockfile);
}

#[test]
fn client_string_tests_test_unix_path_positional_arg() {
    assert_eq!(
        client("unix:/var/foo/bar:lockfile=1:timeout=9"),
        client("unix:path=/var/foo/bar:lockfile=1:timeout=9")
    );
}

#[test]
fn client_string_tests_test_unknown_type() {
    assert_unknown_type(&client_error(UNKNOWN_TYPE));
}

// SSLClientStringTests.

#[test]
fn ssl_client_string_tests_test_ssl() {
    let connect = tls_client(client(&format!(
        "ssl:host=example.net:port=4321:privateKey={PEM}:certKey={PEM}:bindAddress=10.0.0.3:timeout=3:caCertsDir=/etc/rtwisted/cas"
    )));
    assert_eq!(
        connect,
        TlsConnect {
            tcp: TcpConnect {
                host: "example.net".into(),
                port: 4321,
                timeout: Duration::from_secs(3),
                bind_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))),
            },
            trust_roots: Some(PathBuf::from("/etc/rtwisted/cas")),
            certificate: Some(PathBuf::from(PEM)),
            // The key is in the certificate's file: the default, so left out.
            private_key: None,
        }
    );
    // The canonical form is Twisted's tls: spelling, which it reads back.
    assert_eq!(
        ClientEndpoint::Tls(connect).to_string(),
        format!(
            "tls:host=example.net:port=4321:timeout=3:bindAddress=10.0.0.3:trustRoots=/etc/rtwisted/cas:certificate={PEM}"
        )
    );
}

#[test]
fn ssl_client_string_tests_test_ssl_positional_args() {
    assert_eq!(
        client(&format!(
            "ssl:example.net:4321:privateKey={PEM}:certKey={PEM}:bindAddress=10.0.0.3:timeout=3:caCertsDir=/etc/rtwisted/cas"
        )),
        client(&format!(
            "ssl:host=example.net:port=4321:privateKey={PEM}:certKey={PEM}:bindAddress=10.0.0.3:timeout=3:caCertsDir=/etc/rtwisted/cas"
        ))
    );
}

#[test]
fn ssl_client_string_tests_test_ssl_with_defaults() {
    let connect = tls_client(client("ssl:example.net:4321"));
    assert_eq!(
        (connect.tcp.host.as_str(), connect.tcp.port),
        ("example.net", 4321)
    );
    assert_eq!(connect.certificate, None);
    assert_eq!(connect.private_key, None);
}

#[test]
fn ssl_client_string_tests_test_ssl_simple_still_verifies() {
    // Twisted's ssl: client without caCertsDir does not verify the server; rtwisted's always
    // does, against the system's roots (trust_roots None), on purpose.
    let connect = tls_client(client("ssl:host=simple.example.org:port=4321"));
    assert_eq!(connect.trust_roots, None);
    assert_eq!(
        ClientEndpoint::Tls(connect).to_string(),
        "tls:host=simple.example.org:port=4321"
    );
}

// WrapClientTLSParserTests: the tls: client parser.

#[test]
fn wrap_client_tls_parser_tests_test_hostname_endpoint_construction() {
    let connect = tls_client(client(
        "tls:example.com:443:timeout=10:bindAddress=127.0.0.1",
    ));
    assert_eq!(connect.tcp.ascii_host(), "example.com");
    assert_eq!(connect.tcp.port, 443);
    assert_eq!(connect.tcp.timeout, Duration::from_secs(10));
    assert_eq!(
        connect.tcp.bind_address,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
}

#[test]
fn wrap_client_tls_parser_tests_test_utf8_encoding() {
    let connect = tls_client(client("tls:\u{e9}xample.example.com:443"));
    assert_eq!(connect.tcp.ascii_host(), "xn--xample-9ua.example.com");
    // The text is kept as written (Twisted passes it as text to optionsForClientTLS).
    assert_eq!(connect.tcp.host, "\u{e9}xample.example.com");
    assert!(rustls_pki_types::ServerName::try_from(connect.tcp.ascii_host().as_ref()).is_ok());
}

#[test]
fn wrap_client_tls_parser_tests_test_tls() {
    let connect = tls_client(client(
        r"tls:localhost:4321:privateKey=/k/server.pem:certificate=/k/server.pem:trustRoots=/k:bindAddress=127.0.0.1",
    ));
    assert_eq!(connect.certificate, Some(PathBuf::from("/k/server.pem")));
    assert_eq!(connect.private_key, None);
    assert_eq!(connect.trust_roots, Some(PathBuf::from("/k")));
    assert_eq!(
        connect.tcp.bind_address,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    let separate = tls_client(client(
        "tls:localhost:4321:certificate=/k/client.pem:privateKey=/k/client-key.pem",
    ));
    assert_eq!(
        separate.private_key,
        Some(PathBuf::from("/k/client-key.pem"))
    );
    // The ssl: spellings are aliases; both spellings of one parameter is an error.
    assert_eq!(
        client("tls:localhost:4321:certKey=/k/c.pem:caCertsDir=/k"),
        client("tls:localhost:4321:certificate=/k/c.pem:trustRoots=/k")
    );
    assert_eq!(
        client_error("tls:localhost:4321:trustRoots=/a:caCertsDir=/b"),
        "parameter 'trustRoots' is given twice (once as 'caCertsDir', its other name)"
    );
    assert_eq!(
        client_error("tls:localhost:4321:privateKey=/k/key.pem"),
        "tls endpoint takes privateKey= only together with certificate= (the client certificate), like 'tls:example.org:443:certificate=client.pem:privateKey=client-key.pem'"
    );
}

#[test]
fn wrap_client_tls_parser_tests_test_tls_with_defaults() {
    let connect = tls_client(client("tls:example.com:443"));
    assert_eq!(connect.tcp.host, "example.com");
    assert_eq!(connect.tcp.timeout, Duration::from_secs(30));
    assert_eq!(connect.trust_roots, None);
}

// HostnameEndpointIDNATests.

#[test]
fn hostname_endpoint_idna_tests_test_idna_hostname_text() {
    let connect = tcp_client(client("tcp:b\u{fc}cher.ch:80"));
    assert_eq!(connect.ascii_host(), "xn--bcher-kva.ch");
    assert_eq!(connect.host, "b\u{fc}cher.ch");
}

#[test]
fn hostname_endpoint_idna_tests_test_non_normalized_text() {
    // NFD: 'u' followed by a combining diaeresis.
    let connect = tcp_client(client("tcp:bu\u{308}cher.ch:80"));
    assert_eq!(connect.ascii_host(), "xn--bcher-kva.ch");
}

#[test]
fn hostname_endpoint_idna_tests_test_bad_encoding_is_refused_at_parse() {
    // Twisted defers a host IDNA cannot encode to connect(); rtwisted refuses it when the
    // description is read, so a snapshot never holds one.
    assert_eq!(
        client_error("tcp:\u{2ff0}-garbage-\u{2ff0}:80"),
        "host must be a host name that IDNA can encode, or an IP address, got '\u{2ff0}-garbage-\u{2ff0}'"
    );
}

#[test]
fn bind_addresses_take_ipv6_and_are_written_as_twisted_reads_them() {
    let connect = tcp_client(client(r"tcp:host=\:\:1:port=80:bindAddress=[::1]"));
    assert_eq!(connect.bind_address, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(
        ClientEndpoint::Tcp(connect).to_string(),
        r"tcp:host=\:\:1:port=80:bindAddress=\:\:1"
    );
    assert_eq!(
        client_error("tcp:example.com:80:bindAddress=localhost"),
        "bindAddress must be an IP address, got 'localhost'"
    );
}
