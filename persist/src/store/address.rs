//! Store addresses: `APP` (the latest snapshot), `APP@N` (snapshot number N), `APP@TAG`, and
//! `APP@latest`; and the rules for tag names.

use std::fmt;
use std::str::FromStr;

use super::StoreError;

/// The longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 64;

/// The selector word for the newest snapshot (`echo@latest` is `echo`). It cannot be a tag.
pub const LATEST: &str = "latest";

/// Which snapshot of an application an address picks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The newest snapshot.
    Latest,
    /// Snapshot number N (numbers start at 1 and are never reused).
    Number(u64),
    /// The snapshot carrying this tag.
    Tag(String),
}

/// A snapshot in a store: an application name and a [`Selector`].
///
/// ```
/// use rtwisted_persist::store::{Selector, StoreAddress};
/// let address: StoreAddress = "echo@3".parse().unwrap();
/// assert_eq!(address.app, "echo");
/// assert_eq!(address.selector, Selector::Number(3));
/// assert_eq!("echo@stable".parse::<StoreAddress>().unwrap().selector, Selector::Tag("stable".into()));
/// assert_eq!("echo".parse::<StoreAddress>().unwrap().selector, Selector::Latest);
/// assert!("echo@".parse::<StoreAddress>().is_err());
/// ```
///
/// The text is split at its last `@`, so an application whose name holds an `@` is addressed
/// with an explicit selector: `mail@home@latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreAddress {
    /// The application's name.
    pub app: String,
    /// Which of its snapshots.
    pub selector: Selector,
}

impl StoreAddress {
    /// The newest snapshot of `app`.
    pub fn latest(app: impl Into<String>) -> Self {
        StoreAddress {
            app: app.into(),
            selector: Selector::Latest,
        }
    }

    /// Snapshot number `number` of `app`.
    pub fn number(app: impl Into<String>, number: u64) -> Self {
        StoreAddress {
            app: app.into(),
            selector: Selector::Number(number),
        }
    }

    /// The snapshot of `app` tagged `tag`.
    pub fn tagged(app: impl Into<String>, tag: impl Into<String>) -> Self {
        StoreAddress {
            app: app.into(),
            selector: Selector::Tag(tag.into()),
        }
    }
}

impl fmt::Display for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Latest if self.app.contains('@') => write!(f, "{}@{LATEST}", self.app),
            Selector::Latest => f.write_str(&self.app),
            Selector::Number(number) => write!(f, "{}@{number}", self.app),
            Selector::Tag(tag) => write!(f, "{}@{tag}", self.app),
        }
    }
}

impl FromStr for StoreAddress {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidAddress {
            text: text.to_owned(),
            reason,
        };
        let (app, selector) = match text.rsplit_once('@') {
            None => (text, Selector::Latest),
            Some((_, "")) => {
                return Err(invalid(
                    "nothing after '@' (give a snapshot number, a tag, or 'latest')".to_owned(),
                ));
            }
            Some((app, LATEST)) => (app, Selector::Latest),
            Some((app, selector)) if selector.bytes().all(|b| b.is_ascii_digit()) => {
                match selector.parse::<u64>() {
                    Ok(0) => return Err(invalid("snapshot numbers start at 1".to_owned())),
                    Ok(number) => (app, Selector::Number(number)),
                    Err(_) => return Err(invalid(format!("'{selector}' is too large a number"))),
                }
            }
            Some((app, selector)) => {
                check_tag(selector).map_err(invalid)?;
                (app, Selector::Tag(selector.to_owned()))
            }
        };
        if app.is_empty() {
            return Err(invalid(
                "no application name (write APP, APP@N or APP@TAG)".to_owned(),
            ));
        }
        check_app(app).map_err(invalid)?;
        Ok(StoreAddress {
            app: app.to_owned(),
            selector,
        })
    }
}

/// Checks an application name (the rules of [`rtwisted_core::Application`]'s names).
pub(crate) fn check_app(app: &str) -> Result<(), String> {
    rtwisted_core::application::validate_app_name(app).map_err(|_| {
        format!(
            "'{app}' is not a valid application name (it must be non-empty, hold no '/' and not start with '.')"
        )
    })
}

/// Checks a tag: 1 to [`MAX_TAG_LEN`] ASCII letters, digits, `.`, `_` or `-`, not all digits
/// (those are snapshot numbers), and not `latest`. Returns why it is refused.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("a tag cannot be empty".to_owned());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag '{tag}' is longer than {MAX_TAG_LEN} characters"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "tag '{tag}' holds {bad:?}: tags are letters, digits, '.', '_' and '-'"
        ));
    }
    if tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "tag '{tag}' is all digits, which would read as a snapshot number"
        ));
    }
    if tag == LATEST {
        return Err(format!("'{LATEST}' is reserved for the newest snapshot"));
    }
    Ok(())
}
