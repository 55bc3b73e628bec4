//! Whole sessions, each on its own new table, that only check what goes over the wire.

use super::*;

/// The sessions: a `# title` line starts one, on a new connection to a new table for values
/// of up to 1024 bytes; its lines until the next title are a transcript for [`Client::play`].
const SESSIONS: &str = r"
# get of several keys answers the hits in order
set a 1 0 1\r\nA\r\n => STORED\r\n
set c 3 0 1\r\nC\r\n => STORED\r\n
get c b a\r\n => VALUE c 3 1\r\nC\r\nVALUE a 1 1\r\nA\r\nEND\r\n

# gets shows cas uniques and cas stores only with the current one
set k 0 0 1\r\na\r\n => STORED\r\n
set other 0 0 1\r\nx\r\n => STORED\r\n
gets k other\r\n => VALUE k 0 1 1\r\na\r\nVALUE other 0 1 2\r\nx\r\nEND\r\n
cas k 7 0 1 2\r\nb\r\n => EXISTS\r\n
cas k 7 0 1 1\r\nb\r\n => STORED\r\n
gets k\r\n => VALUE k 7 1 3\r\nb\r\nEND\r\n
// The unique just used is stale now.
cas k 0 0 1 1\r\nc\r\n => EXISTS\r\n
cas missing 0 0 1 1\r\nc\r\n => NOT_FOUND\r\n
cas k 0 0 1 3 noreply\r\nd\r\n =>
get k\r\n => VALUE k 0 1\r\nd\r\nEND\r\n

# add stores only missing keys and replace only present ones
replace k 0 0 1\r\na\r\n => NOT_STORED\r\n
add k 0 0 1\r\na\r\n => STORED\r\n
add k 0 0 1\r\nb\r\n => NOT_STORED\r\n
replace k 5 0 1\r\nc\r\n => STORED\r\n
get k\r\n => VALUE k 5 1\r\nc\r\nEND\r\n

# append and prepend extend present values and keep their flags
append k 0 0 1\r\nx\r\n => NOT_STORED\r\n
prepend k 0 0 1\r\nx\r\n => NOT_STORED\r\n
set k 9 0 3\r\nmid\r\n => STORED\r\n
append k 1 0 4\r\n-end\r\n => STORED\r\n
prepend k 2 0 6\r\nstart-\r\n => STORED\r\n
gets k\r\n => VALUE k 9 13 3\r\nstart-mid-end\r\nEND\r\n

# incr and decr count in decimal
incr n 1\r\n => NOT_FOUND\r\n
decr n 1\r\n => NOT_FOUND\r\n
set n 3 0 2\r\n10\r\n => STORED\r\n
incr n 5\r\n => 15\r\n
decr n 6\r\n => 9\r\n
// As memcached: a shorter result is written in place, padded with spaces.
get n\r\n => VALUE n 3 2\r\n9 \r\nEND\r\n
incr n 0\r\n => 9\r\n
incr n 91\r\n => 100\r\n
get n\r\n => VALUE n 3 3\r\n100\r\nEND\r\n

# decr floors at zero and incr wraps at two to the 64
set n 0 0 1\r\n5\r\n => STORED\r\n
decr n 6\r\n => 0\r\n
decr n 1\r\n => 0\r\n
set n 0 0 20\r\n18446744073709551615\r\n => STORED\r\n
incr n 2\r\n => 1\r\n
incr n 18446744073709551615\r\n => 0\r\n

# touch sets a new exptime on present keys only
touch k 0\r\n => NOT_FOUND\r\n
set k 0 1000000000 1\r\na\r\n => STORED\r\n
set k 0 100 1\r\na\r\n => STORED\r\n
touch k 0\r\n => TOUCHED\r\n
get k\r\n => VALUE k 0 1\r\na\r\nEND\r\n
touch k -1\r\n => TOUCHED\r\n
get k\r\n => END\r\n
touch k soon\r\n => CLIENT_ERROR invalid exptime argument\r\n

# unknown commands and empty lines are errors
hello\r\n => ERROR\r\n
GET k\r\n => ERROR\r\n
\r\n => ERROR\r\n
get\r\n => ERROR\r\n
\xff\xfe\r\n => ERROR\r\n

# command lines may end with a bare newline
set k 0 0 1\na\r\n => STORED\r\n
get k\n => VALUE k 0 1\r\na\r\nEND\r\n
version\n => VERSION 1.6.18\r\n

# pipelined commands are answered in order
set a 0 0 1\r\n1\r\nincr a 1\r\nget a\r\nbogus\r\ndelete a\r\nget a\r\n => STORED\r\n2\r\nVALUE a 0 1\r\n2\r\nEND\r\nERROR\r\nDELETED\r\nEND\r\n

# version names rtwisted and its version
version\r\n => VERSION 1.6.18\r\n

# meta commands answer as memcached does
ms k 2 T0 F5\r\nhi\r\n => HD\r\n
mg k v f s k\r\n => VA 2 f5 s2 kk\r\nhi\r\n
mg k\r\n => HD\r\n
mg nope v\r\n => EN\r\n
// q silences a miss; mn marks the end of a pipeline.
mg nope v q\r\nmn\r\n => MN\r\n
ms k 1 MA\r\n!\r\n => HD\r\n
mg k v O42\r\n => VA 3 O42\r\nhi!\r\n
ms k 1 ME\r\nx\r\n => NS\r\n
ms k 1 C999\r\nx\r\n => EX\r\n
md k q\r\nmd k\r\n => NF\r\n
ma n\r\n => NF\r\n
ma n N0 J10 v\r\n => VA 2\r\n10\r\n
ma n MD D3 v\r\n => VA 1\r\n7\r\n
// Keys may be sent as base64 (b), so any bytes can be a key.
ms /w== 1 b\r\nz\r\n => HD\r\n
get \xff\r\n => VALUE \xff 0 1\r\nz\r\nEND\r\n
mg /w== b k v\r\n => VA 1 k/w== b\r\nz\r\n
mg k zz\r\n => CLIENT_ERROR invalid flag\r\n
mg\r\n => ERROR\r\n
";

#[tokio::test]
async fn every_session_is_answered_byte_for_byte() {
    let sessions: Vec<&str> = SESSIONS.split("\n# ").skip(1).collect();
    assert_eq!(sessions.len(), 12);
    for session in sessions {
        let (title, transcript) = session.split_once('\n').unwrap();
        eprintln!("session: {title}");
        played(1024, transcript).await;
    }
}
