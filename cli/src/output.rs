//! Writing to stdout the way command-line tools should, and laying out text for people.
//!
//! A closed pipe (`rtap inspect | head`) is not a failure: [`print`] returns
//! [`CliError::StdoutClosed`], the command stops, and the entry point exits 0 quietly.

use std::io::{self, Write};

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
