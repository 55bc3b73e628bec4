//! Paths that address services in a tree: `web/http`, `#2`, `web/#0`.
//!
//! A path is a list of segments from the root. A segment is a child's name, or `#N` for the
//! child at index `N` (the form unnamed children are shown with). The root's path is empty and
//! displays as `/`; a leading or trailing `/` is accepted when parsing.
//!
//! ```
//! use rtwisted_core::{ServicePath, PathSegment};
//! let path: ServicePath = "web/#2".parse().unwrap();
//! assert_eq!(path.segments(), &[PathSegment::Name("web".into()), PathSegment::Index(2)]);
//! assert_eq!(path.to_string(), "web/#2");
//! assert_eq!(ServicePath::root().to_string(), "/");
//! ```

use std::fmt;
use std::str::FromStr;

/// One step of a [`ServicePath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A child by name.
    Name(String),
    /// A child by position among its siblings, written `#N`.
    Index(usize),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Name(name) => f.write_str(name),
            PathSegment::Index(index) => write!(f, "#{index}"),
        }
    }
}

impl PathSegment {
    /// The segment a child is shown with: its name, or `#index` when it has none.
    pub fn for_child(index: usize, name: Option<&str>) -> Self {
        match name {
            Some(name) => PathSegment::Name(name.to_owned()),
            None => PathSegment::Index(index),
        }
    }
}

/// A path was not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service path '{path}': {reason}")]
pub struct PathError {
    /// The text that was parsed.
    pub path: String,
    /// What was wrong with it.
    pub reason: String,
}

/// The address of a service in a tree, relative to the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ServicePath {
    segments: Vec<PathSegment>,
}

impl ServicePath {
    /// The root's path (empty; shown as `/`).
    pub fn root() -> Self {
        Self::default()
    }

    /// True for the root's path.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments, from the root down.
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// This path extended by one segment.
    pub fn join(&self, segment: PathSegment) -> Self {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        segments.extend(self.segments.iter().cloned());
        segments.push(segment);
        ServicePath { segments }
    }

    /// The last segment and the path of its parent; `None` for the root.
    pub fn split_last(&self) -> Option<(&PathSegment, ServicePath)> {
        let (last, parent) = self.segments.split_last()?;
        Some((
            last,
            ServicePath {
                segments: parent.to_vec(),
            },
        ))
    }

    /// `segment` followed by this path: used as errors travel up the tree.
    pub fn prefixed(mut self, segment: PathSegment) -> Self {
        self.segments.insert(0, segment);
        self
    }
}

impl From<Vec<PathSegment>> for ServicePath {
    fn from(segments: Vec<PathSegment>) -> Self {
        ServicePath { segments }
    }
}

impl fmt::Display for ServicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

impl FromStr for ServicePath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(ServicePath::root());
        }
        let error = |reason: String| PathError {
            path: text.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        for part in trimmed.split('/') {
            if part.is_empty() {
                return Err(error("empty segment (two '/' in a row)".into()));
            }
            if let Some(digits) = part.strip_prefix('#') {
                let index = digits.parse::<usize>().map_err(|_| {
                    error(format!(
                        "'{part}' is not an index: write '#' followed by a number, like '#0'"
                    ))
                })?;
                segments.push(PathSegment::Index(index));
            } else {
                segments.push(PathSegment::Name(part.to_owned()));
            }
        }
        Ok(ServicePath { segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_at_the_ends_are_ignored() {
        let a: ServicePath = "/web/http/".parse().unwrap();
        let b: ServicePath = "web/http".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "web/http");
    }

    #[test]
    fn root_parses_from_slash_or_empty() {
        assert!("/".parse::<ServicePath>().unwrap().is_root());
        assert!("".parse::<ServicePath>().unwrap().is_root());
    }

    #[test]
    fn bad_index_is_an_error_naming_the_segment() {
        let err = "web/#x".parse::<ServicePath>().unwrap_err();
        assert!(err.to_string().contains("'#x' is not an index"), "{err}");
    }

    #[test]
    fn double_slash_is_an_error() {
        assert!("web//http".parse::<ServicePath>().is_err());
    }
}
