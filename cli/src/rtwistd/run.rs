//! One run of `rtwistd`: load, start, serve until a signal, stop, save.

use std::path::PathBuf;

use rtwisted_core::{Application, Lifecycle, StopReason, Style};
use rtwisted_persist::Key;
use tokio::signal::unix::{SignalKind, signal};

use super::options::{Options, Source};
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::{logging, plugins, snapshots};

/// Runs the application the options describe, in the foreground.
pub fn run(options: Options) -> Result<(), CliError> {
    if !options.nodaemon {
        eprintln!(
            "rtwistd: daemon mode is not available yet; running in the foreground (pass -n to say so)"
        );
    }
    logging::init_stdout();
    tracing::info!("rtwistd {} starting up", env!("CARGO_PKG_VERSION"));
    let (app, key) = load(&options.source, &options.passphrase)?;
    // The runtime (and its threads) exists only from here on: daemonizing, when it comes,
    // happens before this line.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failed(format!("cannot start the runtime: {error}")))?;
    runtime.block_on(serve(app, key, &options))
}

fn load(
    source: &Source,
    passphrase: &PassphraseSource,
) -> Result<(Application, Option<Key>), CliError> {
    match source {
        Source::Plugin { maker, options } => {
            tracing::info!("Building {} from the '{}' plugin", maker.name, maker.name);
            Ok((plugins::application_from(maker, options, maker.name)?, None))
        }
        Source::File { path, source_style } => {
            tracing::info!("Loading {}...", path.display());
            let (snapshot, key) = snapshots::open(path, passphrase)?;
            if *source_style && snapshot.header.fields.style != Style::Tas {
                return Err(CliError::failed(format!(
                    "'{}' is a binary (tap) snapshot; run it with -f, not -s",
                    path.display()
                )));
            }
            tracing::info!("Loaded.");
            Ok((snapshot.app, key))
        }
    }
}

async fn serve(mut app: Application, key: Option<Key>, options: &Options) -> Result<(), CliError> {
    let signal_error =
        |error: std::io::Error| CliError::failed(format!("cannot handle signals: {error}"));
    // Handlers go in before the start, so a signal that arrives while services start is kept
    // and answered with a clean stop instead of killing the process.
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;

    let lifecycle = Lifecycle::new(options.stop_timeout);
    let started = async {
        lifecycle.privileged_start(app.services_mut()).await?;
        lifecycle.start(app.services_mut()).await
    };
    if let Err(error) = started.await {
        return Err(CliError::failed(error.to_string()));
    }
    let services = count(app.services());
    tracing::info!(
        "{} is running ({services} service{}); waiting for SIGTERM or SIGINT",
        app.name(),
        if services == 1 { "" } else { "s" }
    );

    let received = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("Received {received}, shutting down.");
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        eprintln!("rtwistd: second signal: exiting at once, without a clean stop or a save");
        std::process::exit(1);
    });

    let stopped = lifecycle
        .stop(app.services_mut(), StopReason::Shutdown)
        .await;
    if let Err(error) = &stopped {
        for failure in &error.failures {
            tracing::warn!("{failure}");
        }
    }
    if options.save {
        save_shutdown(&app, key.as_ref())?;
    }
    tracing::info!("Server Shut Down.");
    stopped.map_err(|error| CliError::failed(format!("the stop was not clean: {error}")))
}

/// Saves `NAME-shutdown.tap` (`.tas`, and `.etap`/`.etas` when the input was encrypted) in the
/// current folder.
fn save_shutdown(app: &Application, key: Option<&Key>) -> Result<(), CliError> {
    let style = app.persistence().style;
    let path = PathBuf::from(rtwisted_persist::file_name(
        app.name(),
        Some("shutdown"),
        style,
        key.is_some(),
    ));
    tracing::info!("Saving {} application to {}...", app.name(), path.display());
    crate::snapshots::save(app, &path, style, key)?;
    tracing::info!("Saved.");
    Ok(())
}

fn count(root: &rtwisted_core::MultiService) -> usize {
    root.iter()
        .map(|child| 1 + child.collection().map_or(0, count))
        .sum()
}
