//! The `kv` protocol: a key-value server speaking the memcached text protocol (being written).
