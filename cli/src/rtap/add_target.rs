//! `rtap add FILE PLUGIN ...` where FILE is named like a plugin.
//!
//! clap reads a token that names a subcommand as that subcommand even where a required
//! positional comes first, so `rtap add --store DIR echo echo --port ...` (an application named
//! `echo`, as `rtap save echo --store DIR` names it) was read as the plugin `echo` with a stray
//! `echo` after it. FILE is required and comes before the plugin, so add's first positional is
//! always FILE: when a line does not parse, it is read again with that token marked so that it
//! names no plugin, and the mark is taken off after parsing.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};

use clap::Command;

/// Put in front of the FILE token for the second reading: no plugin's name starts with it.
const MARK: char = '\u{1f}';

/// `args` with add's FILE marked, when `args` is an `rtap add` line whose first positional
/// after `add` names one of its plugins; `None` otherwise.
pub(super) fn mark_file(args: &[OsString], command: &Command) -> Option<Vec<OsString>> {
    let add = command.find_subcommand("add")?;
    let takes_value = ValueOptions::of(&[command, add]);
    let mut positionals = positionals(args, &takes_value);
    let subcommand = positionals.next()?;
    if args[subcommand] != "add" {
        return None;
    }
    let file = positionals.next()?;
    let token = args[file].to_str()?;
    add.find_subcommand(token)?;
    let mut marked = args.to_vec();
    marked[file] = format!("{MARK}{token}").into();
    Some(marked)
}

/// FILE as it was written, from the second reading.
pub(super) fn unmark(file: &mut String) {
    if let Some(written) = file.strip_prefix(MARK) {
        *file = written.to_owned();
    }
}

/// The options (of a command and its subcommand) that take a value in the next token.
struct ValueOptions {
    long: HashSet<String>,
    short: HashSet<char>,
}

impl ValueOptions {
    fn of(commands: &[&Command]) -> Self {
        let mut options = ValueOptions {
            long: HashSet::new(),
            short: HashSet::new(),
        };
        let arguments = commands.iter().flat_map(|command| command.get_arguments());
        for arg in arguments.filter(|arg| arg.get_action().takes_values()) {
            options.long.extend(arg.get_long().map(str::to_owned));
            options.long.extend(
                arg.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            options.short.extend(arg.get_short());
            options
                .short
                .extend(arg.get_all_short_aliases().into_iter().flatten());
        }
        options
    }

    /// True if `token` is an option whose value is the next token.
    fn wants_next(&self, token: &str) -> bool {
        if let Some(long) = token.strip_prefix("--") {
            return !long.contains('=') && self.long.contains(long);
        }
        let mut shorts = token.chars().skip(1);
        match (shorts.next(), shorts.next()) {
            (Some(short), None) => self.short.contains(&short),
            _ => false,
        }
    }
}

/// The positions of the positional tokens of `args` (the program name excluded), up to a `--`.
fn positionals<'a>(
    args: &'a [OsString],
    options: &'a ValueOptions,
) -> impl Iterator<Item = usize> + 'a {
    let mut skip_next = false;
    args.iter()
        .enumerate()
        .skip(1)
        .take_while(|(_, token)| token.as_os_str() != OsStr::new("--"))
        .filter_map(move |(at, token)| {
            if std::mem::take(&mut skip_next) {
                return None;
            }
            let text = token.to_string_lossy();
            if text.starts_with('-') && text.len() > 1 {
                skip_next = options.wants_next(&text);
                return None;
            }
            Some(at)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(line: &str) -> Option<Vec<String>> {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        mark_file(&args, &super::super::command()).map(|args| {
            args.into_iter()
                .map(|arg| arg.to_string_lossy().replace(MARK, "^"))
                .collect()
        })
    }

    #[test]
    fn the_first_positional_after_add_is_marked_only_when_it_names_a_plugin() {
        assert_eq!(
            marked("rtap add --store DIR echo echo --port tcp:0").unwrap()[4],
            "^echo"
        );
        assert_eq!(
            marked("rtap --wait 5 add --parent web --store=DIR kv echo").unwrap()[7],
            "^kv"
        );
        assert_eq!(marked("rtap add --live echo discard").unwrap()[3], "^echo");
        assert_eq!(marked("rtap add app.tap echo --port tcp:0"), None);
        assert_eq!(marked("rtap set echo echo port=1"), None);
        assert_eq!(marked("rtap add -- echo echo"), None);
    }

    #[test]
    fn unmarking_gives_back_what_was_written() {
        let mut file = format!("{MARK}echo");
        unmark(&mut file);
        assert_eq!(file, "echo");
        unmark(&mut file);
        assert_eq!(file, "echo");
    }
}
