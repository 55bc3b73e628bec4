//! `rtap completions SHELL` and `rtap man`: generated from the clap definitions.

use clap::{ArgMatches, Command};

use crate::error::CliError;

fn tool(matches: &ArgMatches) -> Command {
    match matches.get_one::<String>("for").map(String::as_str) {
        Some("rtwistd") => crate::rtwistd::command(),
        _ => super::command(),
    }
}

/// Prints a completion script for the shell named.
pub fn completions(matches: &ArgMatches) -> Result<(), CliError> {
    let shell = matches
        .get_one::<clap_complete::Shell>("shell")
        .copied()
        .ok_or_else(|| CliError::failed("no shell given"))?;
    let mut command = tool(matches);
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    crate::output::print(script)
}

/// Prints the man page (roff).
pub fn man(matches: &ArgMatches) -> Result<(), CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(tool(matches))
        .render(&mut page)
        .map_err(|error| CliError::failed(format!("cannot render the man page: {error}")))?;
    crate::output::print(page)
}
