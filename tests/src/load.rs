//! Load for a daemon that restarts under it (the hot restart tests and benchmark): echo clients
//! that connect anew for every request, and a kv writer whose acknowledged writes can all be
//! looked for afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a client waits for a reply before it counts the request as failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients saw, shared between their threads.
#[derive(Default)]
pub struct Seen {
    /// Echo requests answered with their own bytes.
    pub echoed: AtomicU64,
    /// Connections refused.
    pub refused: AtomicU64,
    /// Echo requests answered wrongly or not at all, and sets answered other than `STORED`.
    pub failed: AtomicU64,
    /// Sets acknowledged with `STORED`: `k0..k(acknowledged-1)`.
    pub acknowledged: AtomicU64,
    /// Sets sent again on a new connection after the old one was cut.
    pub retried: AtomicU64,
    /// The round trip of each echo request, in microseconds.
    pub latencies: Mutex<Vec<u32>>,
}

/// Echo clients and one kv writer, each on a thread of its own, until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `echo_clients` [`echo_client`]s on `echo` and one [`kv_writer`] on `kv`.
    pub fn start(echo: SocketAddr, echo_clients: usize, kv: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let spawn = |run: fn(SocketAddr, &AtomicBool, &Seen), address| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || run(address, &stop, &seen))
        };
        let mut threads: Vec<_> = (0..echo_clients)
            .map(|_| spawn(echo_client, echo))
            .collect();
        threads.push(spawn(kv_writer, kv));
        Load {
            stop,
            seen,
            threads,
        }
    }

    /// What the clients have seen so far.
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Stops the clients and waits for them; returns all they saw.
    pub fn finish(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        self.seen
    }
}

/// Sends 64-byte echo requests to `address`, each on a new connection, until `stop`.
pub fn echo_client(address: SocketAddr, stop: &AtomicBool, seen: &Seen) {
    let mut latencies = Vec::new();
    let message = [b'x'; 64];
    let mut reply = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let Ok(mut stream) = TcpStream::connect(address) else {
            seen.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
        match stream
            .write_all(&message)
            .and_then(|()| stream.read_exact(&mut reply))
        {
            Ok(()) if reply == message => {
                latencies.push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
                seen.echoed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                seen.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    seen.latencies.lock().unwrap().extend(latencies);
}

/// Sends `set kN` in order on one connection until `stop`; a set without its `STORED` is sent
/// again on a new connection (as a client retries), so the acknowledged writes are
/// `k0..k(acknowledged-1)`.
pub fn kv_writer(address: SocketAddr, stop: &AtomicBool, seen: &Seen) {
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut next = 0u64;
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        let reader = match connection.as_mut() {
            Some(reader) => reader,
            None => match TcpStream::connect(address) {
                Ok(stream) => {
                    let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
                    connection.insert(BufReader::new(stream))
                }
                Err(_) => {
                    seen.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
        };
        let value = format!("v{next}");
        let request = format!("set k{next} 0 0 {}\r\n{value}\r\n", value.len());
        line.clear();
        let answered = reader.get_mut().write_all(request.as_bytes()).is_ok()
            && reader.read_line(&mut line).is_ok_and(|read| read > 0);
        if answered && line == "STORED\r\n" {
            next += 1;
            seen.acknowledged.store(next, Ordering::Relaxed);
        } else {
            if answered {
                seen.failed.fetch_add(1, Ordering::Relaxed);
            }
            seen.retried.fetch_add(1, Ordering::Relaxed);
            connection = None;
        }
    }
}

/// The numbers of the keys `{prefix}0`..`{prefix}(written-1)` the kv at `address` does not hold.
pub fn missing_keys(address: SocketAddr, prefix: &str, written: u64) -> Vec<u64> {
    let mut reader = BufReader::new(TcpStream::connect(address).unwrap());
    let mut missing = Vec::new();
    let mut line = String::new();
    for n in 0..written {
        write!(reader.get_mut(), "get {prefix}{n}\r\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("VALUE") {
            for _ in 0..2 {
                line.clear();
                reader.read_line(&mut line).unwrap();
            }
        } else {
            missing.push(n);
        }
    }
    missing
}
