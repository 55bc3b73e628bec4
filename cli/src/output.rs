//! Writing to stdout the way command-line tools should, and laying out text for people:
//! tables, and changes as `old -> new`.
//!
//! A closed pipe (`rtap inspect | head`) is not a failure: [`print`] returns
//! [`CliError::StdoutClosed`], the command stops, and the entry point exits 0 quietly.

use std::io::{self, Write};

use rtwisted_core::diff::{Difference, PlacedService};
use serde_json::Value;

use crate::error::CliError;

/// Writes `text` to stdout. On a broken pipe it returns [`CliError::StdoutClosed`], which the
/// tools report as a quiet exit 0: the reader has all it wanted.
pub fn print(text: impl AsRef<[u8]>) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_ref())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Err(CliError::StdoutClosed),
        Err(error) => Err(CliError::failed(format!("cannot write to stdout: {error}"))),
    }
}

/// [`print`] with a newline.
pub fn println(text: impl AsRef<str>) -> Result<(), CliError> {
    print(format!("{}\n", text.as_ref()))
}

/// Rows as aligned columns, two spaces apart; the last column is not padded, and no line ends
/// in spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How long a value may be in a people's change line before it is cut.
const SHOWN_VALUE_LEN: usize = 100;

/// A value in a change line: JSON, cut after 100 characters, `(none)` for null.
pub fn shown(value: &Value) -> String {
    if value.is_null() {
        return "(none)".to_owned();
    }
    if let Some(summary) = rtwisted_persist::view::describe_summary(value) {
        return format!("({summary})");
    }
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > SHOWN_VALUE_LEN {
        let cut: String = text.chars().take(SHOWN_VALUE_LEN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// `~ PATH  FIELD: OLD -> NEW`: one changed field of the service at `path`.
pub fn field_line(path: &str, field: &str, old: &Value, new: &Value) -> String {
    format!("~ {path}  {field}: {} -> {}", shown(old), shown(new))
}

/// One line per change of a tree diff: `~ app name: ...`, `~ process  FIELD: ...`,
/// `- PATH  [TYPE]`, `+ PATH  [TYPE]`, `~ PATH  FIELD: OLD -> NEW`.
pub fn change_lines(difference: &Difference) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some((old, new)) = &difference.app {
        lines.push(format!("~ app name: {} -> {}", shown(old), shown(new)));
    }
    for change in &difference.process {
        lines.push(field_line(
            "process",
            &change.field,
            &change.from,
            &change.to,
        ));
    }
    for PlacedService { path, type_tag } in &difference.removed {
        lines.push(format!("- {path}  [{type_tag}]"));
    }
    for PlacedService { path, type_tag } in &difference.added {
        lines.push(format!("+ {path}  [{type_tag}]"));
    }
    for changed in &difference.changed {
        for change in &changed.fields {
            lines.push(field_line(
                &changed.path,
                &change.field,
                &change.from,
                &change.to,
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["A".to_owned(), "BB".to_owned(), "C".to_owned()],
            vec!["long".to_owned(), "x".to_owned(), "y".to_owned()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   y\n");
    }
}
