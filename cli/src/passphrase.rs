//! Where passphrases come from: `--passphrase-file FILE`, else the `RTWISTED_PASSPHRASE`
//! variable, else the terminal (asked twice when encrypting). Never from the command line,
//! where `ps` would show it.

use std::path::{Path, PathBuf};

use rtwisted_persist::{Key, Passphrase, crypto::MAX_WORK_FACTOR};

use crate::error::CliError;

/// The environment variable that may hold the passphrase.
pub const PASSPHRASE_VARIABLE: &str = "RTWISTED_PASSPHRASE";
/// The environment variable that fixes the scrypt work factor for new encryptions (for tests
/// and slow machines; without it new encryptions use `crypto::DEFAULT_WORK_FACTOR`, 17).
pub const WORK_FACTOR_VARIABLE: &str = "RTWISTED_SCRYPT_WORK_FACTOR";

/// Where to get a passphrase from, when one is needed.
#[derive(Debug, Clone, Default)]
pub struct PassphraseSource {
    file: Option<PathBuf>,
}

impl PassphraseSource {
    /// The source with this `--passphrase-file`, if one was given.
    pub fn new(file: Option<PathBuf>) -> Self {
        PassphraseSource { file }
    }

    /// A passphrase: from the file, the variable, or the terminal (twice if `confirm`).
    pub fn obtain(&self, confirm: bool) -> Result<Passphrase, CliError> {
        if let Some(file) = &self.file {
            return from_file(file);
        }
        if let Ok(text) = std::env::var(PASSPHRASE_VARIABLE) {
            if text.is_empty() {
                return Err(CliError::failed(format!(
                    "{PASSPHRASE_VARIABLE} is set but empty"
                )));
            }
            return Ok(Passphrase::new(text));
        }
        let no_terminal = |error: std::io::Error| {
            CliError::failed(format!(
                "a passphrase is needed and there is no terminal to ask ({error}): use --passphrase-file FILE or set {PASSPHRASE_VARIABLE}"
            ))
        };
        let first = rpassword::prompt_password("Passphrase: ").map_err(no_terminal)?;
        if first.is_empty() {
            return Err(CliError::failed("the passphrase is empty"));
        }
        if confirm {
            let again = rpassword::prompt_password("Passphrase (again): ").map_err(no_terminal)?;
            if again != first {
                return Err(CliError::failed(
                    "the passphrases do not match; nothing was written",
                ));
            }
        }
        Ok(Passphrase::new(first))
    }

    /// A key for encrypting: the passphrase plus the work factor from the environment.
    pub fn key(&self, confirm: bool) -> Result<Key, CliError> {
        Ok(Key {
            passphrase: self.obtain(confirm)?,
            work_factor: work_factor()?,
        })
    }
}

fn from_file(path: &Path) -> Result<Passphrase, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::failed(format!(
            "cannot read the passphrase file '{}': {}",
            path.display(),
            rtwisted_persist::describe_io(&error)
        ))
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(CliError::failed(format!(
            "the passphrase file '{}' is empty",
            path.display()
        )));
    }
    Ok(Passphrase::new(line))
}

/// The work factor set by [`WORK_FACTOR_VARIABLE`], if any.
pub fn work_factor() -> Result<Option<u8>, CliError> {
    match std::env::var(WORK_FACTOR_VARIABLE) {
        Err(_) => Ok(None),
        Ok(text) => match text.parse::<u8>() {
            Ok(factor) if (1..=MAX_WORK_FACTOR).contains(&factor) => Ok(Some(factor)),
            _ => Err(CliError::failed(format!(
                "{WORK_FACTOR_VARIABLE} must be a number from 1 to {MAX_WORK_FACTOR}, got '{text}'"
            ))),
        },
    }
}
