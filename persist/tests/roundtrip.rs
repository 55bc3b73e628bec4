//! Any tree saved and loaded is equal in structure, names, order and fields, in both styles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use rtwisted_core::{Application, Child, Lifecycle, MultiService, Style};
use rtwisted_services::net::StreamServer;
use rtwisted_services::protocols::Echo;

#[derive(Debug, Clone)]
enum Spec {
    Multi(Option<String>, Vec<Spec>),
    Server(Option<String>, String),
}

fn name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z][a-z0-9_.-]{0,8}|[éü✓][a-z]{0,3}")
}

fn endpoint() -> impl Strategy<Value = String> {
    (any::<u16>(), any::<[u8; 4]>(), prop::bool::ANY, 1u32..1000).prop_map(
        |(port, ip, with_ip, backlog)| {
            if with_ip {
                let ip = std::net::Ipv4Addr::from(ip);
                format!("tcp:{port}:interface={ip}:backlog={backlog}")
            } else {
                format!("tcp:{port}")
            }
        },
    )
}

fn spec() -> impl Strategy<Value = Spec> {
    let leaf = prop_oneof![
        (name(), endpoint()).prop_map(|(n, e)| Spec::Server(n, e)),
        name().prop_map(|n| Spec::Multi(n, vec![])),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        (name(), prop::collection::vec(inner, 0..6)).prop_map(|(n, c)| Spec::Multi(n, c))
    })
}

fn build(spec: &Spec) -> Child {
    match spec {
        Spec::Server(name, endpoint) => {
            let server = StreamServer::new(endpoint.parse().unwrap(), Arc::new(Echo::default()));
            Child::new(name.clone(), Box::new(server)).unwrap()
        }
        Spec::Multi(name, children) => {
            let mut multi = MultiService::new();
            for child in children {
                // Sibling names must be unique: a clash is skipped, as the tree would refuse it.
                let _ = multi.insert(build(child));
            }
            Child::new(name.clone(), Box::new(multi)).unwrap()
        }
    }
}

fn app_from(children: &[Spec], uid: Option<u32>, umask: Option<u32>) -> Application {
    let mut app = Application::new("prop-app").unwrap();
    for child in children {
        let _ = app.services_mut().insert(build(child));
    }
    app.process_mut().uid = uid;
    app.process_mut().umask = umask;
    app.process_mut().process_name = Some("daemon \"quoted\" ✓".into());
    app
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_tree_round_trips_in_both_styles(
        children in prop::collection::vec(spec(), 0..6),
        uid in proptest::option::of(any::<u32>()),
        umask in proptest::option::of(0u32..0o777),
    ) {
        let app = app_from(&children, uid, umask);
        let before = serde_json::to_value(&app).unwrap();
        for style in [Style::Tap, Style::Tas] {
            let (bytes, header) = rtwisted_persist::encode(&app, style).unwrap();
            let loaded = rtwisted_persist::decode(&bytes).unwrap();
            prop_assert_eq!(&loaded.header, &header);
            prop_assert_eq!(loaded.app.persistence().style, style);
            let mut after = serde_json::to_value(&loaded.app).unwrap();
            // The loaded style is recorded on the application; everything else is identical.
            after["persistence"]["style"] = before["persistence"]["style"].clone();
            prop_assert_eq!(&after, &before);
        }
    }
}

#[tokio::test]
async fn a_running_tree_thaws_with_every_service_stopped() {
    let mut app = Application::new("live").unwrap();
    let mut inner = MultiService::new();
    inner
        .insert_named("leaf", Box::new(MultiService::new()))
        .unwrap();
    app.services_mut()
        .insert_named("inner", Box::new(inner))
        .unwrap();
    Lifecycle::default()
        .start(app.services_mut())
        .await
        .unwrap();
    assert!(
        app.services()
            .find(&"inner/leaf".parse().unwrap())
            .unwrap()
            .running()
    );

    for style in [Style::Tap, Style::Tas] {
        let (bytes, _) = rtwisted_persist::encode(&app, style).unwrap();
        let loaded = rtwisted_persist::decode(&bytes).unwrap();
        let services = loaded.app.services();
        assert!(!services.running());
        assert!(!services.get("inner").unwrap().running());
        assert!(
            !services
                .find(&"inner/leaf".parse().unwrap())
                .unwrap()
                .running()
        );
    }
}

#[test]
fn the_manifest_lists_every_type_used_with_its_version() {
    let app = app_from(
        &[Spec::Server(Some("echo".into()), "tcp:7001".into())],
        None,
        None,
    );
    let (_, header) = rtwisted_persist::encode(&app, Style::Tap).unwrap();
    assert_eq!(
        common::manifest_tags(&header),
        [
            "rtwisted.Echo",
            "rtwisted.MultiService",
            "rtwisted.StreamServer"
        ]
    );
    assert!(header.fields.manifest.iter().all(|e| e.version == 1));
    assert!(header.checksum.starts_with("sha256:"));
}

#[test]
fn a_user_map_with_a_type_key_saves_and_loads() {
    // The manifest is what the codec wrote, not a guess from maps that start with `type`.
    let spec =
        rtwisted_services::procmon::ProcessSpec::new("job", "true").with_env("type", "batch");
    let monitor = rtwisted_services::procmon::ProcessMonitor::new()
        .with_process(spec)
        .unwrap();
    let mut app = Application::new("jobs").unwrap();
    app.services_mut()
        .insert_named("procmon", Box::new(monitor))
        .unwrap();
    for style in [Style::Tap, Style::Tas] {
        let (bytes, header) = rtwisted_persist::encode(&app, style).unwrap();
        assert_eq!(
            common::manifest_tags(&header),
            ["rtwisted.MultiService", "rtwisted.ProcessMonitor"]
        );
        let loaded = rtwisted_persist::decode(&bytes).unwrap();
        assert_eq!(
            serde_json::to_value(&loaded.app).unwrap()["services"],
            serde_json::to_value(&app).unwrap()["services"]
        );
    }
}
