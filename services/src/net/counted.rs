//! A stream that counts the bytes that cross it, into a service's live counters.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rtwisted_core::context::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Stream;

/// Wraps a connection's stream; every byte read adds to each of `read`, every byte written to
/// each of `written` (say, the connection's own counter and its service's total). The
/// counters are relaxed atomics: a couple of adds per read or write call.
pub struct Counted {
    inner: Box<dyn Stream>,
    read: [Counter; 2],
    written: [Counter; 2],
}

impl Counted {
    /// `inner`, counting into `read` and `written`.
    pub fn new(inner: Box<dyn Stream>, read: [Counter; 2], written: [Counter; 2]) -> Self {
        Counted {
            inner,
            read,
            written,
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = buf.filled().len().saturating_sub(before) as u64;
            for counter in &self.read {
                counter.add(read);
            }
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            for counter in &self.written {
                counter.add(*written as u64);
            }
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &polled {
            for counter in &self.written {
                counter.add(*written as u64);
            }
        }
        polled
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
