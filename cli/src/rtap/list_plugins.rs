//! `rtap plugins [--json]`: every registered plugin, its description and its options.

use rtwisted_services::plugin;
use serde_json::{Value, json};

use super::PluginsArgs;
use crate::error::CliError;

/// Prints the plugins, one per line, or as JSON.
pub fn run(args: &PluginsArgs) -> Result<(), CliError> {
    let makers = plugin::plugins();
    if args.json {
        let list: Vec<Value> = makers
            .iter()
            .map(|maker| {
                let command = maker.command();
                let options: Vec<Value> = command
                    .get_arguments()
                    .filter(|arg| arg.get_long().is_some())
                    .map(|arg| {
                        json!({
                            "long": arg.get_long().map(|long| format!("--{long}")),
                            "value": arg.get_value_names().and_then(|names| names.first()).map(ToString::to_string),
                            "default": arg.get_default_values().first().map(|v| v.to_string_lossy().into_owned()),
                            "help": arg.get_help().map(ToString::to_string),
                        })
                    })
                    .collect();
                json!({"name": maker.name, "description": maker.description, "options": options})
            })
            .collect();
        let text = serde_json::to_string_pretty(&list)
            .map_err(|error| CliError::failed(error.to_string()))?;
        crate::output::println(text)?;
    } else {
        for maker in makers {
            crate::output::println(format!("{:<14}{}", maker.name, maker.description))?;
        }
    }
    Ok(())
}
