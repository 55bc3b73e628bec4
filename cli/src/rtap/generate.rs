//! `rtap completions SHELL` and `rtap man`: generated from the clap definitions.

use clap::Command;

use super::{CompletionsArgs, ManArgs, Tool};
use crate::error::CliError;

fn tool(tool: Tool) -> Command {
    match tool {
        Tool::Rtwistd => crate::rtwistd::command(),
        Tool::Rtap => super::command(),
    }
}

/// Prints a completion script for the shell named.
pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut command = tool(args.tool);
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    crate::output::print(script)
}

/// Prints the man page (roff).
pub fn man(args: &ManArgs) -> Result<(), CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(tool(args.tool))
        .render(&mut page)
        .map_err(|error| CliError::failed(format!("cannot render the man page: {error}")))?;
    crate::output::print(page)
}
