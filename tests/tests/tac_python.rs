//! TAC files in Twisted's Python spelling, through the real binaries: the seed document's echo
//! examples exactly as written, a port forward written the way Twisted users write one, an
//! adopted systemd socket by name, and the one-line refusal of everything a TAC file cannot
//! do (other imports, classes, driving the reactor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rtwisted_tests::{
    DEADLINE, Scratch, echo_backend, exchange, fails_with, fails_with_one_line, repository_file,
    socket_activated, text,
};

fn example(name: &str) -> PathBuf {
    repository_file(&format!("examples/tac/{name}"))
}

/// The seed's files listen on port 7001, as written. Whoever runs one holds this lock (an
/// advisory lock on a file every checkout's test run shares), so two runs never race for the
/// port; the port is then awaited until free, within the deadline.
fn port_7001() -> std::fs::File {
    let lock =
        std::fs::File::create(std::env::temp_dir().join("rtwisted-tests-port-7001.lock")).unwrap();
    lock.lock().unwrap();
    let end = Instant::now() + DEADLINE;
    while TcpListener::bind("0.0.0.0:7001").is_err() {
        assert!(
            Instant::now() < end,
            "port 7001 stayed busy for {DEADLINE:?}: the seed's unchanged examples need it"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lock
}

#[test]
fn both_forms_of_the_seeds_echo_example_run_unchanged_and_serve_echo() {
    // The seed document's own text, byte for byte (its comments included).
    let long = std::fs::read_to_string(example("twisted_echo.tac")).unwrap();
    assert!(
        long.contains("myFactory = protocol.ServerFactory()\nmyFactory.protocol = wire.Echo\n")
    );
    let short = std::fs::read_to_string(example("twisted_echo_short.tac")).unwrap();
    assert!(short.ends_with("internet.TCPServer(7001, myFactory).setServiceParent(application)\n"));

    let _port = port_7001();
    for file in ["twisted_echo.tac", "twisted_echo_short.tac"] {
        let scratch = Scratch::new();
        let mut daemon = scratch.spawn(
            scratch
                .command("rtwistd")
                .args(["-noy", example(file).to_str().unwrap()]),
        );
        let address = daemon.listening_address();
        assert_eq!(address.port(), 7001, "{file}");
        let loopback = SocketAddr::from(([127, 0, 0, 1], 7001));
        assert_eq!(
            exchange(loopback, b"hello, Twisted"),
            b"hello, Twisted",
            "{file}"
        );
        daemon.stop();
        // -o: nothing saved.
        assert_eq!(
            std::fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "{file}"
        );
    }
}

/// Sends `payload` through `address` and reads the same number of bytes back.
fn round_trip(address: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(payload).unwrap();
    let mut reply = vec![0u8; payload.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

#[test]
fn a_port_forward_written_as_twisted_users_write_it_relays_and_counts() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.join("relay.tac"),
        r#"import os
from twisted.application import internet, service
from twisted.protocols.portforward import ProxyFactory

application = service.Application("relay")

port = int(os.environ["RELAY_PORT"])
interface = os.environ.get("RELAY_INTERFACE", "0.0.0.0")
host = os.getenv("BACKEND_HOST", "localhost")
backend = internet.TCPServer(port, ProxyFactory(host, int(os.environ["BACKEND_PORT"])), 50, interface)
backend.setName("relay")
backend.setServiceParent(application)
"#,
    )
    .unwrap();
    let target = echo_backend(1);
    let mut daemon = scratch.spawn(
        scratch
            .command("rtwistd")
            .args(["-n", "--save", "-y", "relay.tac"])
            .env("RELAY_PORT", "0")
            .env("RELAY_INTERFACE", "127.0.0.1")
            .env("BACKEND_HOST", "127.0.0.1")
            .env("BACKEND_PORT", target.port().to_string()),
    );
    let address = daemon.listening_address();
    assert_eq!(
        round_trip(address, b"through the relay"),
        b"through the relay"
    );
    daemon.stop();
    let doc = scratch.inspect_json("relay-shutdown.tap");
    let relay = &doc["services"]["children"][0];
    assert_eq!(relay["path"], "relay");
    assert_eq!(relay["fields"]["endpoint"], "tcp:0:interface=127.0.0.1");
    assert_eq!(
        relay["fields"]["factory"]["dest"],
        format!("tcp:host=127.0.0.1:port={}", target.port())
    );
    assert_eq!(relay["fields"]["factory"]["counters"]["bytes_in"], 17);

    // Without RELAY_PORT: the one line names the variable and the fix.
    let output = scratch.rtwistd(&["-n", "-y", "relay.tac"]);
    fails_with(
        &output,
        1,
        "relay.tac:7:12: the environment variable RELAY_PORT is not set (os.environ[\"RELAY_PORT\"]); set it, or give a default",
    );
}

#[test]
fn the_portforward_example_runs_as_written() {
    let scratch = Scratch::new();
    let target = echo_backend(1);
    let mut daemon = scratch.spawn(
        scratch
            .command("rtwistd")
            .args(["-noy", example("twisted_portforward.tac").to_str().unwrap()])
            .env("LISTEN_PORT", "0")
            .env("BACKEND_PORT", target.port().to_string()),
    );
    let address = daemon.listening_address();
    assert_eq!(address.ip().to_string(), "127.0.0.1");
    assert_eq!(round_trip(address, b"example"), b"example");
    daemon.stop();
}

#[test]
fn a_systemd_socket_is_adopted_by_its_name() {
    use std::os::fd::AsRawFd;

    let scratch = Scratch::new();
    std::fs::write(
        scratch.join("activated.tac"),
        "from twisted.application import service, strports\n\
         from twisted.internet import protocol\n\
         from twisted.protocols import wire\n\
         application = service.Application(\"activated\")\n\
         echo = protocol.Factory.forProtocol(wire.Echo)\n\
         strports.service(\"systemd:domain=INET:name=echo\", echo).setServiceParent(application)\n",
    )
    .unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let named = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = named.local_addr().unwrap();
    let mut daemon = socket_activated(
        &scratch,
        &[other.as_raw_fd(), named.as_raw_fd()],
        Some("other:echo"),
        &["-n", "-y", "activated.tac"],
    );
    daemon.wait_for_line("waiting for SIGTERM or SIGINT");
    assert_eq!(exchange(address, b"adopted by name"), b"adopted by name");
    daemon.stop();
    drop(other);
}

/// Runs `rtap inspect` and `rtwistd -y` on `source`: both fail with one line that starts with
/// `location` and holds `needle`, and rtwistd starts nothing.
fn assert_refused(source: &str, location: &str, needle: &str) {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("app.tac"), source).unwrap();
    let at = format!("app.tac:{location}: ");
    let inspect = scratch.rtap(&["inspect", "app.tac"]);
    let message = fails_with_one_line(&inspect, 1, &format!("rtap: error: {at}"));
    assert!(message.contains(needle), "{message}");
    let run = scratch.rtwistd(&["-n", "-y", "app.tac"]);
    let stderr = fails_with(&run, 1, &at);
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!text(&run.stdout).contains("listening on"));
}

const OWN_PROTOCOL: &str = "to run a protocol of your own, write it as a Rust type linked into your own rtwistd (see cli/examples/custom_rtwistd.rs)";

#[test]
fn what_a_tac_file_cannot_do_is_refused_in_one_line_that_says_what_can() {
    let head = "from twisted.application import service, internet\n\
                application = service.Application(\"a\")\n";
    assert_refused(
        &format!("{head}from twisted.mail import smtp, relay\n"),
        "3:6",
        "cannot import twisted.mail: a TAC file can import only os, twisted.application.{internet,service,strports}, twisted.internet.{endpoints,protocol,reactor,ssl}, twisted.persisted.sob, twisted.protocols.{portforward,wire}, twisted.web.{proxy,resource,server,static,util}; ",
    );
    assert_refused(
        &format!("{head}import sys\n"),
        "3:8",
        "cannot import sys: a TAC file can import only os, ",
    );
    assert_refused(
        &format!("{head}from twisted.internet.protocol import Protocol\n"),
        "3:39",
        &format!(
            "cannot import Protocol from twisted.internet.protocol: a TAC file has only Factory, ServerFactory, ClientFactory from it; {OWN_PROTOCOL}"
        ),
    );
    assert_refused(
        &format!(
            "{head}from twisted.internet import protocol\n\nclass Upper(protocol.Protocol):\n    def dataReceived(self, data):\n        self.transport.write(data.upper())\n"
        ),
        "5:1",
        &format!(
            "cannot define class Upper: a TAC file is Starlark, which has def but no classes, so a Protocol, Factory or Service subclass cannot be written here; {OWN_PROTOCOL}"
        ),
    );
    assert_refused(
        &format!(
            "{head}from twisted.internet import reactor\nreactor.callLater(5, reactor.stop)\n"
        ),
        "4:1",
        &format!(
            "reactor.callLater() cannot run in a TAC file: a TAC file builds the application and rtwistd runs the reactor: add a service instead (internet.TCPServer, strports.service, internet.TimerService); {OWN_PROTOCOL}"
        ),
    );
    // A non-importing file keeps rtwisted's names; a Twisted name it never imported is not
    // there, which the message says as Python would.
    assert_refused(
        "application = Application(\"a\")\ninternet.TCPServer(7001, Echo())\n",
        "2:1",
        "Variable `internet` not found",
    );
}
