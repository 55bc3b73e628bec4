//! Stats, the ends of connections, snapshots of the table, quiescing and published gauges.

use super::*;

#[tokio::test]
async fn stats_count_items_bytes_and_commands() {
    let mut client = connect(kv(1024));
    client
        .play(
            r"
            set a 0 0 3\r\nabc\r\n => STORED\r\n
            set b 0 0 2\r\nde\r\n => STORED\r\n
            add b 0 0 1\r\nx\r\n => NOT_STORED\r\n
            set gone 0 -1 1\r\nx\r\n => STORED\r\n
            get a nope\r\n => VALUE a 0 3\r\nabc\r\nEND\r\n
            ",
        )
        .await;
    client.send("stats\r\n").await;
    let mut reply = Vec::new();
    while !reply.ends_with(b"END\r\n") {
        let mut byte = [0u8; 1];
        timeout(Duration::from_secs(10), client.stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        reply.push(byte[0]);
    }
    let reply = String::from_utf8(reply).unwrap();
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(lines[lines.len() - 2..], ["END", ""]);
    let stats: std::collections::BTreeMap<&str, &str> = lines[..lines.len() - 2]
        .iter()
        .map(|line| {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("STAT"), "{line}");
            let name = words.next().unwrap();
            let value = words.next().unwrap();
            assert_eq!(words.next(), None, "{line}");
            (name, value)
        })
        .collect();
    for (name, value) in [
        ("curr_items", "2"),
        ("total_items", "3"),
        // Each item counts its key, its value and its bookkeeping, as memcached's do.
        ("bytes", &*(4 + 3 + 2 * table::ITEM_OVERHEAD).to_string()),
        ("cmd_get", "2"),
        ("cmd_set", "4"),
        ("get_hits", "1"),
        ("get_misses", "1"),
        ("curr_connections", "1"),
        ("item_size_max", "1024"),
    ] {
        assert_eq!(stats.get(name), Some(&value), "{name}");
    }
    assert_eq!(
        stats.get("version").copied(),
        VERSION.strip_prefix("VERSION ").map(str::trim_end)
    );
    client.quit().await;
}

#[tokio::test]
async fn quit_and_peer_close_end_the_connection() {
    let client = connect(kv(1024));
    client.quit().await;

    // Closing in the middle of a data block ends serve cleanly too.
    let mut client = connect(kv(1024));
    client.send("set k 0 0 10\r\nabc").await;
    let Client { stream, server, .. } = client;
    drop(stream);
    served(server).await;
}

#[tokio::test]
async fn serve_returns_when_the_shutdown_is_cancelled() {
    let mut client = connect(kv(1024));
    client.exchange("version\r\n", VERSION).await;
    client.send("set k 0 0 10\r\nabc").await;
    client.shutdown.cancel();
    let Client { server, .. } = client;
    served(server).await;
}

#[tokio::test]
async fn connections_share_one_table() {
    let kv = kv(1024);
    let mut first = connect(kv.clone());
    let mut second = connect(kv.clone());
    first.exchange("set k 0 0 1\r\na\r\n", "STORED\r\n").await;
    second
        .exchange("get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n")
        .await;
    first.quit().await;
    second.quit().await;
}

#[test]
fn accessors_report_the_table() {
    let kv = Kv::default();
    assert_eq!(kv.max_value_bytes(), DEFAULT_MAX_VALUE_BYTES);
    assert_eq!(DEFAULT_MAX_VALUE_BYTES, 1 << 20);
    assert!(kv.is_empty());
    assert_eq!(kv.len(), 0);
    assert_eq!(kv.get("k"), None);
    assert_eq!(
        format!("{kv:?}"),
        "Kv { max_value_bytes: 1048576, memory_limit_mb: 64, max_connections: 1024, items: 0, .. }"
    );
}

/// Fills a table over the protocol: text, binary and numeric values, flags, expiry, cas.
async fn filled() -> Arc<Kv> {
    played(
        1024,
        r"
        set text 7 0 5\r\nhello\r\n => STORED\r\n
        set bin 0 4000000000 3\r\n\x00\xff\x80\r\n => STORED\r\n
        set n 0 0 2\r\n41\r\n => STORED\r\n
        incr n 1\r\n => 42\r\n
        set gone 0 -1 1\r\nx\r\n => STORED\r\n
        set past 0 1000000000 1\r\nx\r\n => STORED\r\n
        ",
    )
    .await
}

#[tokio::test]
async fn the_snapshot_form_is_plain_named_data() {
    let kv = filled().await;
    let json = serde_json::to_value(&*kv).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "max_value_bytes": 1024,
            "table": {
                "next_cas": 5,
                "items": [
                    { "key": "bin", "flags": 0, "expires_at": 4000000000_i64, "cas": 2, "value": {"base64": "AP+A"} },
                    { "key": "n", "flags": 0, "expires_at": 0, "cas": 4, "value": "42" },
                    { "key": "text", "flags": 7, "expires_at": 0, "cas": 1, "value": "hello" },
                ],
            },
        })
    );
}

#[tokio::test]
async fn the_table_survives_a_json_round_trip_of_the_factory() {
    let kv = filled().await;
    let factory: &dyn ProtocolFactory = &*kv;
    let json = serde_json::to_string(factory).unwrap();
    assert!(json.contains(r#""type":"rtwisted.Kv""#), "{json}");

    // As the concrete type...
    let thawed: Kv = serde_json::from_str(&json.replace(r#""type":"rtwisted.Kv","#, "")).unwrap();
    assert_eq!(thawed.max_value_bytes(), 1024);
    assert_eq!(thawed.len(), 3);
    assert_eq!(thawed.get("text"), Some(b"hello".to_vec()));
    assert_eq!(thawed.get("bin"), Some(b"\x00\xff\x80".to_vec()));
    assert_eq!(thawed.get("n"), Some(b"42".to_vec()));
    assert_eq!(thawed.get("gone"), None);
    assert_eq!(
        serde_json::to_string(&thawed).unwrap(),
        serde_json::to_string(&*kv).unwrap()
    );

    // ...and as a factory a server thaws, serving the same items with the same cas uniques,
    // and a cas counter that carries on.
    let thawed: Box<dyn ProtocolFactory> = serde_json::from_str(&json).unwrap();
    let mut client = connect(Arc::from(thawed));
    client
        .play(
            r"
            gets text bin n\r\n => VALUE text 7 5 1\r\nhello\r\nVALUE bin 0 3 2\r\n\x00\xff\x80\r\nVALUE n 0 2 4\r\n42\r\nEND\r\n
            cas n 0 0 1 4\r\n0\r\n => STORED\r\n
            gets n\r\n => VALUE n 0 1 5\r\n0\r\nEND\r\n
            ",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn a_snapshot_of_a_running_server_reads_current_values() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client.exchange("set k 0 0 1\r\na\r\n", "STORED\r\n").await;
    let before = serde_json::to_string(&*kv).unwrap();
    client.exchange("set k 0 0 1\r\nb\r\n", "STORED\r\n").await;
    let after: Kv = serde_json::from_str(&serde_json::to_string(&*kv).unwrap()).unwrap();
    client.quit().await;
    assert!(before.contains(r#""value":"a""#), "{before}");
    assert_eq!(after.get("k"), Some(b"b".to_vec()));
}

#[test]
fn missing_fields_thaw_as_an_empty_default_table() {
    let kv: Kv = serde_json::from_str("{}").unwrap();
    assert_eq!(kv.max_value_bytes(), DEFAULT_MAX_VALUE_BYTES);
    assert!(kv.is_empty());
    assert!(serde_json::from_str::<Kv>(r#"{"table": {"items": [{"key": "k"}]}}"#).is_err());
}

#[tokio::test]
async fn while_quiesced_writes_wait_and_reads_go_on_then_resume_lets_them_through() {
    let kv = kv(1024);
    let mut writer = connect(kv.clone());
    writer
        .exchange("set before 0 0 1\r\nb\r\n", "STORED\r\n")
        .await;
    kv.quiesce().await;
    writer.send("set during 0 0 1\r\nd\r\n").await;
    // Reads are answered meanwhile, on another connection and on the same table.
    let mut reader = connect(kv.clone());
    reader
        .exchange("get before\r\n", "VALUE before 0 1\r\nb\r\nEND\r\n")
        .await;
    // The write is not acknowledged, and not in a snapshot taken now.
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(200), writer.stream.read(&mut byte)).await;
    assert!(early.is_err(), "a write was answered while quiesced");
    let json = serde_json::to_string(&*kv).unwrap();
    assert!(
        json.contains("before") && !json.contains("during"),
        "{json}"
    );
    kv.resume().await;
    writer.expect("STORED\r\n").await;
    assert_eq!(kv.get("during"), Some(b"d".to_vec()));
    writer.quit().await;
    reader.quit().await;
}

#[tokio::test]
async fn published_gauges_follow_items_bytes_evictions_and_connections() {
    let kv = Arc::new(Kv::new(1 << 20).with_memory_limit_mb(1));
    let counters = rtwisted_core::context::Counters::default();
    kv.publish(&counters);
    let value = |name: &str| {
        counters
            .values()
            .into_iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value)
    };
    let mut client = connect(kv.clone());
    client
        .exchange("set a 0 0 3\r\nabc\r\n", "STORED\r\n")
        .await;
    assert_eq!(value("kv_items"), Some(1));
    assert_eq!(
        value("kv_bytes"),
        Some((1 + 3 + table::ITEM_OVERHEAD) as u64)
    );
    assert_eq!(value("kv_connections"), Some(1));
    assert_eq!(value("kv_evictions_total"), Some(0));
    // Two values of 600 KB do not fit in 1 MiB together: the older one goes.
    let big = "x".repeat(600_000);
    for key in ["b", "c"] {
        client.exchange(set_request(key, &big), "STORED\r\n").await;
    }
    assert!(value("kv_evictions_total") >= Some(1));
    assert!(value("kv_bytes").unwrap() <= 1 << 20);
    client.quit().await;
    assert!(eventually_zero(|| value("kv_connections")).await);
}

/// Polls `gauge` (bounded, 10 ms apart) until it reads zero.
async fn eventually_zero(gauge: impl Fn() -> Option<u64>) -> bool {
    for _ in 0..500 {
        if gauge() == Some(0) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
