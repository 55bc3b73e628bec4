//! `Application`: the configuration object a snapshot freezes and a runner thaws.
//!
//! An application is a name, process settings (who the daemon runs as), persistence settings
//! (how it is saved), and the root [`MultiService`] of its service tree. The accessors stand in
//! for Twisted's interface adaptation: `IService(app)` is [`Application::services`],
//! `IProcess(app)` is [`Application::process`], `IPersistable(app)` is
//! [`Application::persistence`].
//!
//! ```
//! use rtwisted_core::{Application, MultiService};
//! let mut app = Application::new("echo").unwrap();
//! app.services_mut().insert_named("web", Box::new(MultiService::new())).unwrap();
//! app.process_mut().uid = Some(1000);
//! assert_eq!(app.name(), "echo");
//! assert_eq!(app.services().len(), 1);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::multi::MultiService;

/// An application name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid application name '{0}': it names snapshot files, so it must be non-empty, must not start with '.' and must not contain '/' or NUL"
)]
pub struct AppNameError(pub String);

/// Checks that `name` can be an application name (it becomes part of file names such as
/// `NAME-shutdown.tap`, so it cannot hold a path).
pub fn validate_app_name(name: &str) -> Result<(), AppNameError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(AppNameError(name.to_owned()));
    }
    Ok(())
}

/// The snapshot style an application is saved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Binary MessagePack (`.tap`), the default.
    #[default]
    Tap,
    /// Pretty JSON source (`.tas`), for people, diffs and `jq`.
    Tas,
}

impl Style {
    /// The file extension for this style, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Style::Tap => "tap",
            Style::Tas => "tas",
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// An unknown style name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown snapshot style '{0}': expected 'tap' (binary) or 'tas' (source)")]
pub struct StyleError(pub String);

impl FromStr for Style {
    type Err = StyleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "tap" => Ok(Style::Tap),
            "tas" => Ok(Style::Tas),
            other => Err(StyleError(other.to_owned())),
        }
    }
}

/// Who the daemon runs as (Twisted's `IProcess`). `None` leaves the setting alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessSettings {
    /// The user id to switch to after the privileged start.
    pub uid: Option<u32>,
    /// The group id to switch to after the privileged start.
    pub gid: Option<u32>,
    /// The process name to show in `ps`.
    pub process_name: Option<String>,
    /// The file mode creation mask.
    pub umask: Option<u32>,
}

/// How the application is saved (Twisted's `IPersistable`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistenceSettings {
    /// The style of snapshots written for this application; a loaded application keeps the
    /// style it was loaded from.
    pub style: Style,
    /// A file name that overrides the default `NAME.tap`.
    pub file_name: Option<String>,
}

/// The root configuration object: name, process and persistence settings, and the service tree.
///
/// Persisted: everything except each service's lifecycle state, so a thawed application has
/// every service stopped. Its serde form is written and read by [`crate::codec`].
#[derive(Debug)]
pub struct Application {
    name: String,
    process: ProcessSettings,
    persistence: PersistenceSettings,
    services: MultiService,
}

/// Process settings that no process could use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessSettingsError {
    /// A umask has nine permission bits.
    #[error("invalid umask {0:#o}: a umask is at most 0o777")]
    Umask(u32),
}

impl ProcessSettings {
    /// Checks the settings a runner would apply.
    pub fn validate(&self) -> Result<(), ProcessSettingsError> {
        match self.umask {
            Some(mask) if mask > 0o777 => Err(ProcessSettingsError::Umask(mask)),
            _ => Ok(()),
        }
    }
}

/// An application could not be built from its parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplicationError {
    /// The name.
    #[error(transparent)]
    Name(#[from] AppNameError),
    /// The process settings.
    #[error(transparent)]
    Process(#[from] ProcessSettingsError),
}

impl Application {
    /// A new application with an empty service tree (Twisted's `Application(name)`).
    pub fn new(name: impl Into<String>) -> Result<Self, AppNameError> {
        let name = name.into();
        validate_app_name(&name)?;
        Ok(Application {
            name,
            process: ProcessSettings::default(),
            persistence: PersistenceSettings::default(),
            services: MultiService::new(),
        })
    }

    /// An application from its parts, as a snapshot holds them; the name and the process
    /// settings are checked.
    pub fn from_parts(
        name: String,
        process: ProcessSettings,
        persistence: PersistenceSettings,
        services: MultiService,
    ) -> Result<Self, ApplicationError> {
        validate_app_name(&name)?;
        process.validate()?;
        Ok(Application {
            name,
            process,
            persistence,
            services,
        })
    }

    /// The application's name; it names its snapshot files.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the application.
    pub fn set_name(&mut self, name: impl Into<String>) -> Result<(), AppNameError> {
        let name = name.into();
        validate_app_name(&name)?;
        self.name = name;
        Ok(())
    }

    /// The root of the service tree (`IService(app)`, `IServiceCollection(app)`).
    pub fn services(&self) -> &MultiService {
        &self.services
    }

    /// Mutable access to the root of the service tree.
    pub fn services_mut(&mut self) -> &mut MultiService {
        &mut self.services
    }

    /// Process settings (`IProcess(app)`).
    pub fn process(&self) -> &ProcessSettings {
        &self.process
    }

    /// Mutable process settings.
    pub fn process_mut(&mut self) -> &mut ProcessSettings {
        &mut self.process
    }

    /// Persistence settings (`IPersistable(app)`).
    pub fn persistence(&self) -> &PersistenceSettings {
        &self.persistence
    }

    /// Mutable persistence settings.
    pub fn persistence_mut(&mut self) -> &mut PersistenceSettings {
        &mut self.persistence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_the_folder_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "nul\0"] {
            assert!(Application::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Application::new("my app").is_ok());
    }

    #[test]
    fn thawing_a_hostile_name_is_an_error() {
        let json = r#"{"name": "../../etc/passwd", "services": {"name": null, "children": []}}"#;
        let err = serde_json::from_str::<Application>(json).unwrap_err();
        assert!(
            err.to_string().contains("invalid application name"),
            "{err}"
        );
    }

    #[test]
    fn thawing_a_umask_no_process_can_have_is_an_error() {
        let json = r#"{"name": "x", "process": {"umask": 4095}, "services": {"children": []}}"#;
        let err = serde_json::from_str::<Application>(json).unwrap_err();
        assert!(err.to_string().contains("invalid umask 0o7777"), "{err}");
    }

    #[test]
    fn style_parses_and_names_its_extension() {
        assert_eq!("tas".parse::<Style>().unwrap().extension(), "tas");
        let err = "xml".parse::<Style>().unwrap_err();
        assert!(err.to_string().contains("'xml'"));
    }
}
