//! The resource tree in the snapshot (save, inspect, set, relaunch) and in TAC files.

use super::client::{curl, url};
use super::*;

/// GETs `path` from the site at `address`, which proxies it to `upstream`: the whole streamed
/// body arrives, and the upstream saw `request_line`.
fn assert_proxied(
    upstream: &super::upstream::Upstream,
    address: SocketAddr,
    path: &str,
    request_line: &str,
) {
    upstream.go.send(()).unwrap();
    assert_eq!(
        curl(&[], &url(address, path)).text(),
        "first half second half"
    );
    assert_eq!(
        upstream.seen.recv_timeout(DEADLINE).unwrap().line,
        request_line
    );
}

#[test]
fn the_resource_tree_is_saved_shown_edited_and_survives_a_relaunch() {
    let scratch = Scratch::new();
    let root = site(&scratch);
    let upstream = upstream::start();
    let dest = format!("/api=tcp:127.0.0.1:{}", upstream.address.port());
    scratch.rtap_ok(&[
        "save", "web", "--path", &root, "--port", LOOPBACK, "--proxy", &dest, "--health", "/up",
        "-o", "web.tap",
    ]);

    let shown = text(&scratch.rtap_ok(&["inspect", "web.tap"]).stdout);
    assert!(shown.contains("rtwisted.Site"), "{shown}");
    assert!(shown.contains(&format!("/  static {root}")), "{shown}");
    assert!(
        shown.contains(&format!(
            "/api  proxy tcp:host=127.0.0.1:port={}",
            upstream.address.port()
        )),
        "{shown}"
    );
    assert!(shown.contains("/up  health"), "{shown}");
    let json = scratch.inspect_json("web.tap");
    let web = &json["services"]["children"][0];
    assert_eq!(web["fields"]["factory"]["resources"]["/"]["kind"], "static");

    // rtap set replaces the site: the data resource and a proxy path prefix are edits of it.
    let mut factory = web["fields"]["factory"].clone();
    factory["resources"]["/hello"] =
        serde_json::json!({"kind": "data", "data": "hi there\n", "content_type": "text/plain"});
    scratch.rtap_ok(&["set", "web.tap", "web", &format!("factory={factory}")]);
    // ...and a field of one resource is an edit by its dotted path.
    let edited = scratch.rtap_ok(&["set", "web.tap", "web", "factory.resources./api.path=/v2"]);
    assert!(
        text(&edited.stdout).contains(r#"factory.resources./api.path: "" -> "/v2""#),
        "{}",
        text(&edited.stdout)
    );
    let bad = scratch.rtap(&[
        "set",
        "web.tap",
        "web",
        r#"factory={"type":"rtwisted.Site","resources":{"nope":{"kind":"health"}}}"#,
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("invalid mount path \"nope\""),
        "{}",
        text(&bad.stderr)
    );

    for file in ["web.tap", "web-shutdown.tap"] {
        let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", file]);
        let address = daemon.listening_address();
        assert_eq!(
            curl(&[], &url(address, "/hello.txt")).text(),
            "hello, web\n"
        );
        assert_eq!(curl(&[], &url(address, "/hello")).text(), "hi there\n");
        assert_eq!(curl(&[], &url(address, "/up")).status, 200);
        assert_proxied(&upstream, address, "/api/x", "GET /v2/x HTTP/1.1");
        daemon.stop();
    }
    let after = scratch.inspect_json("web-shutdown.tap");
    let resources = &after["services"]["children"][0]["fields"]["factory"]["resources"];
    assert_eq!(resources["/hello"]["data"], "hi there\n");
    assert_eq!(resources["/api"]["path"], "/v2");
}

#[test]
fn the_tac_example_builds_a_site_from_twisted_web_names() {
    let scratch = Scratch::new();
    let root = site(&scratch);
    let upstream = upstream::start();
    let api_port = upstream.address.port().to_string();
    let example = rtwisted_tests::repository_file("examples/tac/web.tac");
    let mut command = scratch.command("rtwistd");
    command
        .args(["-n", "-o", "-y"])
        .arg(&example)
        .env("WEB_ROOT", &root)
        .env("API_PORT", &api_port)
        .env("WEB_PORT", "0")
        .env("WEB_INTERFACE", "127.0.0.1");
    let mut daemon = scratch.spawn(&mut command);
    let address = daemon.listening_address();
    assert_eq!(
        curl(&[], &url(address, "/hello.txt")).text(),
        "hello, web\n"
    );
    assert_eq!(
        curl(&[], &url(address, "/hello")).text(),
        "hello from a TAC file\n"
    );
    assert_eq!(curl(&[], &url(address, "/healthz")).status, 200);
    assert_proxied(&upstream, address, "/api/v1/x", "GET /v1/x HTTP/1.1");
}

#[test]
fn tac_resources_refuse_what_twisted_would_not_mean() {
    let scratch = Scratch::new();
    for (program, needle) in [
        (
            "r = File('/x')\nSite(r)\nr.putChild(b'late', Health())\n",
            "call putChild before Site(root)",
        ),
        (
            "File('/x').putChild(b'a/b', Health())\n",
            "not one path segment",
        ),
        ("Site('/srv')\n", "the root must be a resource"),
        (
            "Site(Redirect('/x', code=200))\n",
            "301, 302, 303, 307 or 308",
        ),
    ] {
        std::fs::write(
            scratch.join("bad.tac"),
            format!("{program}application = Application('x')\n"),
        )
        .unwrap();
        let output = scratch.rtap(&["inspect", "bad.tac"]);
        assert!(!output.status.success(), "{program}");
        assert!(
            text(&output.stderr).contains(needle),
            "{program}: {}",
            text(&output.stderr)
        );
    }
}
