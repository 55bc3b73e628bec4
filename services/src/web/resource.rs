//! The resources a [`Site`](super::Site) serves, by the path they are mounted at: each a plain
//! serializable value, saved in the snapshot with the site.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::strports::ClientEndpoint;

/// One resource. In a snapshot each is a map whose `kind` names it (`static`, `proxy`,
/// `redirect`, `data`, `health`), so `rtap set` and `rtap edit` can change any field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Resource {
    /// A folder on disk, served as Twisted's `static.File` serves one: index files, listings,
    /// content types, ranges and conditional requests.
    Static {
        /// The folder (or a single file).
        path: PathBuf,
        /// Whether a folder without an index file is listed (Twisted lists by default).
        #[serde(default = "yes")]
        listing: bool,
        /// Whether symbolic links may lead outside `path` (by default they may not).
        #[serde(default)]
        follow_symlinks: bool,
        /// The names tried, in order, for a folder's index.
        #[serde(default = "default_index")]
        index: Vec<String>,
    },
    /// A reverse proxy (Twisted's `ReverseProxyResource(host, port, path)`): a request for
    /// `MOUNT/rest?query` goes to `dest` as `path/rest?query`, both bodies streamed.
    Proxy {
        /// Where requests go (`tcp:host=H:port=P`, `unix:path=P`, `tls:host=H:port=P`).
        dest: ClientEndpoint,
        /// The path prefix requests get upstream (Twisted's `path`; empty by default).
        #[serde(default)]
        path: String,
        /// The `Host` header sent upstream: the client's own when true, else the
        /// destination's host (and port, unless 80), as Twisted sends.
        #[serde(default)]
        preserve_host: bool,
    },
    /// A redirect (Twisted's `util.Redirect`): every request gets `code` and `Location: to`.
    Redirect {
        /// The target URL.
        to: String,
        /// 301, 302 (the default, as Twisted's), 303, 307 or 308.
        #[serde(default = "found")]
        code: u16,
    },
    /// Fixed bytes with a content type (Twisted's `static.Data(data, type)`).
    Data {
        /// The bytes (written as text when they are UTF-8).
        #[serde(with = "text_or_bytes")]
        data: Vec<u8>,
        /// The `Content-Type`.
        content_type: String,
    },
    /// `200 ok` while the server runs: for load balancers and probes.
    Health {},
}

fn yes() -> bool {
    true
}

fn found() -> u16 {
    302
}

/// Twisted's `File.indexNames`, without the Python one.
pub fn default_index() -> Vec<String> {
    ["index", "index.html", "index.htm"]
        .map(String::from)
        .to_vec()
}

impl Resource {
    /// A static folder with Twisted's defaults: listed, no symlinks out, the usual index names.
    pub fn folder(path: impl Into<PathBuf>) -> Self {
        Resource::Static {
            path: path.into(),
            listing: true,
            follow_symlinks: false,
            index: default_index(),
        }
    }

    /// A reverse proxy to `dest`, with no path prefix, sending the destination's `Host`.
    pub fn proxy(dest: ClientEndpoint) -> Self {
        Resource::Proxy {
            dest,
            path: String::new(),
            preserve_host: false,
        }
    }

    /// What this resource is, in one word.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Static { .. } => "static",
            Resource::Proxy { .. } => "proxy",
            Resource::Redirect { .. } => "redirect",
            Resource::Data { .. } => "data",
            Resource::Health {} => "health",
        }
    }

    /// Checks what serde cannot: a redirect's code, a proxy's path, header-safe values.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Resource::Redirect { to, code } => {
                if !matches!(code, 301 | 302 | 303 | 307 | 308) {
                    return Err(format!(
                        "a redirect's code must be 301, 302, 303, 307 or 308, got {code}"
                    ));
                }
                if to.is_empty() || !header_safe(to) {
                    return Err(format!(
                        "a redirect needs a URL without control characters, got {to:?}"
                    ));
                }
            }
            Resource::Proxy { path, .. } => {
                if !(path.is_empty() || path.starts_with('/'))
                    || !header_safe(path)
                    || path.contains(['?', '#', ' '])
                {
                    return Err(format!(
                        "a proxy's path must be empty or start with '/', without spaces, '?' or '#', got {path:?}"
                    ));
                }
            }
            Resource::Data { content_type, .. } => {
                if content_type.is_empty() || !header_safe(content_type) {
                    return Err(format!(
                        "data needs a content type such as text/plain, got {content_type:?}"
                    ));
                }
            }
            Resource::Static { index, .. } => {
                if let Some(bad) = index.iter().find(|name| {
                    name.is_empty() || name.contains(['/', '\0']) || *name == ".." || *name == "."
                }) {
                    return Err(format!(
                        "an index name must be a plain file name, got {bad:?}"
                    ));
                }
            }
            Resource::Health {} => {}
        }
        Ok(())
    }
}

fn header_safe(text: &str) -> bool {
    text.bytes().all(|byte| byte >= 0x20 && byte != 0x7f)
}

impl fmt::Display for Resource {
    /// One line for `rtap inspect`: the kind and what it serves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Static {
                path,
                listing,
                follow_symlinks,
                ..
            } => {
                write!(f, "static {}", path.display())?;
                if !listing {
                    f.write_str(" (no listing)")?;
                }
                if *follow_symlinks {
                    f.write_str(" (follows symlinks)")?;
                }
                Ok(())
            }
            Resource::Proxy { dest, path, .. } => write!(f, "proxy {dest}{path}"),
            Resource::Redirect { to, code } => write!(f, "redirect {code} {to}"),
            Resource::Data { data, content_type } => {
                write!(f, "data {content_type} ({} bytes)", data.len())
            }
            Resource::Health {} => f.write_str("health"),
        }
    }
}

/// A mount point could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The path is not an absolute URL path of plain segments.
    #[error(
        "invalid mount path {0:?}: it must start with '/', with no empty, '.' or '..' segments, no trailing '/' (except the root '/') and no '%', '?', '#' or control characters"
    )]
    Invalid(String),
}

/// Checks a mount path: `/`, or `/seg(/seg)*` of plain segments.
pub fn validate_mount(path: &str) -> Result<(), MountError> {
    let invalid = || MountError::Invalid(path.to_owned());
    if path == "/" {
        return Ok(());
    }
    let rest = path.strip_prefix('/').ok_or_else(invalid)?;
    for segment in rest.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment
                .bytes()
                .any(|b| b < 0x21 || b == 0x7f || matches!(b, b'%' | b'?' | b'#'))
        {
            return Err(invalid());
        }
    }
    Ok(())
}

/// The resources by mount path, in path order. A request goes to the longest mount that is
/// its path or a whole-segment prefix of it (`/api` serves `/api` and `/api/x`, not `/apix`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mounts(BTreeMap<String, Resource>);

impl Mounts {
    /// No resources.
    pub fn new() -> Self {
        Mounts::default()
    }

    /// Mounts `resource` at `path`, replacing what was there; refuses a bad path or resource.
    pub fn insert(&mut self, path: &str, resource: Resource) -> Result<Option<Resource>, String> {
        validate_mount(path).map_err(|error| error.to_string())?;
        resource
            .validate()
            .map_err(|error| format!("the resource at {path}: {error}"))?;
        Ok(self.0.insert(path.to_owned(), resource))
    }

    /// The resource mounted at exactly `path`.
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.0.get(path)
    }

    /// Every mount, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Resource)> {
        self.0
            .iter()
            .map(|(path, resource)| (path.as_str(), resource))
    }

    /// How many resources are mounted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is mounted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Mounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Mounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Resource>::deserialize(deserializer)?;
        let mut mounts = Mounts::new();
        for (path, resource) in map {
            mounts
                .insert(&path, resource)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(mounts)
    }
}

/// Bytes written as a string when they are UTF-8 (readable in `tas` snapshots and `rtap
/// inspect`), else as bytes; read from either.
mod text_or_bytes {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(data) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_bytes(data),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Data;
        impl<'de> Visitor<'de> for Data {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
                Ok(text.as_bytes().to_vec())
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(bytes)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(bytes)
            }
        }
        deserializer.deserialize_any(Data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_absolute_plain_segments() {
        for good in ["/", "/api", "/a/b", "/v1.0", "/~user"] {
            assert!(validate_mount(good).is_ok(), "{good}");
        }
        for bad in [
            "", "api", "/api/", "//", "/a//b", "/..", "/a/./b", "/%2e", "/a?b", "/a b", "/a\0",
        ] {
            assert!(validate_mount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resources_round_trip_with_their_kind_and_defaults() {
        let json = serde_json::json!({
            "/": {"kind": "static", "path": "/srv"},
            "/api": {"kind": "proxy", "dest": "tcp:host=127.0.0.1:port=8000"},
            "/old": {"kind": "redirect", "to": "/new"},
            "/hello": {"kind": "data", "data": "hi", "content_type": "text/plain"},
            "/health": {"kind": "health"},
        });
        let mounts: Mounts = serde_json::from_value(json).unwrap();
        assert_eq!(mounts.get("/"), Some(&Resource::folder("/srv")));
        assert_eq!(
            mounts.get("/old"),
            Some(&Resource::Redirect {
                to: "/new".into(),
                code: 302
            })
        );
        let back = serde_json::to_value(&mounts).unwrap();
        assert_eq!(back["/"]["listing"], true);
        assert_eq!(back["/hello"]["data"], "hi");
        let again: Mounts = serde_json::from_value(back).unwrap();
        assert_eq!(again, mounts);
    }

    #[test]
    fn binary_data_survives_msgpack_as_bytes() {
        let mut mounts = Mounts::new();
        let data = Resource::Data {
            data: vec![0, 0xff, 7],
            content_type: "application/x".into(),
        };
        mounts.insert("/bin", data.clone()).unwrap();
        let bytes = rmp_serde::to_vec_named(&mounts).unwrap();
        let back: Mounts = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.get("/bin"), Some(&data));
    }

    #[test]
    fn bad_resources_and_mounts_are_refused_with_the_reason() {
        let bad = serde_json::json!({"/x": {"kind": "redirect", "to": "/y", "code": 200}});
        let error = serde_json::from_value::<Mounts>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("301, 302, 303, 307 or 308"), "{error}");
        let bad = serde_json::json!({"x": {"kind": "health"}});
        let error = serde_json::from_value::<Mounts>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid mount path \"x\""), "{error}");
        let bad = serde_json::json!({"/x": {"kind": "teapot"}});
        assert!(serde_json::from_value::<Mounts>(bad).is_err());
        let bad = serde_json::json!({"/x": {"kind": "health", "extra": 1}});
        assert!(serde_json::from_value::<Mounts>(bad).is_err());
    }
}
