//! The `kv` protocol driven over an in-memory stream, byte for byte.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::net::Address;

const VERSION: &str = "VERSION 1.6.18\r\n";

/// A client end of one connection served by a factory in its own task.
struct Client {
    stream: DuplexStream,
    shutdown: CancellationToken,
    server: JoinHandle<io::Result<()>>,
}

fn address() -> Address {
    Address::Inet("127.0.0.1:1".parse().unwrap())
}

fn connect(factory: Arc<dyn ProtocolFactory>) -> Client {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let shutdown = CancellationToken::new();
    let connection = Connection {
        stream: Box::new(server),
        peer: address(),
        local: address(),
        shutdown: shutdown.clone(),
    };
    let server = tokio::spawn(async move { factory.serve(connection).await });
    Client {
        stream: client,
        shutdown,
        server,
    }
}

impl Client {
    async fn send(&mut self, request: impl AsRef<[u8]>) {
        self.stream.write_all(request.as_ref()).await.unwrap();
    }

    /// Reads exactly as many bytes as `expected` has and compares.
    async fn expect(&mut self, expected: impl AsRef<[u8]>) {
        let expected = expected.as_ref();
        let mut got = vec![0; expected.len()];
        timeout(Duration::from_secs(10), self.stream.read_exact(&mut got))
            .await
            .unwrap_or_else(|_| panic!("no reply in time; expected {}", expected.escape_ascii()))
            .unwrap();
        assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    async fn exchange(&mut self, request: impl AsRef<[u8]>, expected: impl AsRef<[u8]>) {
        self.send(request).await;
        self.expect(expected).await;
    }

    /// Reads until the server closes; everything it sent must have been expected already.
    async fn expect_closed(mut self) {
        let mut rest = Vec::new();
        timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest.escape_ascii().to_string(), "");
        timeout(Duration::from_secs(10), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// Quits: nothing unexpected may be left on the wire.
    async fn quit(mut self) {
        self.send("quit\r\n").await;
        self.expect_closed().await;
    }
}

fn kv(max_value_bytes: usize) -> Arc<Kv> {
    Arc::new(Kv::new(max_value_bytes))
}

#[tokio::test]
async fn set_then_get_returns_the_value_with_its_flags() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client
        .exchange("set greeting 42 0 5\r\nhello\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            "get greeting\r\n",
            "VALUE greeting 42 5\r\nhello\r\nEND\r\n",
        )
        .await;
    client
        .exchange("set greeting 4294967295 0 0\r\n\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            "get greeting\r\n",
            "VALUE greeting 4294967295 0\r\n\r\nEND\r\n",
        )
        .await;
    client.exchange("get nothing\r\n", "END\r\n").await;
    client.quit().await;
    assert_eq!(kv.get("greeting"), Some(Vec::new()));
    assert_eq!(kv.len(), 1);
}

#[tokio::test]
async fn values_may_hold_any_bytes() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client
        .exchange(b"set bin 0 0 6\r\n\r\n\x00\xff \n\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            "get bin\r\n",
            b"VALUE bin 0 6\r\n\r\n\x00\xff \n\r\nEND\r\n",
        )
        .await;
    client.quit().await;
    assert_eq!(kv.get("bin"), Some(b"\r\n\x00\xff \n".to_vec()));
}

#[tokio::test]
async fn get_of_several_keys_answers_the_hits_in_order() {
    let mut client = connect(kv(1024));
    client.exchange("set a 1 0 1\r\nA\r\n", "STORED\r\n").await;
    client.exchange("set c 3 0 1\r\nC\r\n", "STORED\r\n").await;
    client
        .exchange(
            "get c b a\r\n",
            "VALUE c 3 1\r\nC\r\nVALUE a 1 1\r\nA\r\nEND\r\n",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn gets_shows_cas_uniques_and_cas_stores_only_with_the_current_one() {
    let mut client = connect(kv(1024));
    client.exchange("set k 0 0 1\r\na\r\n", "STORED\r\n").await;
    client
        .exchange("set other 0 0 1\r\nx\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            "gets k other\r\n",
            "VALUE k 0 1 1\r\na\r\nVALUE other 0 1 2\r\nx\r\nEND\r\n",
        )
        .await;
    client
        .exchange("cas k 7 0 1 2\r\nb\r\n", "EXISTS\r\n")
        .await;
    client
        .exchange("cas k 7 0 1 1\r\nb\r\n", "STORED\r\n")
        .await;
    client
        .exchange("gets k\r\n", "VALUE k 7 1 3\r\nb\r\nEND\r\n")
        .await;
    // The unique just used is stale now.
    client
        .exchange("cas k 0 0 1 1\r\nc\r\n", "EXISTS\r\n")
        .await;
    client
        .exchange("cas missing 0 0 1 1\r\nc\r\n", "NOT_FOUND\r\n")
        .await;
    client.exchange("cas k 0 0 1 3 noreply\r\nd\r\n", "").await;
    client
        .exchange("get k\r\n", "VALUE k 0 1\r\nd\r\nEND\r\n")
        .await;
    client.quit().await;
}

#[tokio::test]
async fn add_stores_only_missing_keys_and_replace_only_present_ones() {
    let mut client = connect(kv(1024));
    client
        .exchange("replace k 0 0 1\r\na\r\n", "NOT_STORED\r\n")
        .await;
    client.exchange("add k 0 0 1\r\na\r\n", "STORED\r\n").await;
    client
        .exchange("add k 0 0 1\r\nb\r\n", "NOT_STORED\r\n")
        .await;
    client
        .exchange("replace k 5 0 1\r\nc\r\n", "STORED\r\n")
        .await;
    client
        .exchange("get k\r\n", "VALUE k 5 1\r\nc\r\nEND\r\n")
        .await;
    client.quit().await;
}

#[tokio::test]
async fn append_and_prepend_extend_present_values_and_keep_their_flags() {
    let mut client = connect(kv(1024));
    client
        .exchange("append k 0 0 1\r\nx\r\n", "NOT_STORED\r\n")
        .await;
    client
        .exchange("prepend k 0 0 1\r\nx\r\n", "NOT_STORED\r\n")
        .await;
    client
        .exchange("set k 9 0 3\r\nmid\r\n", "STORED\r\n")
        .await;
    client
        .exchange("append k 1 0 4\r\n-end\r\n", "STORED\r\n")
        .await;
    client
        .exchange("prepend k 2 0 6\r\nstart-\r\n", "STORED\r\n")
        .await;
    client
        .exchange("gets k\r\n", "VALUE k 9 13 3\r\nstart-mid-end\r\nEND\r\n")
        .await;
    client.quit().await;
}

#[tokio::test]
async fn delete_removes_present_keys_and_reports_missing_ones() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client.exchange("set k 0 0 1\r\na\r\n", "STORED\r\n").await;
    client.exchange("delete k\r\n", "DELETED\r\n").await;
    client.exchange("delete k\r\n", "NOT_FOUND\r\n").await;
    client.exchange("get k\r\n", "END\r\n").await;
    client.exchange("set k 0 0 1\r\na\r\n", "STORED\r\n").await;
    client.exchange("delete k 0\r\n", "DELETED\r\n").await;
    client.quit().await;
    assert!(kv.is_empty());
}

#[tokio::test]
async fn incr_and_decr_count_in_decimal() {
    let mut client = connect(kv(1024));
    client.exchange("incr n 1\r\n", "NOT_FOUND\r\n").await;
    client.exchange("decr n 1\r\n", "NOT_FOUND\r\n").await;
    client.exchange("set n 3 0 2\r\n10\r\n", "STORED\r\n").await;
    client.exchange("incr n 5\r\n", "15\r\n").await;
    client.exchange("decr n 6\r\n", "9\r\n").await;
    // As memcached: a shorter result is written in place, padded with spaces.
    client
        .exchange("get n\r\n", "VALUE n 3 2\r\n9 \r\nEND\r\n")
        .await;
    client.exchange("incr n 0\r\n", "9\r\n").await;
    client.exchange("incr n 91\r\n", "100\r\n").await;
    client
        .exchange("get n\r\n", "VALUE n 3 3\r\n100\r\nEND\r\n")
        .await;
    client.quit().await;
}

#[tokio::test]
async fn decr_floors_at_zero_and_incr_wraps_at_two_to_the_64() {
    let mut client = connect(kv(1024));
    client.exchange("set n 0 0 1\r\n5\r\n", "STORED\r\n").await;
    client.exchange("decr n 6\r\n", "0\r\n").await;
    client.exchange("decr n 1\r\n", "0\r\n").await;
    client
        .exchange("set n 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n")
        .await;
    client.exchange("incr n 2\r\n", "1\r\n").await;
    client
        .exchange("incr n 18446744073709551615\r\n", "0\r\n")
        .await;
    client.quit().await;
}

#[tokio::test]
async fn incr_of_a_non_numeric_value_or_delta_is_a_client_error() {
    let mut client = connect(kv(1024));
    for value in ["abc", "", "-1", "18446744073709551616", "1 2"] {
        client
            .exchange(
                format!("set n 0 0 {}\r\n{value}\r\n", value.len()),
                "STORED\r\n",
            )
            .await;
        client
            .exchange(
                "incr n 1\r\n",
                "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            )
            .await;
    }
    client.exchange("set n 0 0 1\r\n1\r\n", "STORED\r\n").await;
    for delta in ["x", "-1", "18446744073709551616"] {
        client
            .exchange(
                format!("decr n {delta}\r\n"),
                "CLIENT_ERROR invalid numeric delta argument\r\n",
            )
            .await;
    }
    client
        .exchange("incr n\r\n", "CLIENT_ERROR bad command line format\r\n")
        .await;
    // Memcached may leave a decremented number space-padded: still a number.
    client
        .exchange("set n 0 0 4\r\n12  \r\n", "STORED\r\n")
        .await;
    client.exchange("incr n 1\r\n", "13\r\n").await;
    client.quit().await;
}

#[tokio::test]
async fn expired_items_behave_as_missing() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    // An absolute time in the past (2001) and a negative exptime: stored, and gone at once.
    client
        .exchange("set past 0 1000000000 1\r\na\r\n", "STORED\r\n")
        .await;
    client
        .exchange("set gone 0 -1 1\r\na\r\n", "STORED\r\n")
        .await;
    client.exchange("get past gone\r\n", "END\r\n").await;
    client
        .exchange("replace past 0 0 1\r\nb\r\n", "NOT_STORED\r\n")
        .await;
    client
        .exchange("append past 0 0 1\r\nb\r\n", "NOT_STORED\r\n")
        .await;
    client.exchange("incr past 1\r\n", "NOT_FOUND\r\n").await;
    client.exchange("touch past 0\r\n", "NOT_FOUND\r\n").await;
    client.exchange("delete past\r\n", "NOT_FOUND\r\n").await;
    client
        .exchange("add past 0 0 1\r\nc\r\n", "STORED\r\n")
        .await;
    // A negative exptime also removes what was there.
    client
        .exchange("set past 0 -1 1\r\nd\r\n", "STORED\r\n")
        .await;
    client.exchange("get past\r\n", "END\r\n").await;
    // Relative (30 days at most) and absolute (far future) times keep the item.
    client
        .exchange("set soon 0 2592000 1\r\ns\r\n", "STORED\r\n")
        .await;
    client
        .exchange("set later 0 4000000000 1\r\nl\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            "get soon later\r\n",
            "VALUE soon 0 1\r\ns\r\nVALUE later 0 1\r\nl\r\nEND\r\n",
        )
        .await;
    client.quit().await;
    assert_eq!(kv.len(), 2);
    assert_eq!(kv.get("past"), None);
}

#[tokio::test]
async fn touch_sets_a_new_exptime_on_present_keys_only() {
    let mut client = connect(kv(1024));
    client.exchange("touch k 0\r\n", "NOT_FOUND\r\n").await;
    client
        .exchange("set k 0 1000000000 1\r\na\r\n", "STORED\r\n")
        .await;
    client
        .exchange("set k 0 100 1\r\na\r\n", "STORED\r\n")
        .await;
    client.exchange("touch k 0\r\n", "TOUCHED\r\n").await;
    client
        .exchange("get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n")
        .await;
    client.exchange("touch k -1\r\n", "TOUCHED\r\n").await;
    client.exchange("get k\r\n", "END\r\n").await;
    client
        .exchange(
            "touch k soon\r\n",
            "CLIENT_ERROR invalid exptime argument\r\n",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn flush_all_empties_the_table_now_or_later() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client.exchange("set a 0 0 1\r\na\r\n", "STORED\r\n").await;
    client.exchange("set b 0 0 1\r\nb\r\n", "STORED\r\n").await;
    client.exchange("flush_all\r\n", "OK\r\n").await;
    client.exchange("get a b\r\n", "END\r\n").await;
    client.exchange("set a 0 0 1\r\na\r\n", "STORED\r\n").await;
    // A delay keeps the items until then.
    client.exchange("flush_all 100\r\n", "OK\r\n").await;
    client
        .exchange("get a\r\n", "VALUE a 0 1\r\na\r\nEND\r\n")
        .await;
    client.exchange("flush_all 0 noreply\r\n", "").await;
    client.exchange("get a\r\n", "END\r\n").await;
    client
        .exchange(
            "flush_all soon\r\n",
            "CLIENT_ERROR invalid exptime argument\r\n",
        )
        .await;
    client.quit().await;
    assert!(kv.is_empty());
}

#[tokio::test]
async fn noreply_silences_normal_replies_but_not_errors() {
    let mut client = connect(kv(4));
    client.send("set k 0 0 1 noreply\r\n1\r\n").await;
    client.send("add k 0 0 1 noreply\r\n2\r\n").await;
    client.send("replace k 0 0 1 noreply\r\n3\r\n").await;
    client.send("append k 0 0 1 noreply\r\n4\r\n").await;
    client.send("prepend k 0 0 1 noreply\r\n2\r\n").await;
    client.send("incr k 1 noreply\r\n").await;
    client.send("decr k 2 noreply\r\n").await;
    client.send("touch k 0 noreply\r\n").await;
    client.send("delete nothing noreply\r\n").await;
    client.send("incr nothing 1 noreply\r\n").await;
    client
        .exchange("get k\r\n", "VALUE k 0 3\r\n233\r\nEND\r\n")
        .await;
    client
        .exchange(
            "set k 0 0 5 noreply\r\n12345\r\n",
            "SERVER_ERROR object too large for cache\r\n",
        )
        .await;
    client
        .exchange(
            "set k 0 0 1 noreply\r\nxyz\r\n",
            "CLIENT_ERROR bad data chunk\r\n",
        )
        .await;
    client.exchange("set k 0 0 1 noreply\r\nx\r\n", "").await;
    client
        .exchange(
            "incr k 1 noreply\r\n",
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        )
        .await;
    client.exchange("delete k noreply\r\n", "").await;
    client.exchange("get k\r\n", "END\r\n").await;
    client.quit().await;
}

#[tokio::test]
async fn oversized_values_are_refused_and_the_connection_stays_usable() {
    let kv = kv(8);
    let mut client = connect(kv.clone());
    client
        .exchange("set k 0 0 8\r\n12345678\r\n", "STORED\r\n")
        .await;
    let big = "x".repeat(200_000);
    client
        .exchange(
            format!("set k 0 0 {}\r\n{big}\r\n", big.len()),
            "SERVER_ERROR object too large for cache\r\n",
        )
        .await;
    client
        .exchange("get k\r\n", "VALUE k 0 8\r\n12345678\r\nEND\r\n")
        .await;
    // Growing past the limit is refused too.
    client
        .exchange(
            "append k 0 0 1\r\n9\r\n",
            "SERVER_ERROR object too large for cache\r\n",
        )
        .await;
    client
        .exchange("get k\r\n", "VALUE k 0 8\r\n12345678\r\nEND\r\n")
        .await;
    client.quit().await;
    assert_eq!(kv.get("k"), Some(b"12345678".to_vec()));
}

#[tokio::test]
async fn a_data_block_not_ending_in_crlf_is_a_bad_data_chunk() {
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client
        .exchange(
            "set k 0 0 3\r\nabcde\r\n",
            "CLIENT_ERROR bad data chunk\r\n",
        )
        .await;
    client.exchange("get k\r\n", "END\r\n").await;
    client
        .exchange(
            "set k 0 0 3\r\nabc\rx\r\n",
            "CLIENT_ERROR bad data chunk\r\n",
        )
        .await;
    // A bare "\n" after the data is refused without swallowing the next command.
    client
        .exchange("set k 0 0 3\r\nabc\n", "CLIENT_ERROR bad data chunk\r\n")
        .await;
    client.exchange("version\r\n", VERSION).await;
    client.quit().await;
    assert!(kv.is_empty());
}

#[tokio::test]
async fn unknown_commands_and_empty_lines_are_errors() {
    let mut client = connect(kv(1024));
    client.exchange("hello\r\n", "ERROR\r\n").await;
    client.exchange("GET k\r\n", "ERROR\r\n").await;
    client.exchange("\r\n", "ERROR\r\n").await;
    client.exchange("get\r\n", "ERROR\r\n").await;
    client.exchange(b"\xff\xfe\r\n", "ERROR\r\n").await;
    client.quit().await;
}

#[tokio::test]
async fn malformed_arguments_are_client_errors() {
    let mut client = connect(kv(1024));
    let bad = "CLIENT_ERROR bad command line format\r\n";
    for line in [
        "set k\r\n",
        "set k 0 0\r\n",
        "set k 0 0 x\r\n",
        "set k 0 0 -1\r\n",
        "set k 0 0 2147483646\r\n",
        "cas k 0 0\r\n",
        "delete a b c\r\n",
        "touch k\r\n",
        "decr\r\n",
    ] {
        client.exchange(line, bad).await;
    }
    client.exchange("delete\r\n", "ERROR\r\n").await;
    client
        .exchange(
            "delete k 5\r\n",
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        )
        .await;
    // As in memcached 1.6, arguments after version and quit are ignored.
    client.exchange("version now\r\n", VERSION).await;
    // Keys: at most 250 bytes without spaces; any other bytes are fine, as in memcached.
    let long = "k".repeat(251);
    client.exchange(format!("get {long}\r\n"), bad).await;
    client.exchange(format!("delete {long}\r\n"), bad).await;
    client.exchange("get a\tb\r\n", "END\r\n").await;
    client.exchange(b"get a\x00b\r\n", "END\r\n").await;
    client.exchange(b"get \xff\r\n", "END\r\n").await;
    // A storage line with a bad key (or flags, exptime, cas) but a readable length: its data
    // block is thrown away, never read as commands.
    client
        .exchange(format!("set {long} 0 0 9\r\nflush_all\r\n"), bad)
        .await;
    client.exchange("set k x 0 3\r\nabc\r\n", bad).await;
    client.exchange("set k 0 0 3 junk\r\nabc\r\n", bad).await;
    client.exchange("cas k 0 0 3 x\r\nabc\r\n", bad).await;
    client
        .exchange("set k 4294967296 0 3\r\nabc\r\n", bad)
        .await;
    client.exchange("get k\r\n", "END\r\n").await;
    let key = "k".repeat(250);
    client
        .exchange(format!("set {key} 0 0 1\r\nv\r\n"), "STORED\r\n")
        .await;
    client
        .exchange("set clé 0 0 1\r\nv\r\n", "STORED\r\n")
        .await;
    client
        .exchange(b"set \xff\x01\x7f 0 0 1\r\nb\r\n", "STORED\r\n")
        .await;
    client
        .exchange(
            b"get \xff\x01\x7f\r\n",
            b"VALUE \xff\x01\x7f 0 1\r\nb\r\nEND\r\n",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn an_overlong_line_is_refused_and_closes_the_connection() {
    let mut client = connect(kv(1024));
    // 2048 bytes before the terminator is still a line.
    let longest = format!("get {}", "k ".repeat(1022));
    assert_eq!(longest.len(), 2048);
    client.exchange(format!("{longest}\r\n"), "END\r\n").await;
    client
        .exchange("x".repeat(5000), "CLIENT_ERROR line too long\r\n")
        .await;
    client.expect_closed().await;

    // Other commands stop at 2048 bytes, as in memcached...
    let mut client = connect(kv(1024));
    let long_delete = format!("delete {}", "k".repeat(2042));
    client
        .exchange(
            format!("{long_delete}\r\n"),
            "CLIENT_ERROR line too long\r\n",
        )
        .await;
    client.expect_closed().await;

    // ...while a multi-get may go on, up to its own cap.
    let mut client = connect(kv(1024));
    client.exchange(format!("{longest} \r\n"), "END\r\n").await;
    let keys = text::MAX_GET_LINE_BYTES / 2 + 1;
    client
        .exchange(
            format!("get {}\r\n", "k ".repeat(keys)),
            "CLIENT_ERROR line too long\r\n",
        )
        .await;
    client.expect_closed().await;
}

#[tokio::test]
async fn command_lines_may_end_with_a_bare_newline() {
    let mut client = connect(kv(1024));
    client.exchange("set k 0 0 1\na\r\n", "STORED\r\n").await;
    client
        .exchange("get k\n", "VALUE k 0 1\r\na\r\nEND\r\n")
        .await;
    client.exchange("version\n", VERSION).await;
    client.quit().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mut client = connect(kv(1024));
    client
        .exchange(
            "set a 0 0 1\r\n1\r\nincr a 1\r\nget a\r\nbogus\r\ndelete a\r\nget a\r\n",
            "STORED\r\n2\r\nVALUE a 0 1\r\n2\r\nEND\r\nERROR\r\nDELETED\r\nEND\r\n",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn version_names_rtwisted_and_its_version() {
    let mut client = connect(kv(1024));
    client.exchange("version\r\n", VERSION).await;
    client.quit().await;
}

#[tokio::test]
async fn stats_count_items_bytes_and_commands() {
    let mut client = connect(kv(1024));
    client
        .exchange("set a 0 0 3\r\nabc\r\n", "STORED\r\n")
        .await;
    client.exchange("set b 0 0 2\r\nde\r\n", "STORED\r\n").await;
    client
        .exchange("add b 0 0 1\r\nx\r\n", "NOT_STORED\r\n")
        .await;
    client
        .exchange("set gone 0 -1 1\r\nx\r\n", "STORED\r\n")
        .await;
    client
        .exchange("get a nope\r\n", "VALUE a 0 3\r\nabc\r\nEND\r\n")
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
    timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn serve_returns_when_the_shutdown_is_cancelled() {
    let mut client = connect(kv(1024));
    client.exchange("version\r\n", VERSION).await;
    client.send("set k 0 0 10\r\nabc").await;
    client.shutdown.cancel();
    let Client { server, .. } = client;
    timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
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
    let kv = kv(1024);
    let mut client = connect(kv.clone());
    client
        .exchange("set text 7 0 5\r\nhello\r\n", "STORED\r\n")
        .await;
    client
        .exchange(b"set bin 0 4000000000 3\r\n\x00\xff\x80\r\n", "STORED\r\n")
        .await;
    client.exchange("set n 0 0 2\r\n41\r\n", "STORED\r\n").await;
    client.exchange("incr n 1\r\n", "42\r\n").await;
    client
        .exchange("set gone 0 -1 1\r\nx\r\n", "STORED\r\n")
        .await;
    client
        .exchange("set past 0 1000000000 1\r\nx\r\n", "STORED\r\n")
        .await;
    client.quit().await;
    kv
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
        .exchange(
            "gets text bin n\r\n",
            b"VALUE text 7 5 1\r\nhello\r\nVALUE bin 0 3 2\r\n\x00\xff\x80\r\nVALUE n 0 2 4\r\n42\r\nEND\r\n",
        )
        .await;
    client
        .exchange("cas n 0 0 1 4\r\n0\r\n", "STORED\r\n")
        .await;
    client
        .exchange("gets n\r\n", "VALUE n 0 1 5\r\n0\r\nEND\r\n")
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
        client
            .exchange(format!("set {key} 0 0 600000\r\n{big}\r\n"), "STORED\r\n")
            .await;
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

#[tokio::test]
async fn meta_commands_answer_as_memcached_does() {
    let mut client = connect(kv(1024));
    client.exchange("ms k 2 T0 F5\r\nhi\r\n", "HD\r\n").await;
    client
        .exchange("mg k v f s k\r\n", "VA 2 f5 s2 kk\r\nhi\r\n")
        .await;
    client.exchange("mg k\r\n", "HD\r\n").await;
    client.exchange("mg nope v\r\n", "EN\r\n").await;
    // q silences a miss; mn marks the end of a pipeline.
    client.exchange("mg nope v q\r\nmn\r\n", "MN\r\n").await;
    client.exchange("ms k 1 MA\r\n!\r\n", "HD\r\n").await;
    client
        .exchange("mg k v O42\r\n", "VA 3 O42\r\nhi!\r\n")
        .await;
    client.exchange("ms k 1 ME\r\nx\r\n", "NS\r\n").await;
    client.exchange("ms k 1 C999\r\nx\r\n", "EX\r\n").await;
    client.exchange("md k q\r\nmd k\r\n", "NF\r\n").await;
    client.exchange("ma n\r\n", "NF\r\n").await;
    client.exchange("ma n N0 J10 v\r\n", "VA 2\r\n10\r\n").await;
    client.exchange("ma n MD D3 v\r\n", "VA 1\r\n7\r\n").await;
    // Keys may be sent as base64 (b), so any bytes can be a key.
    client.exchange("ms /w== 1 b\r\nz\r\n", "HD\r\n").await;
    client
        .exchange(b"get \xff\r\n", b"VALUE \xff 0 1\r\nz\r\nEND\r\n")
        .await;
    client
        .exchange("mg /w== b k v\r\n", "VA 1 k/w== b\r\nz\r\n")
        .await;
    client
        .exchange("mg k zz\r\n", "CLIENT_ERROR invalid flag\r\n")
        .await;
    client.exchange("mg\r\n", "ERROR\r\n").await;
    client.quit().await;
}
