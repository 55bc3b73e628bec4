//! TAC files: an application written as a program, in Starlark (Twisted's `.tac`, run with
//! `rtwistd -y app.tac`, frozen with `rtap save -y app.tac`, shown with `rtap inspect app.tac`).
//! A Twisted user's file runs as written, its import lines rewritten to Starlark first
//! (`python/`):
//!
//! ```python
//! from twisted.application import service, internet
//! from twisted.protocols import wire
//! from twisted.internet import protocol
//! application = service.Application("echo")
//! myFactory = protocol.ServerFactory()
//! myFactory.protocol = wire.Echo
//! internet.TCPServer(7001, myFactory).setServiceParent(application)
//! ```
//!
//! and a file that imports nothing has rtwisted's names, with no imports:
//!
//! ```python
//! application = Application("echo")
//! TCPServer(7001, Echo()).setServiceParent(application)
//! ```
//!
//! Starlark is deterministic and sandboxed: a TAC file cannot open files, run programs or read
//! the clock; it reads its environment only through `env("NAME", "default")` (or `os.environ`,
//! the same door) and other TAC files only through `load("other.tac", "name")`, relative to the
//! file that loads them. The
//! program builds a blueprint (see `blueprint.rs`); the application it names is written
//! out as snapshot JSON and typed through serde, so it is exactly what a snapshot would hold.

mod blueprint;
mod builtins;
mod callable;
mod convert;
mod handle;
mod python;
#[cfg(test)]
mod tests;
mod twisted;
mod values;
#[cfg(feature = "web")]
mod web;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use rtwisted_core::Application;
use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::{AstModule, Dialect};
use starlark::values::{FrozenHeapName, ValueLike};

use blueprint::{Blueprint, Role, Shared, lock};
use builtins::Context;
use handle::Handle;

/// A TAC file could not be turned into an application. Every message starts with the file
/// (and line and column when there is one), so it can be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TacError {
    /// The file could not be read.
    #[error("cannot read the TAC file '{path}': {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The file is a snapshot, given where a TAC file goes.
    #[error(
        "'{path}' is a snapshot, not a TAC file: run it with rtwistd -f {path} (-y is for TAC files)"
    )]
    Snapshot {
        /// The file.
        path: String,
    },
    /// The program did not run: a syntax error, a failed call, a broken rule.
    #[error("{location}: {message}")]
    Program {
        /// `FILE:LINE:COLUMN`, or the file alone.
        location: String,
        /// Starlark's message.
        message: String,
    },
    /// The program ran but defines no `application`.
    #[error(
        "{path}: no variable 'application' is defined; a TAC file must set one, e.g. application = Application(\"echo\")"
    )]
    NoApplication {
        /// The file.
        path: String,
    },
    /// `application` is something else.
    #[error(
        "{location}: 'application' is {found}, not an application; make it with application = Application(\"echo\")"
    )]
    NotApplication {
        /// Where `application` is assigned.
        location: String,
        /// What it is instead.
        found: String,
    },
    /// The tree the program built is not a valid application.
    #[error("{path}: the application it defines is invalid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Runs the TAC file at `path` and returns the application it defines. Nothing is started.
pub fn evaluate(path: &Path) -> Result<Application, TacError> {
    let shown = path.display().to_string();
    let (globals, imports) = builtins::globals();
    let state = State {
        globals,
        imports: Rc::new(imports),
        blueprint: Arc::new(Mutex::new(Blueprint::default())),
        modules: RefCell::new(HashMap::new()),
        // The file itself is being loaded: a load() of it is a cycle.
        loading: RefCell::new(std::fs::canonicalize(path).into_iter().collect()),
    };
    let source = read(path)?;
    let ast = state.parse(&shown, &source).map_err(program_error)?;
    let application = Module::with_temp_heap(|module| -> Result<Option<Found>, TacError> {
        state.run(&module, ast, path).map_err(program_error)?;
        Ok(module
            .get("application")
            .map(|value| match value.downcast_ref::<Handle>() {
                Some(handle) => Found::Handle(handle.id()),
                None => Found::Other(format!(
                    "{} {}",
                    article(value.get_type()),
                    value.get_type()
                )),
            }))
    })?;
    let blueprint = lock(&state.blueprint).map_err(|error| TacError::Invalid {
        path: shown.clone(),
        message: error.to_string(),
    })?;
    let not_application = |found: String| TacError::NotApplication {
        location: assignment_of(&shown, &source),
        found,
    };
    let id = match application {
        None => return Err(TacError::NoApplication { path: shown }),
        Some(Found::Other(found)) => return Err(not_application(found)),
        Some(Found::Handle(id)) => match blueprint.role(id) {
            Ok(Role::Application) => id,
            _ => {
                let what = blueprint
                    .describe(id)
                    .unwrap_or_else(|_| "a TAC object".into());
                return Err(not_application(format!("{} {what}", article(&what))));
            }
        },
    };
    let invalid = |message: String| TacError::Invalid {
        path: shown.clone(),
        message,
    };
    let json = blueprint
        .to_json(id)
        .map_err(|error| invalid(error.to_string()))?;
    serde_json::from_value(json).map_err(|error| invalid(error.to_string()))
}

/// What `application` turned out to be.
enum Found {
    Handle(usize),
    Other(String),
}

fn article(type_name: &str) -> &'static str {
    match type_name.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The Starlark dialect of TAC files: Python-like, with `load`, top-level `for`/`if`, and
/// f-strings.
fn dialect() -> Dialect {
    Dialect {
        enable_f_strings: true,
        ..Dialect::Extended
    }
}

/// The source of a TAC file; a snapshot given instead is named as one.
fn read(path: &Path) -> Result<String, TacError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| TacError::Read {
        path: shown.clone(),
        message: rtwisted_persist::describe_io(&error),
    })?;
    if is_snapshot(&bytes) {
        return Err(TacError::Snapshot { path: shown });
    }
    String::from_utf8(bytes).map_err(|_| TacError::Read {
        path: shown,
        message: "it is not UTF-8 text, so not a TAC file".into(),
    })
}

/// True for the bytes of a `tap`, `tas` or encrypted snapshot.
fn is_snapshot(bytes: &[u8]) -> bool {
    let tas_header = rtwisted_persist::tas::looks_like_tas(bytes) && {
        let start = &bytes[..bytes.len().min(256)];
        let text = String::from_utf8_lossy(start);
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        compact.starts_with("{\"rtwisted\":\"snapshot\"")
    };
    bytes.len() >= rtwisted_persist::tap::MAGIC.len()
        && rtwisted_persist::tap::looks_like_tap(bytes)
        || rtwisted_persist::crypto::looks_encrypted(bytes)
        || tas_header
}

/// The folder `load()` paths are relative to: the file's own (empty for a bare file name, so
/// messages name `helper.tac`, not `./helper.tac`).
fn folder_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_owned).unwrap_or_default()
}

/// A Starlark error as `FILE:LINE:COLUMN: message`, in one line.
fn program_error(error: starlark::Error) -> TacError {
    let message = error.without_diagnostic().to_string();
    let message = message.trim().trim_start_matches("error: ").to_owned();
    let location = match error.span() {
        Some(span) => {
            let resolved = span.resolve_span();
            format!(
                "{}:{}:{}",
                span.filename(),
                resolved.begin.line + 1,
                resolved.begin.column + 1
            )
        }
        None => "TAC file".to_owned(),
    };
    TacError::Program {
        location,
        message: message.replace('\n', " "),
    }
}

/// `FILE:LINE:COLUMN` of the last top-level `application = ...` in the source, else the file.
fn assignment_of(shown: &str, source: &str) -> String {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            line.strip_prefix("application").is_some_and(|rest| {
                rest.trim_start().starts_with('=') && !rest.trim_start().starts_with("==")
            })
        })
        .last()
        .map_or_else(
            || shown.to_owned(),
            |(number, _)| format!("{shown}:{}:1", number + 1),
        )
}

/// What every module of one evaluation shares: the globals, the modules import lines bind, the
/// blueprint, the modules loaded so far (each file runs once), and the chain being loaded (to
/// report cycles).
struct State {
    globals: Globals,
    imports: Rc<python::Imports>,
    blueprint: Shared,
    modules: RefCell<HashMap<PathBuf, FrozenModule>>,
    loading: RefCell<Vec<PathBuf>>,
}

impl State {
    /// Parses a TAC file's source, its import lines first rewritten to Starlark (keeping every
    /// line and column where it was).
    fn parse(&self, shown: &str, source: &str) -> starlark::Result<AstModule> {
        let program = python::translate(shown, source, &self.imports)?;
        AstModule::parse(shown, program, &dialect())
    }

    /// Runs the program of the file at `path` in `module`: the builtins find the blueprint,
    /// and its `load()`s resolve relative to the file's folder.
    fn run(&self, module: &Module, ast: AstModule, path: &Path) -> starlark::Result<()> {
        let context = Context {
            blueprint: self.blueprint.clone(),
            imports: self.imports.clone(),
        };
        let loader = Loader {
            folder: folder_of(path),
            state: self,
        };
        let mut eval = Evaluator::new(module);
        eval.extra = Some(&context);
        eval.set_loader(&loader);
        eval.eval_module(ast, &self.globals)?;
        Ok(())
    }
}

/// Resolves `load("x.tac", ...)` relative to the folder of the file that loads.
struct Loader<'a> {
    folder: PathBuf,
    state: &'a State,
}

impl FileLoader for Loader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let wanted = self.folder.join(path);
        let full = std::fs::canonicalize(&wanted).map_err(|error| {
            starlark::Error::new_other(anyhow::anyhow!(
                "cannot load '{path}' ({}): {}",
                wanted.display(),
                rtwisted_persist::describe_io(&error)
            ))
        })?;
        if let Some(module) = self.state.modules.borrow().get(&full) {
            return Ok(module.clone());
        }
        if self.state.loading.borrow().contains(&full) {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "'{path}' is already being loaded: load() statements form a cycle"
            )));
        }
        self.state.loading.borrow_mut().push(full.clone());
        let module = self.evaluate_module(&wanted);
        self.state.loading.borrow_mut().pop();
        let module = module?;
        self.state.modules.borrow_mut().insert(full, module.clone());
        Ok(module)
    }
}

impl Loader<'_> {
    fn evaluate_module(&self, path: &Path) -> starlark::Result<FrozenModule> {
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|error| {
            starlark::Error::new_other(anyhow::anyhow!(
                "cannot read '{shown}': {}",
                rtwisted_persist::describe_io(&error)
            ))
        })?;
        let ast = self.state.parse(&shown, &source)?;
        Module::with_temp_heap(|module| {
            self.state.run(&module, ast, path)?;
            module
                .freeze_named(FrozenHeapName::User(Box::new(shown.clone())))
                .map_err(|error| {
                    starlark::Error::new_other(anyhow::anyhow!("cannot load '{shown}': {error:?}"))
                })
        })
    }
}
