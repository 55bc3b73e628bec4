//! The `procmon` plugin: a [`ProcessMonitor`] that keeps child processes running.
//!
//! Each process is one `--run NAME:COMMAND [ARGS...]` option, repeated for more processes.
//! Everything after the first `:` is split on whitespace into the program and its arguments,
//! with no quoting; a command that needs a shell is written as `--run 'NAME:sh script.sh'`
//! (or edited later with `rtap edit`, where `args` is a list). The restart policy options
//! take seconds:
//!
//! ```text
//! rtap save procmon --run 'web:python3 -m http.server 8000' --run 'worker:./worker --fast' \
//!     --min-restart-delay 0.5 --kill-time 10
//! ```

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{PluginError, ServiceMaker};
use crate::procmon::{ProcessMonitor, ProcessSpec, ProcmonError, RestartPolicy};
use rtwisted_core::Child;

fn options() -> Command {
    Command::new("procmon")
        .arg(
            Arg::new("run")
                .long("run")
                .short('r')
                .value_name("NAME:COMMAND [ARGS...]")
                .action(ArgAction::Append)
                .required(true)
                .value_parser(parse_run)
                .help(
                    "A process to keep running: a name, ':', then the command and its arguments \
                     separated by whitespace (no quoting), e.g. 'web:python3 -m http.server'; \
                     repeat for more processes",
                ),
        )
        .arg(seconds(
            "min-restart-delay",
            "1",
            "Seconds before restarting a process that died quickly the first time, and after a \
             long run (above 0)",
        ))
        .arg(seconds(
            "max-restart-delay",
            "3600",
            "The longest wait before a restart, in seconds: each quick death doubles the wait up \
             to this",
        ))
        .arg(seconds(
            "threshold",
            "1",
            "Seconds a run must last to count as healthy and reset the wait; a shorter run is a \
             quick death",
        ))
        .arg(seconds(
            "kill-time",
            "5",
            "Seconds a stopping process has between SIGTERM and SIGKILL",
        ))
}

fn seconds(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SECONDS")
        .default_value(default)
        .allow_negative_numbers(true)
        .value_parser(parse_seconds)
        .help(help)
}

fn parse_seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!(
            "expected a number of seconds, at least 0, got '{value}'"
        )),
    }
}

/// Parses `NAME:COMMAND [ARGS...]`.
fn parse_run(value: &str) -> Result<ProcessSpec, String> {
    const SHAPE: &str = "expected NAME:COMMAND [ARGS...], e.g. 'web:python3 -m http.server'";
    let Some((name, command)) = value.split_once(':') else {
        return Err(format!("no ':' after the process name; {SHAPE}"));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("the process name before ':' is empty; {SHAPE}"));
    }
    if name.contains(char::is_whitespace) {
        return Err(format!(
            "the process name '{name}' contains whitespace; {SHAPE}"
        ));
    }
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return Err(format!("no command after '{name}:'; {SHAPE}"));
    };
    Ok(ProcessSpec::new(name, program).with_args(words))
}

/// The option that sets what `error` is about.
fn option_of(error: &ProcmonError) -> &'static str {
    match error {
        ProcmonError::Seconds { field, .. } => match *field {
            "max_restart_delay" => "max-restart-delay",
            "threshold" => "threshold",
            "kill_time" => "kill-time",
            _ => "min-restart-delay",
        },
        ProcmonError::ZeroDelay => "min-restart-delay",
        ProcmonError::DelayOrder { .. } => "max-restart-delay",
        ProcmonError::EmptyName
        | ProcmonError::EmptyCommand(_)
        | ProcmonError::DuplicateName(_) => "run",
    }
}

fn plugin_error(error: ProcmonError) -> PluginError {
    PluginError::Option {
        option: option_of(&error),
        message: error.to_string(),
    }
}

fn make_service(options: &ArgMatches) -> Result<Child, PluginError> {
    let value = |option: &'static str| super::required::<f64>(options, option);
    let policy = RestartPolicy {
        min_restart_delay: value("min-restart-delay")?,
        max_restart_delay: value("max-restart-delay")?,
        threshold: value("threshold")?,
        kill_time: value("kill-time")?,
    };
    let mut monitor = ProcessMonitor::new()
        .with_policy(policy)
        .map_err(plugin_error)?;
    for spec in options.get_many::<ProcessSpec>("run").into_iter().flatten() {
        monitor.add_process(spec.clone()).map_err(plugin_error)?;
    }
    if monitor.processes().is_empty() {
        return Err(PluginError::Option {
            option: "run",
            message: "give at least one process to run".into(),
        });
    }
    Ok(Child::named("procmon", Box::new(monitor))?)
}

inventory::submit! {
    ServiceMaker {
        name: "procmon",
        description: "Keeps child processes running, restarting them with backoff",
        options,
        make_service,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn build(args: &[&str]) -> Result<Child, String> {
        crate::plugin::build("procmon", args)
    }

    fn monitor(child: &Child) -> &ProcessMonitor {
        child.service().downcast_ref::<ProcessMonitor>().unwrap()
    }

    #[test]
    fn builds_a_named_monitor_from_run_options() {
        let service = build(&[
            "--run",
            "web: python3  -m http.server 8000",
            "-r",
            "quick:true",
            "--min-restart-delay",
            "0.5",
            "--max-restart-delay",
            "60",
            "--threshold",
            "2",
            "--kill-time",
            "10",
        ])
        .unwrap();
        assert_eq!(service.name(), Some("procmon"));
        assert_eq!(service.service().type_tag(), "rtwisted.ProcessMonitor");
        let monitor = monitor(&service);
        assert_eq!(
            monitor.processes(),
            [
                ProcessSpec::new("web", "python3").with_args(["-m", "http.server", "8000"]),
                ProcessSpec::new("quick", "true"),
            ]
        );
        assert_eq!(
            monitor.policy(),
            RestartPolicy {
                min_restart_delay: 0.5,
                max_restart_delay: 60.0,
                threshold: 2.0,
                kill_time: 10.0,
            }
        );
    }

    #[test]
    fn the_option_defaults_are_the_service_defaults() {
        let service = build(&["--run", "a:sleep 1"]).unwrap();
        assert_eq!(monitor(&service).policy(), RestartPolicy::default());
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        let refused = |args: &[&str]| build(args).unwrap_err();
        assert!(refused(&[]).contains("--run"));
        assert!(refused(&["--run", "sleep 1"]).contains("no ':'"));
        assert!(refused(&["--run", ":sleep 1"]).contains("name before ':' is empty"));
        assert!(refused(&["--run", "a b:sleep 1"]).contains("whitespace"));
        assert!(refused(&["--run", "a:  "]).contains("no command"));
        let twice = refused(&["--run", "a:true", "--run", "a:false"]);
        assert_eq!(twice, "option --run: there is already a process named 'a'");
        assert!(refused(&["--run", "a:true", "--kill-time", "-1"]).contains("at least 0"));
        assert!(refused(&["--run", "a:true", "--threshold", "soon"]).contains("'soon'"));
        let order = refused(&[
            "--run",
            "a:true",
            "--min-restart-delay",
            "10",
            "--max-restart-delay",
            "5",
        ]);
        assert!(order.starts_with("option --max-restart-delay:"), "{order}");
        let zero = refused(&["--run", "a:true", "--min-restart-delay", "0"]);
        assert!(zero.starts_with("option --min-restart-delay:"), "{zero}");
    }
}
