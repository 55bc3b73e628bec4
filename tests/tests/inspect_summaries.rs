//! Inspect in bounded memory: `rtap inspect` summarizes large fields (a kv table's items) unless
//! asked for everything with `--all`; the service tree itself is always shown whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use rtwisted_tests::{DEADLINE, Scratch, text};

const ITEMS: usize = 2000;

#[test]
fn a_large_table_is_summarized_unless_everything_is_asked_for() {
    let scratch = Scratch::new();
    let (daemon, address) = scratch.serve_saved("kv", &[]);
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let value = "x".repeat(100);
    let mut requests = String::new();
    for item in 0..ITEMS {
        requests.push_str(&format!("set key{item} 0 0 100 noreply\r\n{value}\r\n"));
    }
    requests.push_str("set last 0 0 1\r\nv\r\n");
    writer.write_all(requests.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert_eq!(reply, "STORED\r\n");
    daemon.stop();

    let shown = text(&scratch.rtap_ok(&["inspect", "kv-shutdown.tap"]).stdout);
    let line = shown
        .lines()
        .find(|l| l.contains("kv  [rtwisted.StreamServer]"))
        .unwrap();
    assert!(
        line.contains("(factory.table.items: 2,001 entries, "),
        "{shown}"
    );
    let doc = scratch.inspect_json("kv-shutdown.tap");
    let items = &doc["services"]["children"][0]["fields"]["factory"]["table"]["items"];
    assert_eq!(items["$summarized"]["entries"], 2001, "{items}");
    assert!(items["$summarized"]["bytes"].as_u64().unwrap() > 200_000);
    let everything = scratch.inspect_json_with(&["--all", "kv-shutdown.tap"]);
    let items = &everything["services"]["children"][0]["fields"]["factory"]["table"]["items"];
    assert_eq!(items.as_array().unwrap().len(), ITEMS + 1);
}
