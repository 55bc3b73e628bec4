//! The classic small services of RFCs 863-868, over streams and datagrams: Discard, Chargen,
//! Quote of the Day, Daytime and Time. (Echo, RFC 862, is in its own module.)

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{DatagramProtocol, ProtocolFactory};
use crate::calendar;
use crate::net::Connection;

/// Writes `bytes`, then closes the write side (the pattern of the one-shot services).
async fn say_and_close(connection: Connection, bytes: &[u8]) -> io::Result<()> {
    let (mut stream, shutdown) = connection.into_stream();
    tokio::select! {
        result = async {
            stream.write_all(bytes).await?;
            stream.shutdown().await
        } => result,
        () = shutdown.cancelled() => Ok(()),
    }
}

/// RFC 863 Discard: reads and throws away everything.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discard {}

#[typetag::serde(name = Discard::TAG)]
#[async_trait]
impl ProtocolFactory for Discard {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let (mut stream, shutdown) = connection.into_stream();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = tokio::select! {
                read = stream.read(&mut buffer) => read?,
                () = shutdown.cancelled() => return Ok(()),
            };
            if read == 0 {
                return Ok(());
            }
        }
    }
}

#[typetag::serde(name = Discard::TAG)]
#[async_trait]
impl DatagramProtocol for Discard {
    async fn datagram(&self, _datagram: &[u8], _peer: SocketAddr) -> Option<Vec<u8>> {
        None
    }
}

rtwisted_core::register_type!(factory Discard = "rtwisted.Discard", version 1);

/// The printable ASCII characters Chargen cycles through.
const PRINTABLE: &[u8] = b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
/// Characters per Chargen line, before CR LF.
const LINE: usize = 72;

/// Line `n` of the RFC 864 pattern: 72 characters starting one further along each line.
pub fn chargen_line(n: usize) -> Vec<u8> {
    let mut line = Vec::with_capacity(LINE + 2);
    for i in 0..LINE {
        line.push(PRINTABLE[(n + i) % PRINTABLE.len()]);
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// RFC 864 Character Generator: sends the rotating pattern until the peer closes; a datagram
/// gets up to 512 characters of it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chargen {}

#[typetag::serde(name = Chargen::TAG)]
#[async_trait]
impl ProtocolFactory for Chargen {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        let (stream, shutdown) = connection.into_stream();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut block = Vec::with_capacity(PRINTABLE.len() * (LINE + 2));
        for n in 0..PRINTABLE.len() {
            block.extend_from_slice(&chargen_line(n));
        }
        let mut sink = [0u8; 1024];
        loop {
            tokio::select! {
                written = writer.write_all(&block) => written?,
                // Whatever the peer sends is ignored; its close ends the stream.
                read = reader.read(&mut sink) => if read? == 0 { return Ok(()) },
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

#[typetag::serde(name = Chargen::TAG)]
#[async_trait]
impl DatagramProtocol for Chargen {
    async fn datagram(&self, datagram: &[u8], _peer: SocketAddr) -> Option<Vec<u8>> {
        // "a random number between 0 and 512": derived from the request, which is random enough.
        let length = datagram.iter().fold(datagram.len(), |a, b| {
            a.wrapping_mul(31).wrapping_add(usize::from(*b))
        }) % 513;
        let mut reply = Vec::with_capacity(length + LINE);
        let mut n = 0;
        while reply.len() < length {
            reply.extend_from_slice(&chargen_line(n));
            n += 1;
        }
        reply.truncate(length);
        Some(reply)
    }
}

rtwisted_core::register_type!(factory Chargen = "rtwisted.Chargen", version 1);

/// RFC 865 Quote of the Day: sends one quote (taking turns through the list) and closes. The
/// quotes are configuration, persisted in the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Qotd {
    /// The quotes.
    pub quotes: Vec<String>,
    #[serde(skip)]
    next: Arc<AtomicUsize>,
}

impl Qotd {
    /// A service taking turns through `quotes`.
    pub fn new(quotes: Vec<String>) -> Self {
        Qotd {
            quotes,
            next: Arc::default(),
        }
    }

    fn quote(&self) -> Vec<u8> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let quote = match self.quotes.len() {
            0 => "An apple a day keeps the doctor away.",
            n => self.quotes[index % n].as_str(),
        };
        // RFC 865 asks for at most 512 characters.
        let mut text: Vec<u8> = quote.bytes().take(510).collect();
        text.extend_from_slice(b"\r\n");
        text
    }
}

#[typetag::serde(name = Qotd::TAG)]
#[async_trait]
impl ProtocolFactory for Qotd {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        say_and_close(connection, &self.quote()).await
    }
}

#[typetag::serde(name = Qotd::TAG)]
#[async_trait]
impl DatagramProtocol for Qotd {
    async fn datagram(&self, _datagram: &[u8], _peer: SocketAddr) -> Option<Vec<u8>> {
        Some(self.quote())
    }
}

rtwisted_core::register_type!(factory Qotd = "rtwisted.Qotd", version 1);

/// RFC 867 Daytime: sends the time in words (`Tue Nov 24 10:00:00 2026`, UTC, as Twisted's
/// `asctime`) and closes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daytime {}

/// `seconds` since 1970 in `asctime` form, UTC.
pub fn asctime(seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = calendar::civil_from_days(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {year}",
        DAYS[(days % 7) as usize],
        calendar::MONTHS[(month - 1) as usize],
        day,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[typetag::serde(name = Daytime::TAG)]
#[async_trait]
impl ProtocolFactory for Daytime {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        say_and_close(connection, format!("{}\r\n", asctime(now())).as_bytes()).await
    }
}

#[typetag::serde(name = Daytime::TAG)]
#[async_trait]
impl DatagramProtocol for Daytime {
    async fn datagram(&self, _datagram: &[u8], _peer: SocketAddr) -> Option<Vec<u8>> {
        Some(format!("{}\r\n", asctime(now())).into_bytes())
    }
}

rtwisted_core::register_type!(factory Daytime = "rtwisted.Daytime", version 1);

/// Seconds from 1900-01-01 to 1970-01-01.
pub const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

/// RFC 868 Time: sends the seconds since 1900 as a 32-bit big-endian number and closes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {}

/// The RFC 868 form of `seconds` since 1970 (it wraps in 2036, as the RFC's clients expect).
pub fn rfc868(seconds: u64) -> [u8; 4] {
    ((seconds + SECONDS_1900_TO_1970) as u32).to_be_bytes()
}

#[typetag::serde(name = Time::TAG)]
#[async_trait]
impl ProtocolFactory for Time {
    async fn serve(&self, connection: Connection) -> io::Result<()> {
        say_and_close(connection, &rfc868(now())).await
    }
}

#[typetag::serde(name = Time::TAG)]
#[async_trait]
impl DatagramProtocol for Time {
    async fn datagram(&self, _datagram: &[u8], _peer: SocketAddr) -> Option<Vec<u8>> {
        Some(rfc868(now()).to_vec())
    }
}

rtwisted_core::register_type!(factory Time = "rtwisted.Time", version 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_matches_known_dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_795_480_829), "Tue Nov 24 00:40:29 2026");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn rfc868_counts_from_1900() {
        assert_eq!(rfc868(0), 2_208_988_800u32.to_be_bytes());
    }

    #[test]
    fn chargen_lines_rotate_through_printable_ascii() {
        let first = chargen_line(0);
        assert_eq!(&first[..4], b" !\"#");
        assert_eq!(first.len(), 74);
        assert!(first.ends_with(b"\r\n"));
        assert_eq!(chargen_line(1)[0], b'!');
        assert_eq!(chargen_line(PRINTABLE.len()), first);
    }
}
