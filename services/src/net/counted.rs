//! A stream that counts the bytes that cross it, into a service's live counters.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use rtwisted_core::context::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Stream;

/// Where a [`Counted`] stream adds the bytes it moves.
pub trait Tally {
    /// Adds `bytes`.
    fn add(&self, bytes: u64);
}

/// Each counter of the array gets every byte (say, a connection's own and its service's).
impl<const N: usize> Tally for [Counter; N] {
    fn add(&self, bytes: u64) {
        for counter in self {
            counter.add(bytes);
        }
    }
}

/// A plain atomic, added to with relaxed ordering.
impl Tally for &AtomicU64 {
    fn add(&self, bytes: u64) {
        self.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Wraps a connection's stream; every byte read adds to `read`, every byte written to
/// `written` (by default, each of two counters: say, the connection's own and its
/// service's total). The counters are relaxed atomics: a couple of adds per read or write
/// call.
pub struct Counted<T: Tally = [Counter; 2]> {
    inner: Box<dyn Stream>,
    read: T,
    written: T,
}

impl<T: Tally> Counted<T> {
    /// `inner`, counting into `read` and `written`.
    pub fn new(inner: Box<dyn Stream>, read: T, written: T) -> Self {
        Counted {
            inner,
            read,
            written,
        }
    }

    /// Adds what a finished write wrote to `written`, and passes the poll on.
    fn tally_written(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(written)) = &polled {
            self.written.add(*written as u64);
        }
        polled
    }
}

impl<T: Tally + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = buf.filled().len().saturating_sub(before) as u64;
            self.read.add(read);
        }
        polled
    }
}

impl<T: Tally + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.tally_written(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.tally_written(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
