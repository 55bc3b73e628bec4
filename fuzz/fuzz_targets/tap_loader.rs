//! Any bytes fed to the snapshot loader: an error is fine, a panic, an abort or a hang is not.
//! Inputs that start with the tap magic reach the binary decoder past its first check.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"\x89RTWTAP\n".to_vec();
    bytes.extend_from_slice(data);
    let _ = rtwisted_persist::decode(&bytes);
    let _ = rtwisted_persist::decode_raw(&bytes);
    let _ = rtwisted_persist::decode(data);
});
