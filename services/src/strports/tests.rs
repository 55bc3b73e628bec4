use proptest::prelude::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::*;

fn parse(text: &str) -> Result<ServerEndpoint, String> {
    text.parse::<ServerEndpoint>()
        .map_err(|e| e.reason.to_string())
}

#[test]
fn tcp_port_and_interface() {
    let ServerEndpoint::Tcp(tcp) = parse("tcp:8080:interface=127.0.0.1").unwrap() else {
        panic!("not tcp");
    };
    assert_eq!(tcp.port, 8080);
    assert_eq!(tcp.interface, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(tcp.backlog, 50);
}

#[test]
fn systemd_sockets_by_domain_and_index() {
    let endpoint = parse("systemd:domain=inet6:index=2").unwrap();
    assert_eq!(
        endpoint,
        ServerEndpoint::Systemd(SystemdSocket {
            domain: Domain::Inet6,
            descriptor: Descriptor::Index(2),
        })
    );
    assert_eq!(endpoint.to_string(), "systemd:domain=INET6:index=2");
}

#[test]
fn unix_path_mode_lockfile_and_backlog() {
    let ServerEndpoint::Unix(unix) = parse(r"unix:/run/a\:b.sock:mode=660:lockfile=0").unwrap()
    else {
        panic!("not unix");
    };
    assert_eq!(unix.path, PathBuf::from("/run/a:b.sock"));
    assert_eq!(unix.mode, 0o660);
    assert!(!unix.lockfile);
    assert_eq!(unix.backlog, 50);
    assert_eq!(
        parse("unix:address=/tmp/x").unwrap().to_string(),
        "unix:/tmp/x"
    );
}

#[test]
fn ssl_and_tls_are_one_type_with_twisted_defaults() {
    let a = parse("ssl:443:privateKey=key.pem:certKey=cert.pem").unwrap();
    let b = parse("tls:port=443:certKey=cert.pem:privateKey=key.pem").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "ssl:443:privateKey=key.pem:certKey=cert.pem");
    let ServerEndpoint::Tls(tls) = parse("ssl:443").unwrap() else {
        panic!("not tls");
    };
    assert_eq!(tls.private_key, PathBuf::from("server.pem"));
    assert_eq!(tls.certificate(), &PathBuf::from("server.pem"));
    assert_eq!(
        parse("ssl:443:privateKey=k.pem:certKey=k.pem")
            .unwrap()
            .to_string(),
        "ssl:443:privateKey=k.pem"
    );
}

#[test]
fn udp_is_a_datagram_endpoint() {
    let endpoint = parse("udp:5353:interface=127.0.0.1").unwrap();
    assert!(!endpoint.is_stream());
    assert_eq!(endpoint.to_string(), "udp:5353:interface=127.0.0.1");
}

#[test]
fn odd_client_hosts_found_by_fuzzing_round_trip() {
    for text in [
        "tls:][\\:  .sr:514",
        "tls:host=[]:port=4",
        "tcp:host=\\[a]:port=1",
    ] {
        let endpoint = ClientEndpoint::parse(text).unwrap();
        assert_eq!(
            ClientEndpoint::parse(&endpoint.to_string()).unwrap(),
            endpoint,
            "{text}"
        );
    }
    // IPv6 hosts are written with their colons escaped, which Twisted reads back.
    assert_eq!(
        ClientEndpoint::parse("tcp:host=[::1]:port=1")
            .unwrap()
            .to_string(),
        r"tcp:host=\:\:1:port=1"
    );
}

/// Client endpoint descriptions, one a line: `description => canonical form`, or
/// `description => error: reason` for one that is refused.
const CLIENT_DESCRIPTIONS: &str = r"
tcp:example.org:80 => tcp:host=example.org:port=80
tcp:host=[::1]:port=7:timeout=2.5 => tcp:host=\:\:1:port=7:timeout=2.5
unix:/run/x.sock => unix:path=/run/x.sock
ssl:host=a.example:port=443:caCertsDir=/etc/ca => tls:host=a.example:port=443:trustRoots=/etc/ca
tcp:port=80 => error: tcp endpoint needs a host, like 'tcp:host=example.org:port=80'
tcp:host=a => error: tcp endpoint needs a port, like 'tcp:host=example.org:port=80'
unix:timeout=3 => error: unix endpoint needs a path, like 'unix:path=/run/app.sock'
tcp:a:1:timeout=0 => error: timeout must be a positive number of seconds, got '0'
8080 => error: a port alone is not an endpoint: write 'tcp:host=HOST:port=8080'
udp:a:1 => error: unknown endpoint type 'udp' (expected one of: tcp, unix, tls, ssl)
";

#[test]
fn client_endpoints_read_like_twisteds() {
    let client = |text: &str| ClientEndpoint::parse(text).map_err(|e| e.reason.to_string());
    for line in CLIENT_DESCRIPTIONS.lines().filter(|line| !line.is_empty()) {
        let (text, expected) = line.split_once(" => ").unwrap();
        let read = match client(text) {
            Ok(endpoint) => endpoint.to_string(),
            Err(reason) => format!("error: {reason}"),
        };
        assert_eq!(read, expected, "for {text:?}");
    }
    assert_eq!(
        client("TCP:80:host=example.org").unwrap(),
        client("tcp:example.org:80").unwrap()
    );
}

#[test]
fn port_may_be_given_by_keyword() {
    assert_eq!(parse("tcp:port=80").unwrap(), parse("tcp:80").unwrap());
}

#[test]
fn canonical_form_leaves_defaults_out() {
    assert_eq!(
        parse("TCP:80:interface=0.0.0.0:backlog=50")
            .unwrap()
            .to_string(),
        "tcp:80"
    );
    assert_eq!(
        parse(r"tcp6:8080:backlog=12:interface=\:\:1")
            .unwrap()
            .to_string(),
        r"tcp6:8080:interface=\:\:1:backlog=12"
    );
}

#[test]
fn errors_name_the_part_and_what_was_expected() {
    let cases = [
        (
            "tpc:80",
            "unknown endpoint type 'tpc' (expected one of: tcp, tcp6, unix, ssl, tls, udp, systemd)",
        ),
        ("tcp:70000", "port must be 0..65535, got 70000"),
        ("7001", "a port alone is not an endpoint: write 'tcp:7001'"),
        ("tcp:abc", "port must be a number 0..65535, got 'abc'"),
        ("tcp", "tcp endpoint needs a port, like 'tcp:8080'"),
        (
            "",
            "empty endpoint description: write a type and its arguments, like 'tcp:8080'",
        ),
        (
            "port=80",
            "an endpoint description starts with its type, like 'tcp:8080'",
        ),
        ("tcp:80:port=81", "parameter 'port' is given twice"),
        (
            "tcp:80:backlog=1:backlog=2",
            "parameter 'backlog' is given twice",
        ),
        (
            "tcp:80:bogus=1",
            "unknown parameter 'bogus' for a tcp endpoint (expected: port, interface, backlog)",
        ),
        (
            "tcp:80:127.0.0.1:5:81",
            "too many positional arguments for a tcp endpoint: '81'",
        ),
        ("tcp:80:81", "interface must be an IP address, got '81'"),
        (
            "tcp:80:interface=[::1]",
            "tcp listens on IPv4; '::1' is not one (use tcp6)",
        ),
        (
            "tcp6:80:interface=::1",
            r"an empty argument between two ':' (an unescaped ':'? write IPv6 addresses as [::1], or escape ':' as '\:')",
        ),
        (
            "tcp:80:interface=localhost",
            "interface must be an IP address, got 'localhost'",
        ),
        (
            "tcp:80:backlog=-1",
            "backlog must be a whole number, got '-1'",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(parse(text).unwrap_err(), message, "for {text:?}");
    }
}

#[test]
fn endpoint_serializes_as_its_string() {
    let endpoint = parse("tcp:7001:interface=127.0.0.1").unwrap();
    let json = serde_json::to_string(&endpoint).unwrap();
    assert_eq!(json, r#""tcp:7001:interface=127.0.0.1""#);
    let back: ServerEndpoint = serde_json::from_str(&json).unwrap();
    assert_eq!(back, endpoint);
    let err = serde_json::from_str::<ServerEndpoint>(r#""tcp:99999""#).unwrap_err();
    assert!(
        err.to_string().contains("invalid endpoint 'tcp:99999'"),
        "{err}"
    );
}

/// A systemd socket domain, picked by a number.
fn domain_of(pick: u8) -> Domain {
    match pick {
        0 => Domain::Inet,
        1 => Domain::Inet6,
        _ => Domain::Unix,
    }
}

fn arb_endpoint() -> impl Strategy<Value = ServerEndpoint> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ];
    let tcp = (ip, any::<u16>(), any::<u32>()).prop_map(|(interface, port, backlog)| {
        ServerEndpoint::Tcp(TcpListen {
            interface,
            port,
            backlog,
        })
    });
    let systemd = (0u8..3, 0usize..64).prop_map(|(domain, index)| {
        ServerEndpoint::Systemd(SystemdSocket {
            domain: domain_of(domain),
            descriptor: Descriptor::Index(index),
        })
    });
    let named = (0u8..3, "[a-z.]{1,12}").prop_map(|(domain, name)| {
        ServerEndpoint::Systemd(SystemdSocket {
            domain: domain_of(domain),
            descriptor: Descriptor::Name(name),
        })
    });
    let path = "[a-z/:\\\\=\\[\\] ]{1,20}".prop_map(PathBuf::from);
    let unix = (path.clone(), 0u32..0o7777, prop::bool::ANY, 1u32..500).prop_map(
        |(path, mode, lockfile, backlog)| {
            ServerEndpoint::Unix(UnixListen {
                path,
                mode,
                lockfile,
                backlog,
            })
        },
    );
    let tls = (
        any::<u16>(),
        path.clone(),
        proptest::option::of(path.clone()),
        proptest::option::of(path),
    )
        .prop_map(|(port, private_key, cert_key, extra_cert_chain)| {
            let cert_key = cert_key.filter(|cert| *cert != private_key);
            ServerEndpoint::Tls(TlsListen {
                tcp: TcpListen {
                    interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    port,
                    backlog: DEFAULT_BACKLOG,
                },
                private_key,
                cert_key,
                extra_cert_chain,
            })
        });
    let udp = (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| {
        ServerEndpoint::Udp(UdpListen {
            interface: IpAddr::V4(Ipv4Addr::from(ip)),
            port,
        })
    });
    prop_oneof![tcp, systemd, named, unix, tls, udp]
}

fn arb_client() -> impl Strategy<Value = ClientEndpoint> {
    let host = prop_oneof![
        "[a-z][a-z0-9.-]{0,20}",
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
    ];
    let timeout = prop_oneof![Just(30.0f64), 0.001f64..1000.0];
    let bind = proptest::option::of(prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]);
    let tcp =
        (host, any::<u16>(), timeout, bind).prop_map(|(host, port, timeout, bind_address)| {
            TcpConnect {
                host,
                port,
                timeout: std::time::Duration::from_secs_f64(timeout),
                bind_address,
            }
        });
    let file = || proptest::option::of("[a-z/:=]{1,12}".prop_map(PathBuf::from));
    prop_oneof![
        tcp.clone().prop_map(ClientEndpoint::Tcp),
        (tcp, file(), file(), file()).prop_map(|(tcp, trust_roots, certificate, key)| {
            let private_key =
                key.filter(|key| certificate.is_some() && Some(key) != certificate.as_ref());
            ClientEndpoint::Tls(TlsConnect {
                tcp,
                trust_roots,
                certificate,
                private_key,
            })
        }),
        ("[a-z/:=]{1,20}", prop::bool::ANY).prop_map(|(path, lockfile)| ClientEndpoint::Unix(
            UnixConnect {
                path: PathBuf::from(path),
                timeout: crate::strports::DEFAULT_TIMEOUT,
                lockfile,
            }
        )),
    ]
}

proptest! {
    #[test]
    fn parse_of_display_is_identity(endpoint in arb_endpoint()) {
        let text = endpoint.to_string();
        prop_assert_eq!(ServerEndpoint::parse(&text).unwrap(), endpoint);
    }

    #[test]
    fn parse_of_display_is_identity_for_clients(endpoint in arb_client()) {
        let text = endpoint.to_string();
        prop_assert_eq!(ClientEndpoint::parse(&text).unwrap(), endpoint);
    }

    #[test]
    fn parser_never_panics(text in "\\PC{0,40}") {
        let _ = ServerEndpoint::parse(&text);
        let _ = ClientEndpoint::parse(&text);
    }
}
