//! Any string fed to the strports parsers; whatever parses must print to a form that parses
//! back to the same endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtwisted_services::strports::{ClientEndpoint, ServerEndpoint};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(endpoint) = ServerEndpoint::parse(text) {
        let again = ServerEndpoint::parse(&endpoint.to_string()).expect("canonical form parses");
        assert_eq!(again, endpoint);
    }
    if let Ok(endpoint) = ClientEndpoint::parse(text) {
        let again = ClientEndpoint::parse(&endpoint.to_string()).expect("canonical form parses");
        assert_eq!(again, endpoint);
    }
});
