//! [`Body`]: the response body type of everything served over [`serve`](super::serve).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// A response body: nothing, one buffer, or a stream (a file read chunk by chunk, a proxied
/// response). The first two are not allocated behind a pointer, so small answers stay cheap.
pub struct Body(Kind);

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream(UnsyncBoxBody<Bytes, io::Error>),
}

impl Body {
    /// No body (for `HEAD`, `304`, redirects).
    pub fn empty() -> Self {
        Body(Kind::Empty)
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body(Kind::Full(Some(bytes)))
        }
    }

    /// A streamed body.
    pub fn stream<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Body(Kind::Stream(UnsyncBoxBody::new(
            body.map_err(|error| io::Error::other(error.into())),
        )))
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

/// What a response body's `poll_frame` answers: the next frame, an error, or the end.
pub(crate) type PolledFrame = Poll<Option<Result<Frame<Bytes>, io::Error>>>;

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Kind::Empty => "Body::Empty",
            Kind::Full(_) => "Body::Full",
            Kind::Stream(_) => "Body::Stream",
        })
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> PolledFrame {
        match &mut self.get_mut().0 {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
            Kind::Stream(body) => body.size_hint(),
        }
    }
}
