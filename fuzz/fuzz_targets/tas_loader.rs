//! Any text fed to the source-snapshot loader: an error is fine, a panic or a hang is not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtwisted_persist::decode(data);
    let _ = rtwisted_persist::decode_raw(data);
    let _ = rtwisted_persist::bounds::scan_json(data);
});
