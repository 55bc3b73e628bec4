//! TAC programs evaluated in-process: Twisted's tree rules, the builtins' arguments, and the
//! errors a user sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_core::Application;
use rtwisted_core::tree::Node;

use super::{TacError, evaluate};

/// Evaluates `source` as `app.tac` in a fresh folder; errors name the file as `app.tac`.
fn evaluated(source: &str) -> Result<Application, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tac");
    std::fs::write(&path, source).unwrap();
    evaluate(&path).map_err(|error: TacError| {
        error
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    })
}

fn run(source: &str) -> Result<Application, String> {
    evaluated(source)
}

fn error(source: &str) -> String {
    match evaluated(source) {
        Ok(app) => panic!("expected an error, built {app:?}"),
        Err(message) => message,
    }
}

fn paths(app: &Application) -> Vec<String> {
    Node::from_tree(app.services())
        .unwrap()
        .walk()
        .map(|node| node.path.clone())
        .collect()
}

const APP: &str = "application = Application(\"a\")\n";

/// Asserts that [`APP`] followed by `body` fails with an error that contains `needle`.
fn assert_fails(body: &str, needle: &str) {
    let message = error(&format!("{APP}{body}"));
    assert!(message.contains(needle), "{message}");
}

#[test]
fn set_service_parent_moves_a_service_as_twisted_does() {
    let app = run(&format!(
        "{APP}one = MultiService(name=\"one\")\none.setServiceParent(application)\n\
         two = MultiService(name=\"two\")\ntwo.setServiceParent(application)\n\
         s = service(\"tcp:0\", Echo(), name=\"s\")\ns.setServiceParent(one)\ns.setServiceParent(two)\n"
    ))
    .unwrap();
    assert_eq!(paths(&app), ["/", "one", "two", "two/s"]);
}

#[test]
fn disown_remove_and_rename_before_parenting_work() {
    let app = run(&format!(
        "{APP}a = service(\"tcp:0\", Echo())\na.setName(\"first\")\na.setServiceParent(application)\n\
         b = service(\"tcp:0\", Echo(), name=\"second\")\napplication.addService(b)\n\
         c = service(\"tcp:0\", Echo(), name=\"third\")\nc.set_service_parent(application)\n\
         c.disownServiceParent()\napplication.removeService(b)\n\
         if application.getServiceNamed(\"first\").name != \"first\":\n    fail(\"lookup\")\n"
    ))
    .unwrap();
    assert_eq!(paths(&app), ["/", "first"]);
}

#[test]
fn tree_rules_are_checked_where_they_break() {
    assert!(
        error(&format!(
            "{APP}m = MultiService(name=\"m\")\nm.setServiceParent(application)\nm.setName(\"n\")\n"
        ))
        .starts_with("app.tac:4:1: cannot rename MultiService 'm' while it has a parent")
    );
    assert_fails(
        "m = MultiService(name=\"m\")\nm.setServiceParent(m)\n",
        "app.tac:3:1: MultiService 'm' cannot be put inside itself",
    );
    assert_fails(
        "s = service(\"tcp:0\", Echo())\nservice(\"tcp:0\", Echo()).setServiceParent(s)\n",
        "StreamServer cannot hold services",
    );
    assert_fails(
        "application.setServiceParent(application)\n",
        "the application is the root",
    );
    assert_fails(
        "application.getServiceNamed(\"nope\")\n",
        "has no service named 'nope'",
    );
    assert_fails(
        "s = service(\"tcp:0\", Echo(), name=\"bad/name\")\n",
        "bad/name",
    );
}

#[test]
fn process_settings_through_iprocess_and_keywords() {
    let app = run(
        "application = Application(\"a\", uid=0, gid=\"root\", umask=0o022, style=\"tas\")\n\
         IProcess(application).processName = \"renamed\"\n\
         if IProcess(application).processName != \"renamed\":\n    fail(\"read back\")\n",
    )
    .unwrap();
    assert_eq!(app.process().uid, Some(0));
    assert_eq!(app.process().gid, Some(0));
    assert_eq!(app.process().umask, Some(0o022));
    assert_eq!(app.process().process_name.as_deref(), Some("renamed"));
    assert_eq!(app.persistence().style, rtwisted_core::Style::Tas);
    assert!(
        error("application = Application(\"a\", uid=\"no-such-user-here\")\n")
            .contains("no user named 'no-such-user-here'")
    );
    assert_fails(
        "IProcess(application).colour = 1\n",
        "an application has no setting 'colour'",
    );
    assert!(error("application = Application(\"a\", style=\"xml\")\n").contains("xml"));
}

#[test]
fn registered_types_take_their_fields_by_keyword_only() {
    let app = run(&format!(
        "{APP}StreamServer(endpoint=\"tcp:0\", factory=Qotd(quotes=[\"q\"]), name=\"q\").setServiceParent(application)\n\
         make(\"rtwisted.TimerService\", period=5, task=LogLine(message=\"m\"), name=\"t\").setServiceParent(application)\n"
    ))
    .unwrap();
    assert_eq!(paths(&app), ["/", "q", "t"]);
    assert_fails(
        "Echo(1)\n",
        "Echo() takes keyword arguments only, named after its fields",
    );
    assert_fails("make(\"nope.Type\")\n", "no type 'nope.Type'");
    assert_fails(
        "TimerService(-1, LogLine(message=\"m\"))\n",
        "TimerService(): the step must be a positive number of seconds, not -1",
    );
    assert_fails(
        "service(\"tcp:0\", [1, {1: 2}])\n",
        "dict keys given to rtwisted must be strings",
    );
}

#[test]
fn plugins_take_their_options_as_keywords() {
    let app = run(&format!(
        "{APP}plugin(\"kv\", port=\"tcp:0:interface=127.0.0.1\", max_value_size=16).setServiceParent(application)\n\
         plugin(\"echo\", port=\"tcp:0\").setServiceParent(MultiService(name=\"unused\"))\n"
    ))
    .unwrap();
    assert_eq!(paths(&app), ["/", "kv"]);
    assert_fails("plugin(\"nope\")\n", "no plugin named 'nope' (plugins: ");
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let message = error("application = Application(\"a\"\n");
    assert!(message.starts_with("app.tac:2:1: Parse error"), "{message}");
}
