//! Commands whose effect on the table is checked too, or whose requests are made at run time.

use super::*;

#[tokio::test]
async fn set_then_get_returns_the_value_with_its_flags() {
    let kv = played(
        1024,
        r"
        set greeting 42 0 5\r\nhello\r\n => STORED\r\n
        get greeting\r\n => VALUE greeting 42 5\r\nhello\r\nEND\r\n
        set greeting 4294967295 0 0\r\n\r\n => STORED\r\n
        get greeting\r\n => VALUE greeting 4294967295 0\r\n\r\nEND\r\n
        get nothing\r\n => END\r\n
        ",
    )
    .await;
    assert_eq!(kv.get("greeting"), Some(Vec::new()));
    assert_eq!(kv.len(), 1);
}

#[tokio::test]
async fn values_may_hold_any_bytes() {
    let kv = played(
        1024,
        r"
        set bin 0 0 6\r\n\r\n\x00\xff \n\r\n => STORED\r\n
        get bin\r\n => VALUE bin 0 6\r\n\r\n\x00\xff \n\r\nEND\r\n
        ",
    )
    .await;
    assert_eq!(kv.get("bin"), Some(b"\r\n\x00\xff \n".to_vec()));
}

#[tokio::test]
async fn delete_removes_present_keys_and_reports_missing_ones() {
    let kv = played(
        1024,
        r"
        set k 0 0 1\r\na\r\n => STORED\r\n
        delete k\r\n => DELETED\r\n
        delete k\r\n => NOT_FOUND\r\n
        get k\r\n => END\r\n
        set k 0 0 1\r\na\r\n => STORED\r\n
        delete k 0\r\n => DELETED\r\n
        ",
    )
    .await;
    assert!(kv.is_empty());
}

#[tokio::test]
async fn incr_of_a_non_numeric_value_or_delta_is_a_client_error() {
    let mut client = connect(kv(1024));
    for value in ["abc", "", "-1", "18446744073709551616", "1 2"] {
        client.exchange(set_request("n", value), "STORED\r\n").await;
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
        .play(
            r"
            incr n\r\n => CLIENT_ERROR bad command line format\r\n
            // Memcached may leave a decremented number space-padded: still a number.
            set n 0 0 4\r\n12  \r\n => STORED\r\n
            incr n 1\r\n => 13\r\n
            ",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn expired_items_behave_as_missing() {
    let kv = played(
        1024,
        r"
        // An absolute time in the past (2001) and a negative exptime: stored, and gone at once.
        set past 0 1000000000 1\r\na\r\n => STORED\r\n
        set gone 0 -1 1\r\na\r\n => STORED\r\n
        get past gone\r\n => END\r\n
        replace past 0 0 1\r\nb\r\n => NOT_STORED\r\n
        append past 0 0 1\r\nb\r\n => NOT_STORED\r\n
        incr past 1\r\n => NOT_FOUND\r\n
        touch past 0\r\n => NOT_FOUND\r\n
        delete past\r\n => NOT_FOUND\r\n
        add past 0 0 1\r\nc\r\n => STORED\r\n
        // A negative exptime also removes what was there.
        set past 0 -1 1\r\nd\r\n => STORED\r\n
        get past\r\n => END\r\n
        // Relative (30 days at most) and absolute (far future) times keep the item.
        set soon 0 2592000 1\r\ns\r\n => STORED\r\n
        set later 0 4000000000 1\r\nl\r\n => STORED\r\n
        get soon later\r\n => VALUE soon 0 1\r\ns\r\nVALUE later 0 1\r\nl\r\nEND\r\n
        ",
    )
    .await;
    assert_eq!(kv.len(), 2);
    assert_eq!(kv.get("past"), None);
}

#[tokio::test]
async fn flush_all_empties_the_table_now_or_later() {
    let kv = played(
        1024,
        r"
        set a 0 0 1\r\na\r\n => STORED\r\n
        set b 0 0 1\r\nb\r\n => STORED\r\n
        flush_all\r\n => OK\r\n
        get a b\r\n => END\r\n
        set a 0 0 1\r\na\r\n => STORED\r\n
        // A delay keeps the items until then.
        flush_all 100\r\n => OK\r\n
        get a\r\n => VALUE a 0 1\r\na\r\nEND\r\n
        flush_all 0 noreply\r\n =>
        get a\r\n => END\r\n
        flush_all soon\r\n => CLIENT_ERROR invalid exptime argument\r\n
        ",
    )
    .await;
    assert!(kv.is_empty());
}

#[tokio::test]
async fn noreply_silences_normal_replies_but_not_errors() {
    played(
        4,
        r"
        set k 0 0 1 noreply\r\n1\r\n =>
        add k 0 0 1 noreply\r\n2\r\n =>
        replace k 0 0 1 noreply\r\n3\r\n =>
        append k 0 0 1 noreply\r\n4\r\n =>
        prepend k 0 0 1 noreply\r\n2\r\n =>
        incr k 1 noreply\r\n =>
        decr k 2 noreply\r\n =>
        touch k 0 noreply\r\n =>
        delete nothing noreply\r\n =>
        incr nothing 1 noreply\r\n =>
        get k\r\n => VALUE k 0 3\r\n233\r\nEND\r\n
        set k 0 0 5 noreply\r\n12345\r\n => SERVER_ERROR object too large for cache\r\n
        set k 0 0 1 noreply\r\nxyz\r\n => CLIENT_ERROR bad data chunk\r\n
        set k 0 0 1 noreply\r\nx\r\n =>
        incr k 1 noreply\r\n => CLIENT_ERROR cannot increment or decrement non-numeric value\r\n
        delete k noreply\r\n =>
        get k\r\n => END\r\n
        ",
    )
    .await;
}

#[tokio::test]
async fn oversized_values_are_refused_and_the_connection_stays_usable() {
    let kv = kv(8);
    let mut client = connect(kv.clone());
    let too_large = "SERVER_ERROR object too large for cache\r\n";
    client
        .exchange(set_request("k", "12345678"), "STORED\r\n")
        .await;
    let big = "x".repeat(200_000);
    client.exchange(set_request("k", &big), too_large).await;
    client
        .play(
            r"
            get k\r\n => VALUE k 0 8\r\n12345678\r\nEND\r\n
            // Growing past the limit is refused too.
            append k 0 0 1\r\n9\r\n => SERVER_ERROR object too large for cache\r\n
            get k\r\n => VALUE k 0 8\r\n12345678\r\nEND\r\n
            ",
        )
        .await;
    client.quit().await;
    assert_eq!(kv.get("k"), Some(b"12345678".to_vec()));
}

#[tokio::test]
async fn a_data_block_not_ending_in_crlf_is_a_bad_data_chunk() {
    let kv = played(
        1024,
        r"
        set k 0 0 3\r\nabcde\r\n => CLIENT_ERROR bad data chunk\r\n
        get k\r\n => END\r\n
        set k 0 0 3\r\nabc\rx\r\n => CLIENT_ERROR bad data chunk\r\n
        // A bare newline after the data is refused without swallowing the next command.
        set k 0 0 3\r\nabc\n => CLIENT_ERROR bad data chunk\r\n
        version\r\n => VERSION 1.6.18\r\n
        ",
    )
    .await;
    assert!(kv.is_empty());
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
    // As in memcached 1.6, arguments after version and quit are ignored.
    client
        .play(
            r"
            delete\r\n => ERROR\r\n
            delete k 5\r\n => CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n
            version now\r\n => VERSION 1.6.18\r\n
            ",
        )
        .await;
    // Keys: at most 250 bytes without spaces; any other bytes are fine, as in memcached.
    let long = "k".repeat(251);
    client.exchange(format!("get {long}\r\n"), bad).await;
    client.exchange(format!("delete {long}\r\n"), bad).await;
    client
        .play(
            r"
            get a\tb\r\n => END\r\n
            get a\x00b\r\n => END\r\n
            get \xff\r\n => END\r\n
            ",
        )
        .await;
    // A storage line with a bad key (or flags, exptime, cas) but a readable length: its data
    // block is thrown away, never read as commands.
    client
        .exchange(format!("set {long} 0 0 9\r\nflush_all\r\n"), bad)
        .await;
    for request in [
        "set k x 0 3\r\nabc\r\n",
        "set k 0 0 3 junk\r\nabc\r\n",
        "cas k 0 0 3 x\r\nabc\r\n",
        "set k 4294967296 0 3\r\nabc\r\n",
    ] {
        client.exchange(request, bad).await;
    }
    client.exchange("get k\r\n", "END\r\n").await;
    let key = "k".repeat(250);
    client.exchange(set_request(&key, "v"), "STORED\r\n").await;
    client
        .play(
            r"
            set clé 0 0 1\r\nv\r\n => STORED\r\n
            set \xff\x01\x7f 0 0 1\r\nb\r\n => STORED\r\n
            get \xff\x01\x7f\r\n => VALUE \xff\x01\x7f 0 1\r\nb\r\nEND\r\n
            ",
        )
        .await;
    client.quit().await;
}

#[tokio::test]
async fn an_overlong_line_is_refused_and_closes_the_connection() {
    let too_long = "CLIENT_ERROR line too long\r\n";
    let mut client = connect(kv(1024));
    // 2048 bytes before the terminator is still a line.
    let longest = format!("get {}", "k ".repeat(1022));
    assert_eq!(longest.len(), 2048);
    client.exchange(format!("{longest}\r\n"), "END\r\n").await;
    client.exchange("x".repeat(5000), too_long).await;
    client.expect_closed().await;

    // Other commands stop at 2048 bytes, as in memcached...
    let mut client = connect(kv(1024));
    let long_delete = format!("delete {}", "k".repeat(2042));
    client
        .exchange(format!("{long_delete}\r\n"), too_long)
        .await;
    client.expect_closed().await;

    // ...while a multi-get may go on, up to its own cap.
    let mut client = connect(kv(1024));
    client.exchange(format!("{longest} \r\n"), "END\r\n").await;
    let keys = text::MAX_GET_LINE_BYTES / 2 + 1;
    client
        .exchange(format!("get {}\r\n", "k ".repeat(keys)), too_long)
        .await;
    client.expect_closed().await;
}
