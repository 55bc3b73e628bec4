//! Black-box tests of the rtwisted binaries live in `tests/`; this crate has no library code.
