//! TAC files through the real binaries: `rtwistd -y`, `rtap save -y`, `rtap inspect app.tac`,
//! every example in `examples/tac/`, and every kind of broken TAC file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use rtwisted_tests::{
    DEADLINE, Daemon, Scratch, echo_backend, exchange, fails_with, fails_with_one_line,
    memcache_request, nodes, repository_file, text,
};

/// The TAC example `name` from the repository.
fn example(name: &str) -> PathBuf {
    repository_file(&format!("examples/tac/{name}"))
}

/// Every `.tac` file in `examples/tac/` (its `lib/` holds files they load, not applications).
fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository_file("examples/tac"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tac"))
        .collect();
    files.sort();
    files
}

fn spawn_example(scratch: &Scratch, name: &str, env: &[(&str, &str)], extra: &[&str]) -> Daemon {
    let file = example(name);
    let mut command = scratch.command("rtwistd");
    command
        .args(["-n", "-y", file.to_str().unwrap()])
        .args(extra);
    for (key, value) in env {
        command.env(key, value);
    }
    scratch.spawn(&mut command)
}

#[test]
fn every_example_inspects_to_the_tree_it_promises() {
    let scratch = Scratch::new();
    let files = examples();
    assert!(files.len() >= 5, "examples went missing: {files:?}");
    for file in &files {
        let output = scratch.rtap(&["inspect", file.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("(evaluated, not saved"));
    }
    let echo = scratch.inspect_json(example("echo.tac").to_str().unwrap());
    assert_eq!(echo["app"], "echo");
    assert_eq!(echo["source"], "tac");
    let children = echo["services"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["type"], "rtwisted.StreamServer");
    assert_eq!(children[0]["fields"]["endpoint"], "tcp:7001");
    // The seed's longer form builds the very same tree.
    let long = scratch.inspect_json(example("echo_collection.tac").to_str().unwrap());
    assert_eq!(long["services"], echo["services"]);

    let multi = scratch.inspect_json(example("multi.tac").to_str().unwrap());
    let paths: Vec<&str> = nodes(&multi["services"])
        .iter()
        .map(|node| node["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "public",
            "public/echo",
            "public/discard",
            "public/daytime",
            "public/qotd",
            "cache",
            "heartbeat"
        ]
    );
    assert_eq!(multi["process"]["process_name"], "multi-rtwistd");
    assert_eq!(multi["process"]["umask"], 0o027);
}

#[test]
fn the_seeds_echo_tac_serves_echo() {
    let scratch = Scratch::new();
    // The seed's two lines; the port is the only change (tests listen on loopback, port 0).
    let seed = std::fs::read_to_string(example("echo.tac")).unwrap();
    assert!(seed.contains("TCPServer(7001, Echo()).setServiceParent(application)"));
    let tac = seed.replace(
        "TCPServer(7001, Echo())",
        "TCPServer(0, Echo(), interface=\"127.0.0.1\")",
    );
    std::fs::write(scratch.join("echo.tac"), tac).unwrap();
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-y", "echo.tac"]);
    let address = daemon.listening_address();
    assert_eq!(
        exchange(address, b"hello from a TAC file"),
        b"hello from a TAC file"
    );
    daemon.stop();
    // twistd -y saves nothing at shutdown: the program, not a snapshot, is the source.
    assert!(!scratch.join("echo-shutdown.tap").exists());
}

#[test]
fn rtap_save_freezes_a_tac_file_and_rtwistd_runs_the_snapshot() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.join("app.tac"),
        "application = Application(\"frozen\", style=\"tas\")\n\
         service(\"tcp:0:interface=127.0.0.1\", Echo(), name=\"echo\").set_service_parent(application)\n",
    )
    .unwrap();
    let output = scratch.rtap_ok(&["save", "-y", "app.tac"]);
    assert!(text(&output.stdout).contains("saved tas application 'frozen' to frozen.tas"));
    let doc = scratch.inspect_json("frozen.tas");
    assert_eq!(doc["style"], "tas");
    assert_eq!(doc["services"]["children"][0]["path"], "echo");

    scratch.rtap_ok(&[
        "save",
        "-y",
        "app.tac",
        "-o",
        "other.tap",
        "--appname",
        "renamed",
    ]);
    assert_eq!(scratch.inspect_json("other.tap")["app"], "renamed");

    // tapconvert guesses a .tac input to be a program; so does rtap convert.
    let output = scratch.rtap_ok(&["convert", "app.tac", "converted.tap"]);
    assert!(text(&output.stdout).contains("converted app.tac (TAC file) to converted.tap (tap"));
    assert_eq!(scratch.inspect_json("converted.tap")["style"], "tap");

    let mut daemon = scratch.spawn_rtwistd(&["-n", "-o", "-f", "frozen.tas"]);
    let address = daemon.listening_address();
    assert_eq!(exchange(address, b"thawed"), b"thawed");
    daemon.stop();

    // --save keeps a shutdown snapshot even for a TAC run.
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-y", "app.tac", "--save"]);
    daemon.listening_address();
    daemon.stop();
    assert_eq!(scratch.inspect_json("frozen-shutdown.tas")["app"], "frozen");
}

#[test]
fn kv_example_checkpoints_on_its_timer_and_a_crash_loses_nothing_before_it() {
    let scratch = Scratch::new();
    let env = [
        ("KV_PORT", "tcp:0:interface=127.0.0.1"),
        ("KV_CHECKPOINT_SECONDS", "0.1"),
    ];
    let daemon = spawn_example(&scratch, "kv.tac", &env, &[]);
    scratch.assert_checkpoint_outlives_a_crash(daemon, "answer", "42");
}

#[test]
fn tls_portforward_example_relays_decrypted_bytes_to_the_backend() {
    let scratch = Scratch::new();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(scratch.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        scratch.join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let backend = echo_backend(1);
    let backend_strport = format!("tcp:host=127.0.0.1:port={}", backend.port());
    let env = [
        ("TLS_PORT", "0"),
        ("TLS_INTERFACE", "127.0.0.1"),
        ("TLS_KEY", "key.pem"),
        ("TLS_CERT", "cert.pem"),
        ("BACKEND", backend_strport.as_str()),
    ];
    let mut daemon = spawn_example(&scratch, "tls_portforward.tac", &env, &["--save"]);
    let address = daemon.listening_address();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connection =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let socket = TcpStream::connect_timeout(&address, DEADLINE).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(b"through tls").unwrap();
    let mut reply = [0u8; 11];
    tls.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"through tls");
    tls.conn.send_close_notify();
    let _ = tls.flush();
    drop(tls);

    // The relay's counters are in the shutdown snapshot.
    daemon.stop();
    let doc = scratch.inspect_json("tls-forward-shutdown.tap");
    let tls_node = &doc["services"]["children"][0];
    assert_eq!(tls_node["path"], "tls");
    assert!(
        tls_node["fields"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("ssl:0:privateKey=key.pem:certKey=cert.pem")
    );
    let counters = &tls_node["fields"]["factory"]["counters"];
    assert_eq!(counters["connections"], 1, "{counters}");
    assert_eq!(counters["bytes_in"], 11, "{counters}");
    assert_eq!(counters["bytes_out"], 11, "{counters}");
}

#[test]
fn multi_example_runs_its_named_children_from_loaded_helpers() {
    let scratch = Scratch::new();
    let env = [("BASE_PORT", "0"), ("HEARTBEAT_FILE", "alive")];
    let mut daemon = spawn_example(&scratch, "multi.tac", &env, &["--save"]);
    // Ports are bound in tree order: public/echo, public/discard, public/daytime,
    // public/qotd, cache.
    let addresses: Vec<SocketAddr> = (0..5).map(|_| daemon.listening_address()).collect();
    daemon.wait_for_line("is running (7 services)");
    assert_eq!(exchange(addresses[0], b"ping"), b"ping");
    assert_eq!(
        exchange(addresses[3], b""),
        b"An apple a day keeps the doctor away.\r\n"
    );
    assert_eq!(
        memcache_request(addresses[4], b"set k 0 0 1\r\nv\r\n"),
        "STORED\r\n"
    );
    assert!(rtwisted_tests::eventually(|| scratch
        .join("alive")
        .exists()));
    daemon.stop();
    let doc = scratch.inspect_json("multi-shutdown.tap");
    assert_eq!(doc["app"], "multi");
    let cache = nodes(&doc["services"])
        .into_iter()
        .find(|node| node["path"] == "cache")
        .cloned()
        .unwrap();
    assert_eq!(cache["type"], "rtwisted.StreamServer");
}

/// Runs `rtap inspect` and `rtwistd -y` on a broken TAC file: both fail with one line that
/// starts with the location and holds `needle`, and rtwistd starts nothing.
fn assert_broken(scratch: &Scratch, file: &str, source: &str, location: &str, needle: &str) {
    std::fs::write(scratch.join(file), source).unwrap();
    let inspect = scratch.rtap(&["inspect", file]);
    let message = fails_with_one_line(&inspect, 1, &format!("rtap: error: {location}"));
    assert!(message.contains(needle), "{file}: {message}");

    let run = scratch.rtwistd(&["-n", "-y", file]);
    let stderr = fails_with(&run, 1, location);
    assert!(stderr.contains(needle), "{stderr}");
    let stdout = text(&run.stdout);
    assert!(
        !stdout.contains("listening on") && !stdout.contains("started"),
        "{stdout}"
    );

    let save = scratch.rtap(&["save", "-y", file, "-o", "never.tap"]);
    assert_eq!(save.status.code(), Some(1));
    let convert = scratch.rtap(&["convert", file, "never.tap"]);
    assert_eq!(convert.status.code(), Some(1));
    assert!(!scratch.join("never.tap").exists());
}

#[test]
fn broken_tac_files_fail_with_file_line_and_column_and_start_nothing() {
    let scratch = Scratch::new();
    let app = "application = Application(\"a\")\n";
    assert_broken(
        &scratch,
        "none.tac",
        "x = 1\n",
        "none.tac: no variable 'application'",
        "application = Application(",
    );
    assert_broken(
        &scratch,
        "list.tac",
        "x = 1\napplication = [x]\n",
        "list.tac:2:1: 'application' is a list",
        "not an application",
    );
    assert_broken(
        &scratch,
        "factory.tac",
        "application = Echo()\n",
        "factory.tac:1:1: 'application' is an Echo",
        "not an application",
    );
    assert_broken(
        &scratch,
        "syntax.tac",
        &format!("{app}TCPServer(7001, Echo(.setServiceParent(application)\n"),
        "syntax.tac:2:",
        "Parse error",
    );
    assert_broken(
        &scratch,
        "fails.tac",
        &format!("{app}\nfail(\"no backend configured\")\n"),
        "fails.tac:3:1",
        "no backend configured",
    );
    assert_broken(
        &scratch,
        "field.tac",
        &format!("{app}StreamServer(endpoint=\"tcp:1\", factory=Echo(), colour=1)\n"),
        "field.tac:2:1",
        "StreamServer() has no field colour (its fields: name, endpoint, factory)",
    );
    assert_broken(
        &scratch,
        "endpoint.tac",
        &format!("{app}service(\"tcp:99999\", Echo())\n"),
        "endpoint.tac:2:1",
        "port must be 0..65535",
    );
    assert_broken(
        &scratch,
        "clash.tac",
        &format!(
            "{app}for port in [1, 2]:\n    service(\"tcp:%d\" % port, Echo(), name=\"same\").setServiceParent(application)\n"
        ),
        "clash.tac:3:5",
        "cannot have two services named 'same'",
    );
    assert_broken(
        &scratch,
        "plugin.tac",
        &format!("{app}plugin(\"kv\", port=\"nowhere\")\n"),
        "plugin.tac:2:1",
        "plugin 'kv': invalid value 'nowhere' for '--port <STRPORT>'",
    );
    assert_broken(
        &scratch,
        "env.tac",
        &format!("{app}port = env(\"RTWISTED_TEST_UNSET_PORT\")\n"),
        "env.tac:2:8",
        "RTWISTED_TEST_UNSET_PORT is not set",
    );
    // An error inside a loaded file points into that file.
    std::fs::write(
        scratch.join("helper.tac"),
        "def boom():\n    fail(\"from the helper\")\n",
    )
    .unwrap();
    assert_broken(
        &scratch,
        "loads.tac",
        &format!("load(\"helper.tac\", \"boom\")\n{app}boom()\n"),
        "helper.tac:2:5",
        "from the helper",
    );
    assert_broken(
        &scratch,
        "missing_load.tac",
        &format!("load(\"nowhere.tac\", \"x\")\n{app}"),
        "missing_load.tac:1:1",
        "cannot load 'nowhere.tac'",
    );
    assert_broken(
        &scratch,
        "cycle.tac",
        &format!("load(\"cycle.tac\", \"x\")\n{app}"),
        "cycle.tac:1:1",
        "load() statements form a cycle",
    );
}

#[test]
fn a_missing_tac_file_and_conflicting_sources_are_clear_errors() {
    let scratch = Scratch::new();
    let output = scratch.rtwistd(&["-n", "-y", "absent.tac"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr)
            .contains("cannot read the TAC file 'absent.tac': no such file or directory")
    );
    // -y with -f, or with a plugin: usage errors.
    assert_eq!(
        scratch
            .rtwistd(&["-n", "-y", "a.tac", "-f", "b.tap"])
            .status
            .code(),
        Some(2)
    );
    let output = scratch.rtwistd(&["-n", "-y", "a.tac", "echo"]);
    fails_with(&output, 2, "either a TAC file (-y) or a plugin");
    // A TAC file where a snapshot goes: the error says how to use it.
    std::fs::write(
        scratch.join("app.tac"),
        "application = Application(\"a\")\n",
    )
    .unwrap();
    for output in [
        scratch.rtwistd(&["-n", "-f", "app.tac"]),
        scratch.rtap(&["edit", "app.tac"]),
    ] {
        fails_with(
            &output,
            1,
            "'app.tac' is a TAC file: run it with rtwistd -y, or freeze it with rtap save -y",
        );
    }
    let neither = scratch.rtap(&["save"]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        text(&neither.stderr).contains("give a plugin (see rtap plugins) or a TAC file with -y")
    );
}

#[test]
fn environment_reads_are_explicit_and_defaults_keep_runs_hermetic() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.join("env.tac"),
        "application = Application(env(\"APP_NAME\", \"fallback\"))\n",
    )
    .unwrap();
    assert_eq!(scratch.inspect_json("env.tac")["app"], "fallback");
    let output = scratch
        .command("rtap")
        .args(["inspect", "--json", "env.tac"])
        .env("APP_NAME", "from-env")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["app"], "from-env");
    // Starlark itself has no other door: no file reads, no clock, no processes.
    std::fs::write(
        scratch.join("open.tac"),
        "data = open(\"/etc/passwd\")\napplication = Application(\"a\")\n",
    )
    .unwrap();
    let output = scratch.rtap(&["inspect", "open.tac"]);
    fails_with(&output, 1, "open.tac:1:8");
}

#[test]
fn a_users_own_binary_gets_its_own_types_in_tac_files_with_no_bindings() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.join("own.tac"),
        "application = Application(\"own\")\n\
         Sleeper(stop_seconds=0, name=\"nap\").setServiceParent(application)\n\
         make(\"example.Sleeper\", stop_seconds=0, name=\"doze\").setServiceParent(application)\n",
    )
    .unwrap();
    let program = rtwisted_tests::example("custom_rtwistd");
    let mut daemon = scratch.spawn(scratch.command_at(&program).args(["-n", "-y", "own.tac"]));
    daemon.wait_for_line("started nap [example.Sleeper]");
    daemon.wait_for_line("started doze [example.Sleeper]");
    daemon.stop();
    // The stock binary does not link that type, and says so at the line that used it.
    let output = scratch.rtwistd(&["-n", "-y", "own.tac"]);
    fails_with(&output, 1, "own.tac:2:1: Variable `Sleeper` not found");
}
