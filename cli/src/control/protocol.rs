//! The control protocol: versioned JSON lines between `rtap` and a running `rtwistd`.
//!
//! One request per line, one reply per line, on a UNIX socket that only the daemon's own user
//! (and root) may use. Every request carries `"v": 1` and a `command`:
//!
//! ```text
//! {"v":1,"command":"status"}
//! {"v":1,"command":"checkpoint"}
//! {"v":1,"command":"stop"}
//! {"v":1,"command":"snapshot"}
//! {"v":1,"command":"apply","snapshot":"<base64 of a plain .tap or .tas file>"}
//! {"v":1,"command":"apply","snapshot":"<the edited tree>","base":"<the tree the edit began from>"}
//! {"v":1,"command":"set","path":"kv","fields":{"factory.max_value_bytes":4096}}
//! {"v":1,"command":"add","parent":"web","child":"<base64 of a snapshot holding the child>"}
//! {"v":1,"command":"remove","path":"web/old"}
//! {"v":1,"command":"rename","path":"web/old","name":"new"}
//! {"v":1,"command":"restart"}
//! ```
//!
//! Every reply is `{"v":1,"ok":true,"result":{...}}` or `{"v":1,"ok":false,"error":"one line"}`.
//! A malformed, oversized or unknown request gets an error reply and changes nothing.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The longest request line accepted: a snapshot to apply travels inside one.
pub const MAX_REQUEST_BYTES: usize = 1 << 30;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// The live tree and the process: states, counters, the last checkpoint.
    Status,
    /// Save a checkpoint now; the reply says where it went.
    Checkpoint,
    /// Stop gracefully (and save); the reply comes after the save.
    Stop,
    /// The running tree as a snapshot, written nowhere.
    Snapshot,
    /// Make the running tree equal this snapshot's tree; with a `base`, carry over only what
    /// differs between `base` and `snapshot` (an edit of a tree fetched earlier).
    Apply {
        /// A plain snapshot file's bytes, base64.
        snapshot: String,
        /// The snapshot the edit started from, base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// Set fields of one service on its live value.
    Set {
        /// The service's path.
        path: String,
        /// Dotted field paths and their new values.
        fields: Map<String, Value>,
    },
    /// Add the one service a snapshot holds under a collection.
    Add {
        /// The collection's path (empty for the root).
        parent: String,
        /// A snapshot whose root holds exactly the child to add, base64.
        child: String,
    },
    /// Stop and remove a service.
    Remove {
        /// Its path.
        path: String,
    },
    /// Rename a service (it restarts under its new name).
    Rename {
        /// Its path.
        path: String,
        /// The new name.
        name: String,
    },
    /// Hand the running tree and its sockets to a new rtwistd process.
    Restart,
}

/// A request with its protocol version, as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The protocol version.
    pub v: u32,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

/// A reply, as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The protocol version.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// What it produced, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why not, when it was not: one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A success carrying `result`.
    pub fn success(result: Value) -> Self {
        Reply {
            v: VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure saying `error`.
    pub fn failure(error: impl Into<String>) -> Self {
        Reply {
            v: VERSION,
            ok: false,
            result: None,
            error: Some(error.into()),
        }
    }
}

/// Reads one request line; a line that is not a request of this version is an error reply.
pub fn parse_request(line: &[u8]) -> Result<Request, Reply> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| Reply::failure(format!("not a JSON request: {error}")))?;
    match value.get("v").and_then(Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Reply::failure(format!(
                "protocol version {v} is not spoken here (this rtwistd speaks version {VERSION})"
            )));
        }
        None => {
            return Err(Reply::failure(format!(
                "a request needs \"v\": {VERSION} and a \"command\""
            )));
        }
    }
    serde_json::from_value::<Envelope>(value)
        .map(|envelope| envelope.request)
        .map_err(|error| Reply::failure(format!("bad request: {error}")))
}

/// Bytes as they travel inside a request or reply.
pub fn encode_bytes(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes back from [`encode_bytes`].
pub fn decode_bytes(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| format!("not base64: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_round_trip_with_their_version() {
        let request = Request::Set {
            path: "kv".into(),
            fields: serde_json::from_str(r#"{"factory.max_value_bytes": 4096}"#).unwrap(),
        };
        let line = serde_json::to_vec(&Envelope {
            v: VERSION,
            request: request.clone(),
        })
        .unwrap();
        assert_eq!(parse_request(&line).unwrap(), request);
        assert_eq!(
            parse_request(br#"{"v":1,"command":"status"}"#).unwrap(),
            Request::Status
        );
    }

    #[test]
    fn bad_requests_get_one_line_each() {
        let error = |line: &[u8]| parse_request(line).unwrap_err().error.unwrap();
        assert!(error(b"\x00\xff").starts_with("not a JSON request"));
        assert!(error(br#"{"command":"status"}"#).contains("needs \"v\": 1"));
        assert!(error(br#"{"v":2,"command":"status"}"#).contains("version 2 is not spoken"));
        assert!(error(br#"{"v":1,"command":"launch"}"#).contains("unknown variant `launch`"));
        assert!(error(br#"{"v":1,"command":"remove"}"#).contains("missing field `path`"));
    }
}
