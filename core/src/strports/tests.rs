use proptest::prelude::*;

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
            index: 2
        })
    );
    assert_eq!(endpoint.to_string(), "systemd:domain=INET6:index=2");
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
        "tcp6:8080:interface=[::1]:backlog=12"
    );
}

#[test]
fn errors_name_the_part_and_what_was_expected() {
    let cases = [
        (
            "tpc:80",
            "unknown endpoint type 'tpc' (expected one of: tcp, tcp6, systemd)",
        ),
        ("tcp:70000", "port must be 0..65535, got 70000"),
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
            "tcp:80:81",
            "too many positional arguments for a tcp endpoint: '81'",
        ),
        (
            "tcp:80:interface=[::1]",
            "tcp listens on IPv4; '::1' is not one (use tcp6)",
        ),
        (
            "tcp6:80:interface=::1",
            r"too many positional arguments for a tcp6 endpoint: '' (an unescaped ':'? write IPv6 addresses as [::1], or escape ':' as '\:')",
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
    let systemd = (prop::bool::ANY, 0usize..64).prop_map(|(v6, index)| {
        ServerEndpoint::Systemd(SystemdSocket {
            domain: if v6 { Domain::Inet6 } else { Domain::Inet },
            index,
        })
    });
    prop_oneof![tcp, systemd]
}

proptest! {
    #[test]
    fn parse_of_display_is_identity(endpoint in arb_endpoint()) {
        let text = endpoint.to_string();
        prop_assert_eq!(ServerEndpoint::parse(&text).unwrap(), endpoint);
    }

    #[test]
    fn parser_never_panics(text in "\\PC{0,40}") {
        let _ = ServerEndpoint::parse(&text);
    }
}
