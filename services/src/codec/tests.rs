//! The fast path against typetag alone: for every built-in type of every family, written and
//! read both ways, nested at every level, the bytes, the values and the recorded tags agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use rtwisted_core::codec::{self, ApplicationSeed, Encode, Typetag};
use rtwisted_core::{Application, Child, MultiService, registry};
use serde::de::DeserializeSeed;

use super::*;
use crate::procmon::ProcessSpec;

fn tcp() -> crate::strports::ServerEndpoint {
    "tcp:7001:interface=127.0.0.1".parse().unwrap()
}

fn factories() -> Vec<Arc<dyn ProtocolFactory>> {
    let to = "tcp:host=127.0.0.1:port=7001".parse().unwrap();
    vec![
        Arc::new(Echo::default()),
        Arc::new(Kv::new(64)),
        Arc::new(PortForward::new(to)),
        Arc::new(Discard::default()),
        Arc::new(Chargen::default()),
        Arc::new(Qotd::new(vec!["q".into()])),
        Arc::new(Daytime::default()),
        Arc::new(Time::default()),
        #[cfg(feature = "web")]
        Arc::new(site()),
    ]
}

/// A site with one resource of every kind and settings off their defaults.
#[cfg(feature = "web")]
fn site() -> Site {
    use crate::web::{AccessLog, Resource};
    let mut site = Site::new();
    site.mount("/", Resource::folder("/srv/www")).unwrap();
    site.mount(
        "/api",
        Resource::proxy("tcp:host=127.0.0.1:port=8000".parse().unwrap()),
    )
    .unwrap();
    site.mount(
        "/old",
        Resource::Redirect {
            to: "/new".into(),
            code: 301,
        },
    )
    .unwrap();
    site.mount(
        "/bin",
        Resource::Data {
            data: vec![0, 0xff],
            content_type: "application/x".into(),
        },
    )
    .unwrap();
    site.mount(
        "/text",
        Resource::Data {
            data: b"hi".to_vec(),
            content_type: "text/plain".into(),
        },
    )
    .unwrap();
    site.mount("/health", Resource::Health {}).unwrap();
    site.http.max_headers = 7;
    site.access_log = AccessLog::File("/var/log/web.log".into());
    site
}

fn datagrams() -> Vec<Arc<dyn DatagramProtocol>> {
    vec![
        Arc::new(Echo::default()),
        Arc::new(Discard::default()),
        Arc::new(Chargen::default()),
        Arc::new(Qotd::new(vec!["q".into()])),
        Arc::new(Daytime::default()),
        Arc::new(Time::default()),
    ]
}

fn tasks() -> Vec<Arc<dyn TimerTask>> {
    vec![
        Arc::new(LogLine {
            message: "m".into(),
        }),
        Arc::new(RunCommand {
            program: "true".into(),
            args: vec!["x".into()],
        }),
        Arc::new(TouchFile { path: "f".into() }),
        Arc::new(Checkpoint {}),
    ]
}

/// One of every built-in service with one of every built-in member of every family.
fn services() -> Vec<Child> {
    let udp = || "udp:7001:interface=127.0.0.1".parse().unwrap();
    let to = || "tcp:host=127.0.0.1:port=7001".parse().unwrap();
    let mut children = Vec::new();
    for (i, factory) in factories().into_iter().enumerate() {
        let server = StreamServer::new(tcp(), factory);
        children.push(Child::named(format!("s{i}"), Box::new(server)).unwrap());
    }
    for (i, protocol) in datagrams().into_iter().enumerate() {
        let server = DatagramServer::new(udp(), protocol);
        children.push(Child::named(format!("d{i}"), Box::new(server)).unwrap());
    }
    for (i, task) in tasks().into_iter().enumerate() {
        let timer = TimerService::new(1.5, task).unwrap();
        children.push(Child::named(format!("t{i}"), Box::new(timer)).unwrap());
    }
    let client = StreamClient::new(to(), Arc::new(Echo::default()));
    children.push(Child::named("client", Box::new(client)).unwrap());
    let again = ReconnectingClient::new(to(), Arc::new(Kv::new(8)));
    children.push(Child::unnamed(Box::new(again)));
    let monitor = ProcessMonitor::new()
        .with_process(ProcessSpec::new("p", "true"))
        .unwrap();
    children.push(Child::named("procmon", Box::new(monitor)).unwrap());
    children
}

/// Every built-in service at the top, inside a collection, and inside a collection inside that.
fn application() -> Application {
    let mut deepest = MultiService::new();
    for child in services() {
        deepest.insert(child).unwrap();
    }
    let mut middle = MultiService::new();
    for child in services() {
        middle.insert(child).unwrap();
    }
    middle.insert_named("deepest", Box::new(deepest)).unwrap();
    middle
        .insert_unnamed(Box::new(MultiService::new()))
        .unwrap();
    let mut app = Application::new("every").unwrap();
    for child in services() {
        app.services_mut().insert(child).unwrap();
    }
    app.services_mut()
        .insert_named("middle", Box::new(middle))
        .unwrap();
    app
}

fn msgpack<C: Catalog>(app: &Application) -> (Vec<u8>, Vec<String>) {
    let (bytes, tags) = codec::recording(|| rmp_serde::to_vec_named(&Encode::<C>::new(app)));
    (bytes.unwrap(), tags)
}

fn json<C: Catalog>(app: &Application, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(&Encode::<C>::new(app)).unwrap()
    } else {
        serde_json::to_string(&Encode::<C>::new(app)).unwrap()
    }
}

fn read_msgpack<C: Catalog>(bytes: &[u8]) -> (Result<Application, String>, Vec<String>) {
    codec::recording(|| {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
        ApplicationSeed::<C>::new()
            .deserialize(&mut deserializer)
            .map_err(|error| error.to_string())
    })
}

fn read_json<C: Catalog>(text: &str) -> Result<Application, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    ApplicationSeed::<C>::new()
        .deserialize(&mut deserializer)
        .map_err(|error| error.to_string())
}

#[test]
fn every_built_in_tag_is_registered_and_in_the_test_tree() {
    let (_, tags) = msgpack::<BuiltIns>(&application());
    let tags: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let mut expected: BTreeSet<&str> = [
        MultiService::TAG,
        StreamServer::TAG,
        DatagramServer::TAG,
        StreamClient::TAG,
        ReconnectingClient::TAG,
        TimerService::TAG,
        ProcessMonitor::TAG,
        Echo::TAG,
        Kv::TAG,
        PortForward::TAG,
        Discard::TAG,
        Chargen::TAG,
        Qotd::TAG,
        Daytime::TAG,
        Time::TAG,
        LogLine::TAG,
        RunCommand::TAG,
        TouchFile::TAG,
        Checkpoint::TAG,
    ]
    .into();
    #[cfg(feature = "web")]
    expected.insert(Site::TAG);
    assert_eq!(tags, expected);
    expected.retain(|tag| registry::lookup(tag).is_none());
    assert!(expected.is_empty(), "not registered: {expected:?}");
    registry::check().unwrap();
}

#[test]
fn the_fast_path_writes_the_bytes_of_the_typetag_path_in_every_format() {
    let app = application();
    let (fast, fast_tags) = msgpack::<BuiltIns>(&app);
    let (slow, slow_tags) = msgpack::<Typetag>(&app);
    assert_eq!(fast, slow);
    assert_eq!(fast_tags, slow_tags);
    for pretty in [false, true] {
        assert_eq!(
            json::<BuiltIns>(&app, pretty),
            json::<Typetag>(&app, pretty)
        );
    }
    assert_eq!(
        serde_json::to_value(Encode::<BuiltIns>::new(&app)).unwrap(),
        serde_json::to_value(&app).unwrap()
    );
}

#[test]
fn each_built_in_is_written_as_typetag_alone_writes_it() {
    // A service without its name is what typetag alone writes for it.
    for child in services() {
        let service = child.service();
        let fast = rmp_serde::to_vec_named(&Alone(service)).unwrap();
        let typetag = rmp_serde::to_vec_named(service).unwrap();
        assert_eq!(fast, typetag, "{}", service.type_tag());
        assert_eq!(
            serde_json::to_string(&Alone(service)).unwrap(),
            serde_json::to_string(service).unwrap()
        );
    }
    for factory in factories() {
        let mut fast = Vec::new();
        factory::write(
            &*factory,
            &mut rmp_serde::Serializer::new(&mut fast).with_struct_map(),
        )
        .unwrap();
        assert_eq!(fast, rmp_serde::to_vec_named(&*factory).unwrap());
    }
    for protocol in datagrams() {
        let mut fast = Vec::new();
        datagram::write(&*protocol, &mut serde_json::Serializer::new(&mut fast)).unwrap();
        assert_eq!(fast, serde_json::to_vec(&*protocol).unwrap());
    }
    for one in tasks() {
        let mut fast = Vec::new();
        task::write(&*one, &mut serde_json::Serializer::new(&mut fast)).unwrap();
        assert_eq!(fast, serde_json::to_vec(&*one).unwrap());
    }
}

/// A built-in service written through the catalog with no name key.
struct Alone<'a>(&'a dyn Service);

impl Serialize for Alone<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BuiltIns::write(
            self.0,
            FieldsAfterTag::new(self.0.type_tag(), None, serializer),
        )
    }
}

#[test]
fn the_fast_path_reads_what_typetag_reads_and_both_read_either() {
    let app = application();
    let (bytes, written_tags) = msgpack::<BuiltIns>(&app);
    let (fast, fast_tags) = read_msgpack::<BuiltIns>(&bytes);
    let (slow, slow_tags) = read_msgpack::<Typetag>(&bytes);
    assert_eq!(
        fast_tags, written_tags,
        "reading finds what writing recorded"
    );
    assert_eq!(slow_tags, written_tags);
    let (fast, slow) = (fast.unwrap(), slow.unwrap());
    assert_eq!(msgpack::<Typetag>(&fast).0, bytes);
    assert_eq!(msgpack::<Typetag>(&slow).0, bytes);
    let text = json::<Typetag>(&app, true);
    assert_eq!(
        json::<Typetag>(&read_json::<BuiltIns>(&text).unwrap(), true),
        text
    );
    assert_eq!(
        json::<Typetag>(&read_json::<Typetag>(&text).unwrap(), true),
        text
    );
    // Names live beside the services, and come back as they were.
    let middle = fast.services().get("middle").unwrap();
    let deepest = middle
        .service()
        .collection()
        .unwrap()
        .get("deepest")
        .unwrap();
    let names: Vec<_> = deepest
        .service()
        .collection()
        .unwrap()
        .iter()
        .map(|child| child.name().map(str::to_owned))
        .collect();
    let expected: Vec<_> = services()
        .iter()
        .map(|child| child.name().map(str::to_owned))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn malformed_input_is_refused_by_both_paths() {
    let good = json::<Typetag>(&application(), false);
    let broken = [
        // a field of the wrong type in a built-in service, a factory and a task
        good.replacen(
            r#""endpoint":"tcp:7001:interface=127.0.0.1""#,
            r#""endpoint":7"#,
            1,
        ),
        good.replacen(r#""max_value_bytes":64"#, r#""max_value_bytes":"big""#, 1),
        good.replacen(r#""message":"m""#, r#""message":[]"#, 1),
        // a tag nobody registered, at each level
        good.replacen(
            r#""type":"rtwisted.StreamServer""#,
            r#""type":"acme.Nope""#,
            1,
        ),
        good.replacen(r#""type":"rtwisted.Echo""#, r#""type":"acme.Nope""#, 1),
        good.replacen(r#""type":"rtwisted.LogLine""#, r#""type":"acme.Nope""#, 1),
        // a name twice, a name that is not a name, a name that is no string
        good.replacen(r#""name":"s0""#, r#""name":"s0","name":"again""#, 1),
        good.replacen(r#""name":"s0""#, r#""name":"a/b""#, 1),
        good.replacen(r#""name":"s0""#, r#""name":3"#, 1),
        // two siblings with one name
        good.replacen(r#""name":"s1""#, r#""name":"s0""#, 1),
        // a service that is not a map
        good.replacen(
            r#"{"type":"rtwisted.StreamServer","name":"s0""#,
            r#"7,{"x":"s0""#,
            1,
        ),
    ];
    for (i, text) in broken.iter().enumerate() {
        assert_ne!(text, &good, "case {i} did not change the input");
        let fast = read_json::<BuiltIns>(text);
        let slow = read_json::<Typetag>(text);
        assert!(fast.is_err(), "case {i}: the fast path accepted it");
        assert!(slow.is_err(), "case {i}: the typetag path accepted it");
    }
}

#[test]
fn a_type_key_late_in_the_map_or_a_name_before_it_still_reads() {
    let text = r#"{"name": "x", "services": {"children": [
        {"name": "late", "endpoint": "tcp:7001", "type": "rtwisted.StreamServer",
         "factory": {"type": "rtwisted.Echo"}}]}}"#;
    for app in [read_json::<BuiltIns>(text), read_json::<Typetag>(text)] {
        let app = app.unwrap();
        let child = app.services().get("late").unwrap();
        assert_eq!(child.service().type_tag(), StreamServer::TAG);
    }
}
