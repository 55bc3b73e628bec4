//! Bytes are bytes: binary values and byte keys go through rtwistd's shutdown save and a
//! relaunch exactly, stored compactly (one byte per byte in the tap style), and the tas style
//! shows them readably.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rtwisted_tests::{MemcacheClient, Scratch, text};

/// Deterministic, incompressible, non-UTF-8 bytes.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_values_and_byte_keys_survive_a_stop_and_a_relaunch_compactly() {
    let scratch = Scratch::new();
    let (daemon, address) = scratch.serve_saved("kv", &[]);
    let mut client = MemcacheClient::connect(address);
    // 48 binary values of 1 MiB: each byte was one value of the snapshot, which passed the
    // 50,000,000-value limit, and the shutdown save failed with every item lost.
    let values: Vec<Vec<u8>> = (0..48).map(|i| noise(i, 1 << 20)).collect();
    for (index, value) in values.iter().enumerate() {
        client.store(format!("blob{index}").as_bytes(), value);
    }
    // Keys are bytes: memcached stores control and non-UTF-8 bytes too.
    let odd_key = b"\xff\x01key\x7f\xc3";
    client.store(odd_key, b"odd");
    drop(client);
    daemon.stop();

    let size = std::fs::metadata(scratch.join("kv-shutdown.tap"))
        .unwrap()
        .len();
    let data: u64 = 48 << 20;
    assert!(
        size < data + data / 100,
        "{size} bytes for {data} bytes of values: not one byte per byte"
    );

    let mut relaunched = scratch.spawn_rtwistd(&["-n", "-o", "-f", "kv-shutdown.tap"]);
    let mut client = MemcacheClient::connect(relaunched.listening_address());
    for (index, value) in values.iter().enumerate() {
        assert_eq!(
            client
                .get(format!("blob{index}").as_bytes())
                .map(|item| item.value)
                .as_ref(),
            Some(value),
            "blob{index}"
        );
    }
    assert_eq!(client.get(odd_key).unwrap().value, b"odd");
    drop(client);
    relaunched.stop();
}

#[test]
fn the_source_style_shows_bytes_as_text_or_base64() {
    let scratch = Scratch::new();
    scratch.save_on_loopback("kv", &["--style", "tas"]);
    let mut daemon = scratch.spawn_rtwistd(&["-n", "-f", "kv.tas"]);
    let mut client = MemcacheClient::connect(daemon.listening_address());
    client.store(b"greeting", b"hello");
    client.store(b"\xffraw", &[0, 255, 1]);
    drop(client);
    daemon.stop();

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.join("kv-shutdown.tas")).unwrap())
            .unwrap();
    let items = &doc["application"]["services"]["children"][0]["factory"]["table"]["items"];
    assert_eq!(items[0]["key"], "greeting");
    assert_eq!(items[0]["value"], "hello");
    assert_eq!(items[1]["key"], serde_json::json!({"base64": "/3Jhdw=="}));
    assert_eq!(items[1]["value"], serde_json::json!({"base64": "AP8B"}));
    // And rtap shows the same form from the binary style.
    scratch.rtap_ok(&["convert", "kv-shutdown.tas", "binary.tap"]);
    let output = scratch.rtap_ok(&["get", "binary.tap", "kv", "factory.table.items"]);
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(&shown, items, "{}", text(&output.stdout));
}
