//! The one source-level step between a TAC file and Starlark: its `import` and `from ...
//! import` lines become assignments, and a `class` statement is refused.
//!
//! Starlark has no import statement, so `from twisted.application import service, internet`
//! is rewritten in place to `service, internet=_rtwisted_import(3)`: the names it binds,
//! assigned from a builtin that returns the modules or members the line named (resolved
//! here, so an import of anything unsupported fails before the program runs, at its line).
//! The rewrite keeps every byte offset of the file: the new text is padded with spaces to the
//! length of the statement's first line, and the rest of a statement that spans lines is
//! blanked. So every error still points at the user's line and column (only code after a `;`
//! on an import line can move right, when the assignment is the longer text).
//!
//! Strings and comments are skipped, so `"from x import y"` in a docstring stays text.

use super::import_line::{Item, Statement, parse_statement};
use super::lexer::{Problem, Scanner};
use super::{BRING_YOUR_OWN, Binding, Imports, member_of, module_named, supported};

/// Rewrites the import lines of `source` (the file `file`) into assignments Starlark runs,
/// recording what each binds in `imports`; refuses a `class` statement and any import of a
/// module that is not supported.
pub fn translate(file: &str, source: &str, imports: &Imports) -> starlark::Result<String> {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let bytes = source.as_bytes();
    let mut scanner = Scanner { bytes, at: 0 };
    let mut depth = 0usize;
    let mut statement_start = true;
    while scanner.at < bytes.len() {
        if statement_start && depth == 0 {
            statement_start = false;
            scanner.skip_blanks();
            let start = scanner.at;
            match scanner.keyword() {
                Some("import" | "from") => {
                    let statement =
                        parse_statement(&mut scanner).map_err(|p| p.into_error(file, source))?;
                    let text = bind(&statement, imports).map_err(|p| p.into_error(file, source))?;
                    edits.push((start, scanner.at, text));
                    continue;
                }
                Some("class") => {
                    let name = scanner.name_after_keyword(start + "class".len());
                    return Err(Problem::new(
                        start,
                        start + "class".len(),
                        format!(
                            "cannot define class {name}: a TAC file is Starlark, which has def but no classes, so a Protocol, Factory or Service subclass cannot be written here; {BRING_YOUR_OWN}"
                        ),
                    )
                    .into_error(file, source));
                }
                _ => {}
            }
            continue;
        }
        match bytes[scanner.at] {
            b'#' => scanner.skip_comment(),
            b'"' | b'\'' => scanner.skip_string(),
            b'(' | b'[' | b'{' => {
                depth += 1;
                scanner.at += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                scanner.at += 1;
            }
            b'\\' if bytes.get(scanner.at + 1) == Some(&b'\n') => scanner.at += 2,
            b'\n' | b';' => {
                statement_start = depth == 0;
                scanner.at += 1;
            }
            _ => scanner.at += 1,
        }
    }
    Ok(apply(source, edits))
}

/// Replaces each statement with its assignment, keeping every byte offset after it.
fn apply(source: &str, edits: Vec<(usize, usize, String)>) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut copied = 0;
    for (start, end, text) in edits {
        out.push_str(&source[copied..start]);
        let span = &source[start..end];
        let first_line = span.find('\n').unwrap_or(span.len());
        out.push_str(&text);
        for _ in text.len()..first_line {
            out.push(' ');
        }
        for byte in span[first_line..].bytes() {
            out.push(if byte == b'\n' { '\n' } else { ' ' });
        }
        copied = end;
    }
    out.push_str(&source[copied..]);
    out
}

/// The refusal of a module that is not supported.
fn unsupported_module(item: &Item) -> Problem {
    Problem::new(
        item.start,
        item.end,
        format!(
            "cannot import {}: a TAC file can import only {}; {BRING_YOUR_OWN}",
            item.path,
            supported()
        ),
    )
}

/// What the statement binds, recorded in `imports`, as the assignment that replaces it.
fn bind(statement: &Statement, imports: &Imports) -> Result<String, Problem> {
    let mut targets: Vec<String> = Vec::new();
    let mut bindings: Vec<Binding> = Vec::new();
    match statement {
        Statement::Import(items) => {
            for item in items {
                let binding = match module_named(&item.path) {
                    Some(module) => Binding::Module(module),
                    None => match item.path.rsplit_once('.') {
                        Some((parent, name)) => {
                            match module_named(parent).and_then(|parent| member_of(parent, name)) {
                                Some(binding) => binding,
                                None => return Err(unsupported_module(item)),
                            }
                        }
                        None => return Err(unsupported_module(item)),
                    },
                };
                match &item.alias {
                    Some(alias) => {
                        targets.push(alias.clone());
                        bindings.push(binding);
                    }
                    None => {
                        // `import twisted.application.service` binds `twisted`, as in Python.
                        let top = item.path.split('.').next().unwrap_or(&item.path);
                        let Some(top) = module_named(top) else {
                            return Err(unsupported_module(item));
                        };
                        targets.push(top.to_owned());
                        bindings.push(Binding::Module(top));
                    }
                }
            }
        }
        Statement::From { module, names } => {
            let Some(from) = module_named(&module.path) else {
                return Err(unsupported_module(module));
            };
            for item in names {
                if item.path == "*" {
                    for member in super::members_of(from) {
                        targets.push((*member).to_owned());
                        bindings.push(Binding::Member(from, member));
                    }
                    continue;
                }
                let Some(binding) = member_of(from, &item.path) else {
                    let has = super::names_in(from);
                    return Err(Problem::new(
                        item.start,
                        item.end,
                        format!(
                            "cannot import {} from {from}: a TAC file has only {} from it; {BRING_YOUR_OWN}",
                            item.path,
                            if has.is_empty() {
                                "its submodules".to_owned()
                            } else {
                                has.join(", ")
                            }
                        ),
                    ));
                };
                targets.push(item.alias.clone().unwrap_or_else(|| item.path.clone()));
                bindings.push(binding);
            }
        }
    }
    if targets.is_empty() {
        return Ok("pass".to_owned());
    }
    let index = imports.record(bindings);
    Ok(format!("{}=_rtwisted_import({index})", targets.join(",")))
}
