//! The `procmon` plugin (being written).
