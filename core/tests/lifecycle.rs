//! The service tree's lifecycle rules, one test per rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtwisted_core::lifecycle::{AddError, ReplaceError, StopFailureKind};
use rtwisted_core::{
    Child, Lifecycle, LifecycleState, MultiService, Service, ServiceError, ServicePath,
    StartContext, StopContext, StopReason,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

type Log = Arc<Mutex<Vec<String>>>;

/// A service that records every hook call and can be told to fail or hang.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Probe {
    #[serde(skip)]
    label: String,
    #[serde(default)]
    fail_privileged: bool,
    #[serde(default)]
    fail_start: bool,
    #[serde(default)]
    fail_stop: bool,
    #[serde(default)]
    hang_stop: bool,
    #[serde(skip)]
    log: Log,
    #[serde(skip)]
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl Probe {
    fn new(name: &str, log: &Log) -> Self {
        Probe {
            label: name.to_owned(),
            log: Arc::clone(log),
            ..Probe::default()
        }
    }
    fn record(&self, event: &str) {
        let name = if self.label.is_empty() {
            "?"
        } else {
            &self.label
        };
        self.log.lock().unwrap().push(format!("{event} {name}"));
    }
}

#[typetag::serde(name = "test.Probe")]
#[async_trait::async_trait]
impl Service for Probe {
    async fn privileged_start(&mut self, _cx: &mut StartContext) -> Result<(), ServiceError> {
        self.record("privileged");
        if self.fail_privileged {
            return Err("no permission".into());
        }
        Ok(())
    }
    async fn start(&mut self, _cx: &mut StartContext) -> Result<(), ServiceError> {
        self.record("start");
        if let Some((entered, release)) = &self.gate {
            entered.notify_one();
            release.notified().await;
        }
        if self.fail_start {
            return Err("boom".into());
        }
        Ok(())
    }
    async fn quiesce(&mut self) -> Result<(), ServiceError> {
        self.record("quiesce");
        if self.fail_privileged {
            return Err("busy".into());
        }
        Ok(())
    }
    async fn resume(&mut self) {
        self.record("resume");
    }
    async fn stop(&mut self, cx: &StopContext) -> Result<(), ServiceError> {
        self.record(&format!("stop({})", cx.reason()));
        if self.hang_stop {
            std::future::pending::<()>().await;
        }
        if self.fail_stop {
            return Err("stuck".into());
        }
        Ok(())
    }
}

rtwisted_core::register_type!(service "test.Probe", version 1);

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn events(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn probe(name: &str, log: &Log) -> Child {
    Child::named(name, Box::new(Probe::new(name, log))).unwrap()
}

fn probe_with(name: &str, log: &Log, f: impl FnOnce(&mut Probe)) -> Child {
    let mut p = Probe::new(name, log);
    f(&mut p);
    Child::named(name, Box::new(p)).unwrap()
}

fn sub(name: &str, children: Vec<Child>) -> Child {
    Child::named(name, Box::new(root(children))).unwrap()
}

fn root(children: Vec<Child>) -> MultiService {
    let mut multi = MultiService::new();
    for child in children {
        multi.insert(child).unwrap();
    }
    multi
}

/// Three probes a, b and c, with b set up by `set_up_b`.
fn trio(log: &Log, set_up_b: impl FnOnce(&mut Probe)) -> MultiService {
    root(vec![
        probe("a", log),
        probe_with("b", log, set_up_b),
        probe("c", log),
    ])
}

fn all_stopped(collection: &MultiService) -> bool {
    collection.iter().all(|child| {
        child.meta().state() == LifecycleState::Stopped
            && child.service().collection().is_none_or(all_stopped)
    })
}

fn path(text: &str) -> ServicePath {
    text.parse().unwrap()
}

/// A new log, the tree `build` makes of probes recording to it, and the default lifecycle
/// that has started the tree; what the start logged is forgotten.
async fn running(build: impl FnOnce(&Log) -> MultiService) -> (Log, MultiService, Lifecycle) {
    let log = log();
    let mut tree = build(&log);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    events(&log);
    (log, tree, lifecycle)
}

/// Stops `tree` for a shutdown, which must succeed.
async fn shut_down(lifecycle: &Lifecycle, tree: &mut MultiService) {
    lifecycle.stop(tree, StopReason::Shutdown).await.unwrap();
}

/// Asserts that the probes logged `expected` (events joined by ", ") since the last look,
/// and forgets them.
fn assert_logged(log: &Log, expected: &str) {
    assert_eq!(events(log).join(", "), expected);
}

/// Asserts that the probes logged `expected` (as [`assert_logged`]) and that every service
/// in `tree` is stopped.
fn assert_stopped_after(tree: &MultiService, log: &Log, expected: &str) {
    assert_logged(log, expected);
    assert!(all_stopped(tree));
}

/// The names of the top-level children, in order.
fn names(tree: &MultiService) -> Vec<&str> {
    tree.iter().map(|c| c.name().unwrap()).collect()
}

#[tokio::test]
async fn children_start_in_insertion_order_and_stop_in_reverse() {
    let log = log();
    let mut tree = root(vec![
        probe("a", &log),
        probe("b", &log),
        sub("sub", vec![probe("c", &log)]),
    ]);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    assert_logged(
        &log,
        "privileged a, start a, privileged b, start b, privileged c, start c",
    );
    assert!(tree.running());
    assert!(tree.find(&"sub/c".parse().unwrap()).unwrap().running());

    shut_down(&lifecycle, &mut tree).await;
    assert_stopped_after(
        &tree,
        &log,
        "stop(shutdown) c, stop(shutdown) b, stop(shutdown) a",
    );
}

#[tokio::test]
async fn privileged_start_runs_over_the_whole_tree_before_start() {
    let log = log();
    let mut tree = root(vec![probe("a", &log), sub("sub", vec![probe("b", &log)])]);
    let lifecycle = Lifecycle::default();
    lifecycle.privileged_start(&mut tree).await.unwrap();
    assert_logged(&log, "privileged a, privileged b");
    assert!(!tree.running());
    lifecycle.start(&mut tree).await.unwrap();
    assert_logged(&log, "start a, start b");
}

#[tokio::test]
async fn stop_waits_for_every_child_and_reports_every_failure_with_its_path() {
    let (log, mut tree, lifecycle) = running(|log| {
        root(vec![
            probe("a", log),
            probe_with("b", log, |p| p.fail_stop = true),
            sub("sub", vec![probe_with("c", log, |p| p.fail_stop = true)]),
        ])
    })
    .await;

    let err = lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap_err();
    let paths: Vec<String> = err.failures.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(paths, ["sub/c", "b"]);
    assert_eq!(
        err.to_string(),
        "'sub/c' failed to stop: stuck; 'b' failed to stop: stuck"
    );
    assert_stopped_after(
        &tree,
        &log,
        "stop(shutdown) c, stop(shutdown) b, stop(shutdown) a",
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_child_is_reported_by_path_and_the_stop_goes_on() {
    let log = log();
    let mut tree = root(vec![
        probe("a", &log),
        sub("sub", vec![probe_with("b", &log, |p| p.hang_stop = true)]),
        probe("c", &log),
    ]);
    let lifecycle = Lifecycle::new(Duration::from_secs(2));
    lifecycle.start(&mut tree).await.unwrap();
    events(&log);

    let err = lifecycle
        .stop(&mut tree, StopReason::Shutdown)
        .await
        .unwrap_err();
    assert_eq!(err.failures.len(), 1);
    assert_eq!(err.failures[0].path.to_string(), "sub/b");
    assert!(matches!(
        err.failures[0].kind,
        StopFailureKind::TimedOut(d) if d == Duration::from_secs(2)
    ));
    assert_eq!(
        err.to_string(),
        "'sub/b' did not stop within 2.0s and was abandoned"
    );
    assert_stopped_after(
        &tree,
        &log,
        "stop(shutdown) c, stop(shutdown) b, stop(shutdown) a",
    );
}

#[tokio::test]
async fn a_failed_start_stops_what_started_in_reverse_and_names_the_failing_path() {
    let log = log();
    let failing = sub("sub", vec![probe_with("c", &log, |p| p.fail_start = true)]);
    let mut tree = root(vec![
        probe("a", &log),
        probe("b", &log),
        failing,
        probe("d", &log),
    ]);
    let lifecycle = Lifecycle::default();
    let err = lifecycle.start(&mut tree).await.unwrap_err();
    assert_eq!(err.path.to_string(), "sub/c");
    assert_eq!(err.to_string(), "service 'sub/c' failed to start: boom");
    // c's privileged start succeeded, so c is stopped to release what it acquired.
    assert_stopped_after(
        &tree,
        &log,
        "privileged a, start a, privileged b, start b, privileged c, start c, \
         stop(rollback) c, stop(rollback) b, stop(rollback) a",
    );
}

#[tokio::test]
async fn stop_after_a_failed_start_stops_nothing_more() {
    let log = log();
    let mut tree = trio(&log, |b| b.fail_start = true);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap_err();
    events(&log);
    shut_down(&lifecycle, &mut tree).await;
    assert!(
        events(&log).is_empty(),
        "nothing was running, so nothing stops"
    );
}

#[tokio::test]
async fn a_failed_privileged_start_releases_what_was_acquired() {
    let log = log();
    let mut tree = trio(&log, |b| b.fail_privileged = true);
    let lifecycle = Lifecycle::default();
    let err = lifecycle.privileged_start(&mut tree).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "service 'b' failed to start: no permission"
    );
    assert_eq!(err.phase, rtwisted_core::lifecycle::StartPhase::Privileged);
    assert_stopped_after(&tree, &log, "privileged a, privileged b, stop(rollback) a");
}

#[tokio::test]
async fn a_start_failure_after_the_privileged_phase_releases_untouched_siblings() {
    let log = log();
    let mut tree = root(vec![
        probe_with("a", &log, |p| p.fail_start = true),
        probe("b", &log),
    ]);
    let lifecycle = Lifecycle::default();
    lifecycle.privileged_start(&mut tree).await.unwrap();
    events(&log);
    lifecycle.start(&mut tree).await.unwrap_err();
    // b holds what its privileged start acquired (a bound port, say): it is released too.
    assert_logged(&log, "start a, stop(rollback) a, stop(rollback) b");
}

#[tokio::test]
async fn starting_a_running_tree_or_stopping_a_stopped_one_is_a_no_op() {
    let log = log();
    let mut tree = root(vec![probe("a", &log)]);
    let lifecycle = Lifecycle::default();
    shut_down(&lifecycle, &mut tree).await;
    assert!(events(&log).is_empty());
    lifecycle.start(&mut tree).await.unwrap();
    lifecycle.start(&mut tree).await.unwrap();
    assert_logged(&log, "privileged a, start a");
    shut_down(&lifecycle, &mut tree).await;
    shut_down(&lifecycle, &mut tree).await;
    assert_logged(&log, "stop(shutdown) a");
}

#[tokio::test]
async fn adding_a_child_to_a_running_parent_starts_it() {
    let (log, mut tree, lifecycle) = running(|log| root(vec![probe("a", log)])).await;
    lifecycle
        .add_service(&mut tree, &ServicePath::root(), probe("b", &log))
        .await
        .unwrap();
    assert_logged(&log, "privileged b, start b");
    assert!(tree.get("b").unwrap().running());
}

#[tokio::test]
async fn adding_a_child_to_a_stopped_parent_does_not_start_it() {
    let log = log();
    let mut tree = root(vec![]);
    Lifecycle::default()
        .add_service(&mut tree, &ServicePath::root(), probe("a", &log))
        .await
        .unwrap();
    assert!(events(&log).is_empty());
    assert!(!tree.get("a").unwrap().running());
}

#[tokio::test]
async fn a_child_that_fails_to_start_in_a_running_parent_is_handed_back() {
    let log = log();
    let mut tree = root(vec![probe("a", &log)]);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    let err = lifecycle
        .add_service(
            &mut tree,
            &ServicePath::root(),
            probe_with("b", &log, |p| p.fail_start = true),
        )
        .await
        .unwrap_err();
    let AddError::Start { error, child } = err else {
        panic!("expected a start error");
    };
    assert_eq!(error.to_string(), "service 'b' failed to start: boom");
    assert_eq!(child.name(), Some("b"));
    assert!(!child.running());
    assert_eq!(tree.len(), 1);
}

#[tokio::test]
async fn adding_a_clashing_name_to_a_running_parent_changes_nothing() {
    let (log, mut tree, lifecycle) = running(|log| root(vec![probe("a", log)])).await;
    let err = lifecycle
        .add_service(&mut tree, &ServicePath::root(), probe("a", &log))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot have two services with the same name 'a'"
    );
    assert!(events(&log).is_empty());
    assert_eq!(tree.len(), 1);
}

#[tokio::test]
async fn removing_a_child_from_a_running_parent_stops_it() {
    let (log, mut tree, lifecycle) =
        running(|log| root(vec![probe("a", log), probe("b", log)])).await;
    let removed = lifecycle
        .remove_service(&mut tree, &path("a"))
        .await
        .unwrap();
    assert_logged(&log, "stop(removed) a");
    assert!(!removed.running());
    assert_eq!(tree.len(), 1);
    assert!(tree.get("b").unwrap().running());
}

#[tokio::test]
async fn a_plain_insert_into_a_running_parent_is_refused() {
    let log = log();
    let mut tree = root(vec![]);
    Lifecycle::default().start(&mut tree).await.unwrap();
    let err = tree.insert(probe("a", &log)).unwrap_err();
    assert!(err.to_string().contains("Lifecycle::add_service"), "{err}");
    assert!(tree.is_empty());
}

#[tokio::test]
async fn a_child_added_while_its_parent_is_starting_starts_exactly_once() {
    let log = log();
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let gate = (Arc::clone(&entered), Arc::clone(&release));
    let tree = Arc::new(tokio::sync::Mutex::new(root(vec![probe_with(
        "slow",
        &log,
        |p| p.gate = Some(gate),
    )])));
    let lifecycle = Lifecycle::default();

    let starter = {
        let tree = Arc::clone(&tree);
        let lifecycle = lifecycle.clone();
        tokio::spawn(async move { lifecycle.start(&mut *tree.lock().await).await })
    };
    entered.notified().await;
    let adder = {
        let tree = Arc::clone(&tree);
        let lifecycle = lifecycle.clone();
        let late = probe("late", &log);
        tokio::spawn(async move {
            lifecycle
                .add_service(&mut *tree.lock().await, &ServicePath::root(), late)
                .await
        })
    };
    tokio::task::yield_now().await;
    release.notify_one();
    starter.await.unwrap().unwrap();
    adder.await.unwrap().unwrap();

    let starts: Vec<_> = events(&log)
        .into_iter()
        .filter(|e| e.starts_with("start"))
        .collect();
    assert_eq!(starts, ["start slow", "start late"]);
    assert!(tree.lock().await.get("late").unwrap().running());
}

#[tokio::test]
async fn the_running_flag_is_never_serialized() {
    let log = log();
    let mut tree = root(vec![probe("a", &log)]);
    Lifecycle::default().start(&mut tree).await.unwrap();
    let json = serde_json::to_value(&tree).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"children": [{
            "type": "test.Probe", "name": "a", "fail_privileged": false, "fail_start": false,
            "fail_stop": false, "hang_stop": false
        }]})
    );
    let thawed: MultiService = serde_json::from_value(json).unwrap();
    assert!(all_stopped(&thawed));
    assert_eq!(thawed.get("a").unwrap().name(), Some("a"));
}

#[tokio::test]
async fn adding_below_a_running_nested_collection_starts_the_child_there() {
    let (log, mut tree, lifecycle) =
        running(|log| root(vec![sub("sub", vec![probe("a", log)])])).await;
    lifecycle
        .add_service(&mut tree, &path("sub"), probe("b", &log))
        .await
        .unwrap();
    assert_logged(&log, "privileged b, start b");
    assert!(tree.find(&path("sub/b")).unwrap().running());
    // A plain insert into the running nested collection is refused as well.
    let nested = tree.find_mut(&path("sub")).unwrap();
    let collection = nested.service_mut().collection_mut().unwrap();
    assert!(collection.insert(probe("c", &log)).is_err());
}

#[tokio::test]
async fn replacing_a_running_child_stops_the_old_and_starts_the_new_in_its_place() {
    let (log, mut tree, lifecycle) = running(|log| trio(log, |_| ())).await;
    let replacement = Box::new(Probe::new("b2", &log));
    let old = lifecycle
        .replace_service(&mut tree, &path("b"), replacement)
        .await
        .unwrap();
    assert_logged(&log, "stop(replaced) b, privileged b2, start b2");
    assert!(!old.running());
    assert_eq!(names(&tree), ["a", "b", "c"], "same place, same name");
    assert!(tree.get("b").unwrap().running());
}

#[tokio::test]
async fn a_replacement_that_fails_to_start_puts_the_old_one_back_running() {
    let (log, mut tree, lifecycle) =
        running(|log| root(vec![probe("a", log), probe("b", log)])).await;
    let mut broken = Probe::new("b2", &log);
    broken.fail_start = true;
    let err = lifecycle
        .replace_service(&mut tree, &path("a"), Box::new(broken))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReplaceError::Start { restored: None, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "service 'a' failed to start: boom; the old service runs again"
    );
    assert_logged(
        &log,
        "stop(replaced) a, privileged b2, start b2, stop(rollback) b2, privileged a, start a",
    );
    assert_eq!(names(&tree), ["a", "b"]);
    assert!(tree.get("a").unwrap().running());
}

fn saved(tree: &MultiService) -> serde_json::Value {
    serde_json::to_value(tree).unwrap()
}

#[tokio::test]
async fn an_apply_touches_only_what_differs() {
    let (log, mut tree, lifecycle) = running(|log| {
        root(vec![
            probe("keep", log),
            probe("change", log),
            probe("drop", log),
            sub("sub", vec![probe("inner", log), probe("deep", log)]),
        ])
    })
    .await;
    let wanted = root(vec![
        probe("keep", &log),
        probe_with("change", &log, |p| p.fail_stop = true),
        sub(
            "sub",
            vec![
                probe("inner", &log),
                probe_with("deep", &log, |p| p.hang_stop = false),
            ],
        ),
        probe("new", &log),
    ]);
    let report = lifecycle.apply(&mut tree, wanted).await.unwrap();
    assert_eq!(report.added, [path("new")]);
    assert_eq!(report.removed, [path("drop")]);
    assert_eq!(report.replaced, [path("change")]);
    assert_eq!(report.unchanged, 4, "keep, sub, sub/inner and sub/deep");
    assert_eq!(
        events(&log),
        [
            "stop(removed) drop",
            "stop(replaced) change",
            "privileged change",
            "start change",
            "privileged new",
            "start new"
        ],
        "nothing else was stopped or started"
    );
    assert_eq!(names(&tree), ["keep", "change", "sub", "new"]);
    assert!(tree.iter().all(Child::running));
    assert!(tree.find(&path("sub/deep")).unwrap().running());
}

#[tokio::test]
async fn a_failing_apply_puts_the_running_tree_back_as_it_was() {
    let log = log();
    let mut tree = trio(&log, |_| ());
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    let before = saved(&tree);
    events(&log);
    // b is removed, a replaced, and the new d fails to start: all of it is undone.
    let wanted = root(vec![
        probe_with("a", &log, |p| p.fail_stop = true),
        probe("c", &log),
        probe_with("d", &log, |p| p.fail_start = true),
    ]);
    let err = lifecycle.apply(&mut tree, wanted).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot add 'd': service 'd' failed to start: boom; the running tree is as it was"
    );
    // The second line is the undo: the old a back, then b again.
    assert_logged(
        &log,
        "stop(removed) b, stop(replaced) a, privileged a, start a, privileged d, start d, \
         stop(rollback) d, stop(replaced) a, privileged a, start a, privileged b, start b",
    );
    assert_eq!(saved(&tree), before);
    assert!(tree.iter().all(Child::running));
}

#[tokio::test]
async fn a_rename_restarts_the_child_in_place_and_refuses_a_clash_before_stopping() {
    let (log, mut tree, lifecycle) = running(|log| trio(log, |_| ())).await;
    let err = lifecycle
        .rename_service(&mut tree, &path("b"), "c")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot have two services with the same name 'c'"
    );
    assert!(
        events(&log).is_empty(),
        "nothing stopped for a refused rename"
    );
    lifecycle
        .rename_service(&mut tree, &path("b"), "bee")
        .await
        .unwrap();
    assert_logged(&log, "stop(replaced) b, privileged b, start b");
    assert_eq!(names(&tree), ["a", "bee", "c"]);
    assert!(tree.get("bee").unwrap().running());
}

#[tokio::test]
async fn a_replacement_made_after_the_stop_sees_the_last_state_and_a_failure_restarts_the_old() {
    let (log, mut tree, lifecycle) = running(|log| root(vec![probe("a", log)])).await;
    let err = lifecycle
        .replace_service_with(&mut tree, &path("a"), |_| Err("no such field".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot change 'a': no such field; the old service runs again"
    );
    assert_logged(&log, "stop(replaced) a, privileged a, start a");
    assert!(tree.get("a").unwrap().running());
    lifecycle
        .replace_service_with(&mut tree, &path("a"), |old| {
            // The old child is stopped by now: what it saves is final.
            assert!(!old.running());
            let mut json = serde_json::to_value(old).unwrap();
            json["fail_stop"] = serde_json::Value::Bool(true);
            let child: Child = serde_json::from_value(json).unwrap();
            Ok(child.into_service())
        })
        .await
        .unwrap();
    // The new probe records elsewhere (its log is not saved); the old one only stopped.
    assert_logged(&log, "stop(replaced) a");
    let a = tree.get("a").unwrap();
    assert!(a.running());
    assert_eq!(serde_json::to_value(a).unwrap()["fail_stop"], true);
}

#[tokio::test]
async fn an_edit_applies_only_what_it_changed_and_keeps_what_ran_on_since() {
    let log = log();
    let tree_of = |log: &Log| {
        root(vec![
            probe("table", log),
            probe("edited", log),
            probe("gone", log),
        ])
    };
    let mut tree = tree_of(&log);
    let lifecycle = Lifecycle::default();
    lifecycle.start(&mut tree).await.unwrap();
    let base = tree_of(&log);
    // While the edit is being made, the live "table" moves on (its state is saved)...
    let table = tree.get_mut("table").unwrap().service_mut();
    table.downcast_mut::<Probe>().unwrap().fail_stop = true;
    // ...and someone adds a service live.
    lifecycle
        .add_service(&mut tree, &ServicePath::root(), probe("later", &log))
        .await
        .unwrap();
    events(&log);
    // The edit changes "edited", removes "gone" and adds "new"; it never touched "table".
    let wanted = root(vec![
        probe("table", &log),
        probe_with("edited", &log, |p| p.fail_stop = true),
        probe("new", &log),
    ]);
    let report = lifecycle
        .apply_edit(&mut tree, &base, wanted)
        .await
        .unwrap();
    assert_eq!(report.removed, [path("gone")]);
    assert_eq!(report.replaced, [path("edited")]);
    assert_eq!(report.added, [path("new")]);
    assert_logged(
        &log,
        "stop(removed) gone, stop(replaced) edited, privileged edited, start edited, privileged new, start new",
    );
    let table = tree.get("table").unwrap();
    assert_eq!(
        serde_json::to_value(table).unwrap()["fail_stop"],
        true,
        "the live state of an untouched service is kept"
    );
    assert!(
        tree.get("later").unwrap().running(),
        "a service added since stays"
    );
}

#[tokio::test]
async fn quiesce_reaches_children_before_parents_and_a_failure_resumes_the_rest() {
    let (log, mut tree, lifecycle) =
        running(|log| root(vec![probe("a", log), sub("sub", vec![probe("b", log)])])).await;
    lifecycle.quiesce(&mut tree).await.unwrap();
    assert_logged(&log, "quiesce a, quiesce b");
    lifecycle.resume(&mut tree).await;
    assert_logged(&log, "resume a, resume b");
    let mut tree = root(vec![probe("a", &log), probe("b", &log)]);
    lifecycle.start(&mut tree).await.unwrap();
    tree.get_mut("b")
        .unwrap()
        .service_mut()
        .downcast_mut::<Probe>()
        .unwrap()
        .fail_privileged = true;
    events(&log);
    let err = lifecycle.quiesce(&mut tree).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "service 'b' could not quiesce for the hand-over: busy"
    );
    assert_logged(&log, "quiesce a, quiesce b, resume a");
}
