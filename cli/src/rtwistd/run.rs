//! One run of `rtwistd`, in the order twistd established: load -> log -> pidfile -> chroot,
//! rundir, umask -> daemonize -> pid -> runtime -> privileged start -> privilege drop -> start
//! -> ready -> serve -> stop -> shutdown save -> pidfile removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::{Mode, umask};
use rtwisted_core::Application;
use rtwisted_persist::Key;
use rtwisted_persist::lock::HeldMark;

use super::daemon::{self, StatusPipe};
use super::handover::{Received, Successor};
use super::options::Options;
use super::origin::{self, Origin};
use super::pidfile::{self, Pidfile};
use super::privileges;
use super::restart;
use super::serve::serve;
use super::writable;
use crate::error::CliError;
use crate::logging::{self, LogFile, LogTarget};
use crate::snapshots::Access;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// Stopped (and saved); the pidfile and the control socket go away.
    Stopped,
    /// Handed over to a successor, which owns the pidfile, the sockets and the holds now.
    HandedOver,
}

/// What a successor received from its predecessor at a hot restart.
pub(super) struct Taking {
    /// The wire to the predecessor.
    pub(super) successor: Successor,
    /// What came over it.
    pub(super) received: Received,
}

/// Runs the application the options describe, until a signal stops it.
pub fn run(options: Options) -> Result<(), CliError> {
    restart::remember_launch();
    // A successor at a hot restart receives its tree and sockets before anything else.
    let mut taking = match Successor::inherited() {
        None => None,
        Some(mut successor) => match successor.receive() {
            Ok(received) => Some(Taking {
                successor,
                received,
            }),
            Err(error) => {
                successor.failed(&error.to_string());
                return Err(CliError::failed(error.to_string()));
            }
        },
    };
    // The pidfile comes first (as twistd's checkPID): a refused second start touches nothing.
    let handed_pidfile = taking
        .as_mut()
        .and_then(|taking| taking.received.pidfile.take());
    let (mut pidfile, stale) = match (options.pidfile.as_deref(), handed_pidfile) {
        (Some(path), Some(fd)) => (Some(Pidfile::adopt(fd, path)?), None),
        (Some(path), None) => {
            let (pidfile, stale) = Pidfile::acquire(path)?;
            (Some(pidfile), stale)
        }
        (None, _) => (None, None),
    };
    let (result, abandoned) = run_holding(&options, pidfile.as_mut(), stale, taking);
    // Reached by the daemon (or a foreground run) only: the launching process exits inside
    // daemonize, leaving the file and its lock to the daemon. After a hand-over the pidfile is
    // the successor's; a successor that never served leaves it to its predecessor.
    if let Some(pidfile) = pidfile
        && !matches!(result, Ok(Ended::HandedOver))
        && !abandoned
    {
        pidfile.remove();
    }
    result.map(drop)
}

fn run_holding(
    options: &Options,
    pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
    mut taking: Option<Taking>,
) -> (Result<Ended, CliError>, bool) {
    let result = run_taking(options, pidfile, stale, &mut taking);
    // A successor that still holds its hand-over never served (see `serve`): its failure goes
    // back to the predecessor, which resumes and keeps the pidfile, the holds and the sockets.
    let abandoned = taking.is_some();
    if let (Err(error), Some(taking)) = (&result, taking.as_mut()) {
        taking.successor.failed(&error.to_string());
    }
    (result, abandoned)
}

fn run_taking(
    options: &Options,
    pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    let log_file = logging::init(&logging::LogSettings {
        target: &options.log,
        format: options.log_format,
        filter: options.log_filter.as_deref(),
        color: options.color,
        max_size: options.log_max_size,
        keep: options.log_keep,
    })?;
    let result = run_logging(options, pidfile, stale, taking, log_file);
    // A failure is reported once in each place: the log file (or syslog) gets it here, the
    // terminal from `main`. A foreground run that logs to stdout leaves it to `main`, so the
    // person at the terminal reads it once.
    if let Err(error) = &result
        && !matches!(options.log, LogTarget::Stdout)
        && !matches!(error, CliError::Forced | CliError::StdoutClosed)
    {
        tracing::error!("{error}");
    }
    result
}

/// The run once logging is set up (so a load error is in the log too).
fn run_logging(
    options: &Options,
    mut pidfile: Option<&mut Pidfile>,
    stale: Option<String>,
    taking: &mut Option<Taking>,
    log_file: Option<Arc<LogFile>>,
) -> Result<Ended, CliError> {
    tracing::info!("rtwistd {} starting up", env!("CARGO_PKG_VERSION"));
    if let (Some(stale), Some(path)) = (stale, &options.pidfile) {
        tracing::warn!(
            "Took over stale pidfile {} (PID {stale} no longer holds it)",
            path.display()
        );
    }
    let access = Access {
        passphrase: options.passphrase.clone(),
        limits: options.limits,
        wait: None,
    };
    // A singleton loads only once it leads: its snapshot is the newest when it takes over.
    let leadership = match (&options.singleton, options.store.as_deref()) {
        (Some(app), Some(store)) if taking.is_none() => {
            Some(super::singleton::Leadership::campaign(store, app)?)
        }
        _ => None,
    };
    let origin::Loaded {
        mut app,
        key,
        origin,
    } = origin::load(
        &options.source,
        options.store.as_deref(),
        &access,
        options.resume,
        &save_folder(options)?,
    )?;
    if let Some(taking) = taking.as_ref() {
        // The snapshot loaded above names where the run's saves go on (its lineage); the tree
        // that runs is the predecessor's, live state and all.
        let options = access.load_options(None, rtwisted_persist::view::Detail::Everything);
        app = rtwisted_persist::decode_as(&taking.received.snapshot, &options)
            .map_err(|error| {
                CliError::failed(format!(
                    "the running tree handed over does not load here: {error}"
                ))
            })?
            .app;
        tracing::info!(
            "Took over the running {} from PID {} (a hot restart)",
            app.name(),
            nix::unistd::getppid()
        );
    }
    let ids = privileges::resolve(options.uid, options.gid, app.process())?;
    // Taken before daemonizing, so a refusal reaches the shell; the locks go with the forks.
    let marks = hold_files(&origin);
    if let Origin::Store { dir, entry, .. } = &origin
        && taking.is_none()
    {
        access
            .open_store(dir, false)?
            .check_not_held(&entry.app, false)?;
    }
    // A successor is detached already (its predecessor was), and inside its run folder.
    let null = if options.nodaemon || taking.is_some() {
        None
    } else {
        Some(daemon::open_null()?)
    };
    // A successor starts in the launch folder (its paths are the command line's) and enters
    // the run folder like its predecessor did; a restart in a chroot is refused before.
    enter_environment(options, &app, pidfile.as_deref_mut(), log_file.as_deref())?;
    let mut status = null.map(daemon::daemonize).transpose()?;
    // From here on a failure is also sent to the launching shell through the status pipe.
    let mut run = Run {
        app,
        key,
        origin,
        marks,
        access,
        leadership_lost: leadership.as_ref().map(super::singleton::Leadership::lost),
    };
    let result = hold_store(&mut run, taking).and_then(|held_store| {
        let result = daemon_runtime(run, options, ids, pidfile, &mut status, log_file, taking);
        release_store(held_store, &result, taking);
        result
    });
    if let Some(leadership) = leadership {
        // After the shutdown save: the standby that takes over loads it.
        leadership.resign();
    }
    if let Err(error) = &result
        && let Some(status) = status.take()
    {
        status.failed(&error.to_string());
    }
    result
}

/// Where the run's shutdown and checkpoint snapshots go, seen from outside any chroot: the run
/// folder, absolute.
fn save_folder(options: &Options) -> Result<PathBuf, CliError> {
    let resolve = |path: &Path| {
        std::path::absolute(path)
            // `./x` and `.`: no `.` left in the path, so it names the folder as cwd does.
            .map(|path| {
                path.components()
                    .filter(|part| !matches!(part, std::path::Component::CurDir))
                    .collect::<PathBuf>()
            })
            .map_err(|error| {
                CliError::failed(format!(
                    "cannot resolve the path '{}': {error}",
                    path.display()
                ))
            })
    };
    match &options.chroot {
        None => resolve(&options.rundir),
        Some(root) => {
            let inside = options.rundir.strip_prefix("/").unwrap_or(&options.rundir);
            Ok(root.join(if inside == Path::new(".") {
                Path::new("")
            } else {
                inside
            }))
        }
    }
}

/// Marks the snapshot files the run comes from as held: the file given, and the one loaded
/// (with `--resume`, a newer one). A mark that cannot be made (a read-only folder) only warns:
/// it guards against edits, and nobody can edit there either.
fn hold_files(origin: &Origin) -> Vec<HeldMark> {
    let Origin::File { base, loaded, .. } = origin else {
        return Vec::new();
    };
    let mut paths = vec![base.clone()];
    if loaded != base {
        paths.push(loaded.clone());
    }
    let mut marks = Vec::new();
    for path in paths {
        let path = std::path::absolute(&path).unwrap_or(path);
        match HeldMark::acquire(&path) {
            Ok(mark) => marks.push(mark),
            Err(error) => tracing::warn!("{error}: edits of it are not refused while this runs"),
        }
    }
    marks
}

/// What a run holds between its load and its end.
pub(super) struct Run {
    /// The tree to run.
    pub(super) app: Application,
    /// The key it was decrypted with, for saves.
    pub(super) key: Option<Key>,
    /// Where it came from.
    pub(super) origin: Origin,
    /// The held marks on the snapshot files, removed at the end.
    pub(super) marks: Vec<HeldMark>,
    /// How snapshots are read and written.
    pub(super) access: Access,
    /// Turns true when this run's singleton leadership is lost (`--singleton`).
    pub(super) leadership_lost: Option<tokio::sync::watch::Receiver<bool>>,
}

/// chroot, rundir and umask, before daemonizing (twistd's `setupEnvironment`).
fn enter_environment(
    options: &Options,
    app: &Application,
    pidfile: Option<&mut Pidfile>,
    log_file: Option<&LogFile>,
) -> Result<(), CliError> {
    let mut rundir = options.rundir.clone();
    if let Some(root) = &options.chroot {
        privileges::chroot(root)?;
        if let Some(pidfile) = pidfile {
            pidfile.chrooted(root);
        }
        if let (Some(file), LogTarget::File(path)) = (log_file, &options.log) {
            file.set_path(pidfile::inside(root, path));
        }
        if rundir == Path::new(".") {
            rundir = PathBuf::from("/");
        }
    }
    std::env::set_current_dir(&rundir).map_err(|error| {
        CliError::failed(format!(
            "cannot change to the run folder '{}': {}",
            rundir.display(),
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let mask = options
        .umask
        .or(app.process().umask)
        .or((!options.nodaemon).then_some(0o077));
    if let Some(mask) = mask {
        umask(Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// Once daemonized: records the PID in the held files' marks and, for a run from a store,
/// holds the application there; returns what to release at the end.
fn hold_store(
    run: &mut Run,
    taking: &Option<Taking>,
) -> Result<Option<(PathBuf, String)>, CliError> {
    for mark in &mut run.marks {
        if let Err(error) = mark.record_pid() {
            tracing::warn!("{error}");
        }
    }
    // The store's hold names this process: the daemon, after daemonizing (a successor takes
    // it over from its predecessor once it serves).
    Ok(match &run.origin {
        Origin::Store { dir, entry, .. } if taking.is_none() => {
            let store = run.access.open_store(dir, false)?;
            store.hold(&entry.app, Some(entry.number))?;
            Some((dir.clone(), entry.app.clone()))
        }
        Origin::Store { dir, entry, .. } => Some((dir.clone(), entry.app.clone())),
        _ => None,
    })
}

/// Releases the store's hold [`hold_store`] took, unless the run ended in a hand-over.
fn release_store(
    held_store: Option<(PathBuf, String)>,
    result: &Result<Ended, CliError>,
    taking: &Option<Taking>,
) {
    // After a hand-over the successor holds the store's record (under its PID); a successor
    // that never served did not touch it.
    if let Some((dir, app)) = held_store
        && !matches!(result, Ok(Ended::HandedOver))
        && taking.is_none()
    {
        let released = Access::default()
            .open_store(&dir, false)
            .and_then(|store| store.release(&app).map_err(CliError::from));
        if let Err(error) = released {
            tracing::warn!("cannot release the hold on {app} in the store: {error}");
        }
    }
}

fn daemon_runtime(
    run: Run,
    options: &Options,
    ids: (Option<u32>, Option<u32>),
    pidfile: Option<&mut Pidfile>,
    status: &mut Option<StatusPipe>,
    log_file: Option<Arc<LogFile>>,
    taking: &mut Option<Taking>,
) -> Result<Ended, CliError> {
    let app = &run.app;
    let mut pidfile = pidfile;
    if let Some(pidfile) = pidfile.as_deref_mut()
        && taking.is_none()
    {
        // A successor writes its PID once it serves (see `serve`).
        pidfile.write_pid()?;
        // The daemon removes its pidfile after dropping privileges; in a sticky folder such
        // as /tmp only the file's owner may.
        pidfile.give_to(ids);
    }
    set_process_name(app);
    // The runtime (and its threads) exists only from here on, after daemonizing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failed(format!("cannot start the runtime: {error}")))?;
    let result = runtime.block_on(serve(run, options, ids, status, log_file, pidfile, taking));
    if matches!(result, Err(CliError::Forced)) {
        // A service may still be stuck in its stop: leave without waiting for it.
        runtime.shutdown_background();
    }
    result
}

fn set_process_name(app: &Application) {
    if let Some(name) = &app.process().process_name {
        match std::ffi::CString::new(name.as_bytes()) {
            Ok(name) => {
                if let Err(errno) = nix::sys::prctl::set_name(&name) {
                    tracing::warn!("cannot set the process name: {errno}");
                }
            }
            Err(_) => tracing::warn!("the process name contains a NUL byte; left unchanged"),
        }
    }
}

/// After the privilege drop: refuses to start when the shutdown or checkpoint saves the run
/// will make could not be written, naming the folder and the user.
pub(super) fn check_saves_possible(
    options: &Options,
    app: &Application,
    access: &Access,
) -> Result<(), CliError> {
    if !options.save && options.checkpoint_every.is_none() {
        return Ok(());
    }
    if let Some(dir) = &options.store {
        return writable::check_store(dir, access);
    }
    let folder = std::env::current_dir().map_err(|error| {
        CliError::failed(format!(
            "cannot tell the run folder: {}",
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let style = app.persistence().style;
    let targets: Vec<PathBuf> = ["shutdown", "checkpoint"]
        .iter()
        .flat_map(|tag| {
            [false, true].map(|encrypted| {
                folder.join(rtwisted_persist::file_name(
                    app.name(),
                    Some(tag),
                    style,
                    encrypted,
                ))
            })
        })
        .collect();
    let targets: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    writable::check_folder(&folder, &targets)
}

pub(super) fn count(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| 1 + child.service().collection().map_or(0, count))
        .sum()
}
