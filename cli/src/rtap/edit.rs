//! `rtap edit FILE`: edit the application's source form in `$EDITOR`; the result is validated
//! as a whole before anything is written.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;

use rtwisted_core::Application;
use serde_json::Value;

use super::EditArgs;
use super::document::{Document, validate};
use crate::error::CliError;
use crate::passphrase::PassphraseSource;
use crate::snapshots::Location;

/// Opens the editor until the result is valid (or the user gives up), then writes it back.
pub fn run(args: &EditArgs, passphrase: &PassphraseSource) -> Result<(), CliError> {
    if args.live.live {
        return live(args);
    }
    let location = Location::new(&args.file, args.store.store.as_deref())?;
    let mut document = Document::open(&location, passphrase)?;
    match edit(&document.app, &location.to_string())? {
        None => crate::output::println(format!("no changes; {location} left as it was")),
        Some(app) => {
            document.app = app;
            let (header, written) = document.write()?;
            crate::output::println(format!("wrote {written} ({})", header.checksum))
        }
    }
}

/// `rtap edit --live NAME`: edits the running tree; only what the edit changes is applied.
fn live(args: &EditArgs) -> Result<(), CliError> {
    let socket = super::live::socket(Some(&args.file), args.live.control.as_deref(), "edit")?;
    let base = super::live::fetch(&socket)?;
    let running = rtwisted_persist::decode(&base)
        .map_err(|error| CliError::failed(format!("the running tree does not load here: {error}")))?
        .app;
    match edit(&running, &format!("the running {}", running.name()))? {
        None => crate::output::println("no changes; the running tree is left as it was"),
        Some(edited) => super::live::apply_edit(&socket, &base, &edited),
    }
}

/// Edits `app`'s source form until it is valid: the new application, or `None` when nothing
/// changed. An invalid edit may be tried again; giving up is an error naming `what`.
fn edit(app: &Application, what: &str) -> Result<Option<Application>, CliError> {
    let original =
        serde_json::to_value(app).map_err(|error| CliError::failed(error.to_string()))?;
    let folder = tempfile::tempdir()
        .map_err(|error| CliError::failed(format!("cannot make a scratch folder: {error}")))?;
    let scratch = folder.path().join(format!("{}.json", app.name()));
    write_text(&scratch, &original)?;
    loop {
        run_editor(&scratch)?;
        let text = std::fs::read_to_string(&scratch).map_err(|error| {
            CliError::failed(format!("cannot read back {}: {error}", scratch.display()))
        })?;
        let result = serde_json::from_str::<Value>(&text)
            .map_err(|error| CliError::failed(format!("the edit is not valid JSON: {error}")))
            .and_then(|value| {
                if value == original {
                    Ok(None)
                } else {
                    validate(value).map(Some)
                }
            });
        match result {
            Ok(edited) => return Ok(edited),
            Err(error) => {
                eprintln!("rtap: {error}");
                if !ask_again()? {
                    return Err(CliError::failed(format!(
                        "the edit was not valid; {what} left as it was"
                    )));
                }
            }
        }
    }
}

fn write_text(path: &Path, value: &Value) -> Result<(), CliError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|error| CliError::failed(error.to_string()))?;
    text.push('\n');
    std::fs::write(path, text)
        .map_err(|error| CliError::failed(format!("cannot write {}: {error}", path.display())))
}

/// The editor command: `$EDITOR`, then `$VISUAL`, then `vi`. It may carry arguments
/// (`code --wait`), so it runs through `sh` the way git runs it.
fn editor() -> String {
    ["EDITOR", "VISUAL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

fn run_editor(file: &Path) -> Result<(), CliError> {
    let editor = editor();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .status()
        .map_err(|error| CliError::failed(format!("cannot run the editor '{editor}': {error}")))?;
    if !status.success() {
        return Err(CliError::failed(format!(
            "the editor '{editor}' failed ({status}); nothing was written"
        )));
    }
    Ok(())
}

fn ask_again() -> Result<bool, CliError> {
    eprint!("Edit again? [Y/n] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::failed(format!("cannot read the answer: {error}")))?;
    if read == 0 {
        eprintln!();
        return Ok(false);
    }
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer.is_empty() || answer == "y" || answer == "yes")
}
