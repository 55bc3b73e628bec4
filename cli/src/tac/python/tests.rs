//! The module table, the translation of import lines, and the Python objects, in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn imports() -> Imports {
    crate::tac::builtins::globals().1
}

#[test]
fn every_member_of_every_module_has_a_value() {
    let imports = imports();
    for module in modules() {
        for member in module.members {
            let line = imports.record(vec![Binding::Member(module.name, member)]);
            assert!(
                imports.resolve(line).is_ok(),
                "{}.{member} has no value",
                module.name
            );
        }
        let line = imports.record(vec![Binding::Module(module.name)]);
        assert!(imports.resolve(line).is_ok(), "{}", module.name);
    }
    for package in ["twisted", "twisted.application", "twisted.protocols"] {
        assert_eq!(module_named(package), Some(package));
    }
}

#[test]
fn supported_lists_what_can_be_imported() {
    let web = if cfg!(feature = "web") {
        ", twisted.web.{proxy,resource,server,static,util}"
    } else {
        ""
    };
    assert_eq!(
        supported(),
        format!(
            "os, twisted.application.{{internet,service,strports}}, twisted.internet.{{endpoints,protocol,reactor,ssl}}, twisted.persisted.sob, twisted.protocols.{{portforward,wire}}{web}"
        )
    );
}

fn translated(source: &str) -> String {
    translate("app.tac", source, &imports()).unwrap()
}

fn refusal(source: &str) -> String {
    let error = translate("app.tac", source, &imports()).unwrap_err();
    let span = error.span().unwrap().resolve_span();
    format!(
        "{}:{}: {}",
        span.begin.line + 1,
        span.begin.column + 1,
        error.without_diagnostic()
    )
}

#[test]
fn import_lines_become_assignments_in_place() {
    let source = "from twisted.application import service, internet\nimport os\nx = 1\n";
    let program = translated(source);
    let first = program.lines().next().unwrap();
    assert_eq!(first.len(), source.lines().next().unwrap().len());
    assert_eq!(first.trim_end(), "service,internet=_rtwisted_import(0)");
    assert!(
        program.ends_with("\nos=_rtwisted_import(1)\nx = 1\n"),
        "{program}"
    );
    // Every line after an import line starts where it started.
    let multi = "from twisted.internet.protocol import (\n    Factory,  # one\n    ServerFactory,\n)\ny = 2\n";
    let program = translated(multi);
    assert_eq!(program.lines().count(), multi.lines().count());
    for (translated, original) in program.lines().zip(multi.lines()).skip(1) {
        assert!(
            translated == original || translated.trim().is_empty(),
            "{translated:?}"
        );
        assert!(translated.len() == original.len(), "{translated:?}");
    }
    assert!(program.starts_with("Factory,ServerFactory=_rtwisted_import(0)"));
    assert!(program.ends_with("\ny = 2\n"));
    // Continued with a backslash, aliased, starred, indented under a def.
    let program = translated(
        "from twisted.protocols \\\n    import wire as w\nfrom os import *\ndef f():\n    import twisted.internet.protocol\n    return twisted\n",
    );
    assert!(program.starts_with("w=_rtwisted_import(0)"), "{program}");
    assert!(program.contains("\nenviron,getenv=_rtwisted_import(1)"));
    assert!(program.contains("\n    twisted=_rtwisted_import(2)"));
}

#[test]
fn strings_and_comments_are_not_import_lines() {
    let source = "\"\"\"\nfrom twisted.web import server\nclass X:\n\"\"\"\n# import sys\ns = 'import sys'\n";
    assert_eq!(translated(source), source);
}

#[test]
fn refusals_point_at_what_they_refuse() {
    assert!(
        refusal("x = 1\nfrom twisted.mail import smtp\n")
            .starts_with("2:6: cannot import twisted.mail: a TAC file can import only os, ")
    );
    assert!(refusal("import os, sys\n").starts_with("1:12: cannot import sys: "));
    assert!(refusal("from twisted.internet.protocol import Protocol\n").starts_with(
        "1:39: cannot import Protocol from twisted.internet.protocol: a TAC file has only Factory, ServerFactory, ClientFactory from it; to run a protocol of your own, write it as a Rust type linked into your own rtwistd (see cli/examples/custom_rtwistd.rs)"
    ));
    assert!(
        refusal("if True:\n    class P(Protocol):\n        pass\n")
            .starts_with("2:5: cannot define class P: a TAC file is Starlark")
    );
    assert!(refusal("from twisted.application import\n").contains("not one Python reads"));
    assert!(refusal("import os as\n").contains("not one Python reads"));
}

/// Evaluates `source` as `app.tac`; errors name the file as `app.tac`.
fn run(source: &str) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tac");
    std::fs::write(&path, source).unwrap();
    match crate::tac::evaluate(&path) {
        Ok(app) => Ok(serde_json::to_value(app.services()).unwrap()),
        Err(error) => Err(error
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "")),
    }
}

fn children(source: &str) -> Vec<serde_json::Value> {
    match run(source) {
        Ok(tree) => tree["children"].as_array().unwrap().clone(),
        Err(message) => panic!("{message}"),
    }
}

const HEAD: &str = "from twisted.application import service, internet, strports\n\
    from twisted.internet import protocol, endpoints, reactor, ssl\n\
    from twisted.protocols import wire, portforward\n\
    from twisted.persisted import sob\n\
    import os\n\
    application = service.Application(\"a\")\n";

/// The error of [`HEAD`] followed by `body`, which must fail.
fn failure(body: &str) -> String {
    run(&format!("{HEAD}{body}")).unwrap_err()
}

#[test]
fn factories_take_their_protocol_as_in_twisted() {
    let tree = children(&format!(
        "{HEAD}f = protocol.Factory()\nf.protocol = wire.QOTD\n\
         if f.protocol != wire.QOTD:\n    fail(\"read back\")\n\
         internet.TCPServer(0, f, 5, \"127.0.0.1\").setServiceParent(application)\n\
         internet.TCPServer(0, protocol.ServerFactory.forProtocol(wire.Daytime)).setServiceParent(application)\n\
         strports.service(\"tcp:0\", portforward.ProxyFactory(\"example.org\", 80), reactor=reactor).setServiceParent(application)\n"
    ));
    assert_eq!(
        children_of(&tree, "endpoint"),
        ["tcp:0:interface=127.0.0.1:backlog=5", "tcp:0", "tcp:0"]
    );
    assert_eq!(tree[0]["factory"]["type"], "rtwisted.Qotd");
    assert_eq!(tree[1]["factory"]["type"], "rtwisted.Daytime");
    assert_eq!(tree[2]["factory"]["dest"], "tcp:host=example.org:port=80");

    let error = failure("f = protocol.ServerFactory()\ninternet.TCPServer(0, f)\n");
    assert!(
        error.starts_with("app.tac:8:1: ServerFactory has no protocol: set it first (factory.protocol = wire.Echo)"),
        "{error}"
    );
    let error = failure(
        "f = protocol.ServerFactory()\nf.protocol = wire.Echo\ns = internet.TCPServer(0, f)\nf.protocol = wire.Discard\n",
    );
    assert!(
        error.starts_with(
            "app.tac:10:1: set ServerFactory's protocol before giving it to a service"
        ),
        "{error}"
    );
    for (line, needle) in [
        (
            "internet.TCPServer(0, wire.Echo)",
            "wire.Echo is a protocol, not a factory: give protocol.Factory.forProtocol(wire.Echo)",
        ),
        (
            "wire.Echo()",
            "wire.Echo() would make one protocol; a service takes a factory",
        ),
        (
            "f = protocol.Factory()\nf.protocol = 3",
            "a factory's protocol must be one of Twisted's protocol classes",
        ),
        (
            "f = portforward.ProxyFactory(\"h\", 1)\nf.protocol = wire.Echo",
            "PortForward has no settable attribute 'protocol'",
        ),
    ] {
        let error = failure(&format!("{line}\n"));
        assert!(error.contains(needle), "{line}: {error}");
    }
}

fn children_of(tree: &[serde_json::Value], field: &str) -> Vec<String> {
    tree.iter()
        .map(|child| child[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn endpoints_ssl_and_clients_spell_as_in_twisted() {
    let tree = children(&format!(
        "{HEAD}e = endpoints.serverFromString(reactor, \"tcp6:0:interface=[::1]\")\n\
         internet.StreamServerEndpointService(e, wire_factory()).setServiceParent(application)\n\
         internet.SSLServer(0, wire_factory(), ssl.DefaultOpenSSLContextFactory(\"k.pem\", \"c.pem\")).setServiceParent(application)\n\
         internet.SSLClient(\"example.org\", 443, wire_factory(), ssl.ClientContextFactory(), 5, (\"127.0.0.1\", 0)).setServiceParent(application)\n\
         internet.TCPClient(\"example.org\", 80, wire_factory(), bindAddress=\"127.0.0.2\").setServiceParent(application)\n\
         internet.ClientService(endpoints.clientFromString(reactor, \"unix:/run/x.sock\"), wire_factory()).setServiceParent(application)\n\
         internet.StreamServerEndpointService(endpoints.UNIXServerEndpoint(reactor, \"/run/y.sock\", 5, 0o600, 0), wire_factory()).setServiceParent(application)\n\
         internet.StreamServerEndpointService(endpoints.TCP4ServerEndpoint(reactor, 0, 50, \"127.0.0.1\"), wire_factory()).setServiceParent(application)\n\
         internet.TimerService(60, sob.IPersistable(application).save).setServiceParent(application)\n"
    ).replace("\ne = ", "\ndef wire_factory():\n    return protocol.Factory.forProtocol(wire.Echo)\ne = "));
    assert_eq!(
        children_of(&tree, "endpoint"),
        [
            r"tcp6:0:interface=\:\:1",
            "ssl:0:privateKey=k.pem:certKey=c.pem",
            "tls:host=example.org:port=443:timeout=5:bindAddress=127.0.0.1",
            "tcp:host=example.org:port=80:bindAddress=127.0.0.2",
            "unix:path=/run/x.sock",
            "unix:/run/y.sock:mode=600:lockfile=0:backlog=5",
            "tcp:0:interface=127.0.0.1",
            "",
        ]
    );
    assert_eq!(tree[4]["type"], "rtwisted.ReconnectingClient");
    assert_eq!(tree[7]["task"]["type"], "rtwisted.Checkpoint");
    for (line, needle) in [
        (
            "internet.StreamServerEndpointService(endpoints.clientFromString(reactor, \"tcp:a:1\"), None)",
            "is a client endpoint; this needs a server endpoint",
        ),
        (
            "ssl.DefaultOpenSSLContextFactory(\"k\", \"c\", sslmethod=3)",
            "sslmethod has no meaning here",
        ),
        (
            "internet.TimerService(5, lambda: None)",
            "TimerService(): the task is one of rtwisted's",
        ),
        (
            "sob.IPersistable(application).save()",
            "rtwistd saves the running tree",
        ),
        (
            "internet.TCPClient(\"a\", 1, None, bindAddress=(\"127.0.0.1\", 80))",
            "bindAddress: a client binds only its address",
        ),
        (
            "internet.ClientService(\"tcp:a:1\", None, retryPolicy=3)",
            "retryPolicy takes Python code",
        ),
        ("reactor.run()", "reactor.run() cannot run in a TAC file"),
    ] {
        let error = failure(&format!("{line}\n"));
        assert!(error.contains(needle), "{line}: {error}");
    }
}

#[test]
fn os_reads_the_environment_through_the_one_door() {
    // PATH is set in any test environment; the other name is not.
    let tree = run(&format!(
        "{HEAD}a = os.environ[\"PATH\"]\nb = os.environ.get(\"RTWISTED_NOT_SET_HERE\", 7)\n\
         c = os.getenv(\"RTWISTED_NOT_SET_HERE\")\nd = \"PATH\" in os.environ\n\
         if not (a and b == 7 and c == None and d and env(\"PATH\") == a):\n    fail(\"environment\")\n"
    ));
    assert!(tree.is_ok(), "{tree:?}");
    let error = failure("x = os.environ[\"RTWISTED_NOT_SET_HERE\"]\n");
    assert!(
        error.starts_with("app.tac:7:5: the environment variable RTWISTED_NOT_SET_HERE is not set (os.environ[\"RTWISTED_NOT_SET_HERE\"]); set it, or give a default: os.environ.get(\"RTWISTED_NOT_SET_HERE\", \"...\")"),
        "{error}"
    );
}

#[test]
fn a_file_that_imports_service_gets_the_module_and_one_that_does_not_the_function() {
    let imported = children(
        "from twisted.application import service\napplication = service.Application(\"a\")\n\
         service.MultiService().setServiceParent(application)\n",
    );
    assert_eq!(imported[0]["type"], "rtwisted.MultiService");
    let plain = children(
        "application = Application(\"a\")\nservice(\"tcp:0\", Echo()).setServiceParent(application)\n",
    );
    assert_eq!(plain[0]["type"], "rtwisted.StreamServer");
    let error = run("from twisted.application import service\napplication = service.Application(\"a\")\nservice(\"tcp:0\", Echo())\n").unwrap_err();
    assert!(error.starts_with("app.tac:3:1:"), "{error}");
}
