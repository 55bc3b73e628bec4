//! `rtap edit FILE`: edit the application's source form in `$EDITOR`; the result is validated
//! as a whole before anything is written.
//!
//! The snapshot is not locked while the editor is open (a person may take minutes); before
//! writing, the edit takes the lock again and checks that nothing else was saved meanwhile, so
//! it never reverts another change. If something was, nothing is written and the edited text
//! is kept for the user.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;

use rtwisted_core::Application;
use serde_json::Value;

use super::EditTarget;
use super::document::{Document, validate};
use crate::error::CliError;
use crate::snapshots::Access;

/// Opens the editor until the result is valid (or the user gives up), then writes it back.
pub fn run(args: &EditTarget, access: &Access) -> Result<(), CliError> {
    if args.live.live {
        return live(args);
    }
    let location = args.location()?;
    let mut document = Document::open_released(&location, access, args.force.force)?;
    let original = document.to_value()?;
    let scratch = Scratch::new(document.app.name())?;
    let Some(app) = scratch.edit(&original, &location.to_string())? else {
        return crate::output::println(format!("no changes; {location} left as it was"));
    };
    document.app = app;
    let edited = document.to_value()?;
    super::stored::confirm_removal(super::stored::removed(&original, &edited), args.force.force)?;
    if let Err(error) = document.relock() {
        let kept = scratch.keep();
        return Err(CliError::failed(format!(
            "{error}; your edit is kept in {}",
            kept.display()
        )));
    }
    let (header, written) = document.write()?;
    let mut text = format!("wrote {written} ({})\n", header.checksum);
    for line in crate::output::change_lines(&rtwisted_core::diff::diff(&original, &edited)) {
        text.push_str(&line);
        text.push('\n');
    }
    crate::output::print(text)
}

/// `rtap edit --live NAME`: edits the running tree; only what the edit changes is applied.
fn live(args: &EditTarget) -> Result<(), CliError> {
    let socket = args.live_socket("edit")?;
    let base = super::live::fetch(&socket)?;
    let running = rtwisted_persist::decode(&base)
        .map_err(|error| CliError::failed(format!("the running tree does not load here: {error}")))?
        .app;
    let original =
        serde_json::to_value(&running).map_err(|error| CliError::failed(error.to_string()))?;
    let what = format!("the running {}", running.name());
    match Scratch::new(running.name())?.edit(&original, &what)? {
        None => crate::output::println("no changes; the running tree is left as it was"),
        Some(edited) => super::live::apply_edit(&socket, &base, &edited),
    }
}

/// The file an edit happens in, in a folder of its own.
struct Scratch {
    folder: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Scratch {
    fn new(app: &str) -> Result<Self, CliError> {
        let folder = tempfile::tempdir()
            .map_err(|error| CliError::failed(format!("cannot make a scratch folder: {error}")))?;
        let path = folder.path().join(format!("{app}.json"));
        Ok(Scratch { folder, path })
    }

    /// Keeps the file (the edit could not be written): where it is.
    fn keep(self) -> std::path::PathBuf {
        let name = self
            .path
            .file_name()
            .map(ToOwned::to_owned)
            .unwrap_or_default();
        self.folder.keep().join(name)
    }

    /// Edits `original` until it is a valid application: the new one, or `None` when nothing
    /// changed. An invalid edit may be tried again; giving up is an error naming `what`.
    fn edit(&self, original: &Value, what: &str) -> Result<Option<Application>, CliError> {
        write_text(&self.path, original)?;
        loop {
            run_editor(&self.path)?;
            let text = std::fs::read_to_string(&self.path).map_err(|error| {
                CliError::failed(format!("cannot read back {}: {error}", self.path.display()))
            })?;
            let result = serde_json::from_str::<Value>(&text)
                .map_err(|error| CliError::failed(format!("the edit is not valid JSON: {error}")))
                .and_then(|value| {
                    if value == *original {
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
