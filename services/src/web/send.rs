//! Sending one file: its validators (`ETag`, `Last-Modified`) and the conditional requests
//! they answer (`304`), byte ranges (`206`, `multipart/byteranges`, `416`, `If-Range`), and
//! the body, read in chunks as the client takes it.
//!
//! The reads are plain reads on the worker thread, as nginx does without `aio`: from the page
//! cache they take microseconds, and a thread hop per chunk would cost more than the read.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::files::Ask;
use super::range::{self, Ranges};
use super::reply;
use crate::http::{Body, PolledFrame};

/// How much of a file is read at once while it streams.
pub const CHUNK: usize = 64 * 1024;
/// Up to this size a file (or a range of one) is read at once and sent as one buffer.
pub const WHOLE: usize = 128 * 1024;

/// A file's validators: a strong `ETag` of its size and modification time, and its
/// `Last-Modified` time (whole seconds).
fn validators(meta: &std::fs::Metadata) -> (String, SystemTime) {
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        since.as_secs(),
        since.subsec_nanos(),
        meta.len()
    );
    (etag, UNIX_EPOCH + Duration::from_secs(since.as_secs()))
}

/// Whether an `If-None-Match` list matches `etag` (weak comparison, `*` matches any).
fn none_match(header: &HeaderValue, etag: &str) -> bool {
    let Ok(list) = header.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Answers `ask` with `file`: `200`, `206`, `304` or `416`.
pub fn send_file(
    ask: &Ask<'_>,
    file: File,
    meta: &std::fs::Metadata,
    content_type: &'static str,
) -> Response<Body> {
    let size = meta.len();
    let (etag, modified) = validators(meta);
    let last_modified = httpdate::fmt_http_date(modified);
    let headers = ask.headers;
    // RFC 9110, section 13.2.2: If-None-Match first; If-Modified-Since only without it.
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(value) => none_match(value, &etag),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| httpdate::parse_http_date(text).ok())
            .is_some_and(|since| modified <= since),
    };
    let mut response = Response::new(Body::empty());
    {
        let out = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            out.insert(header::ETAG, value);
        }
        if let Ok(value) = HeaderValue::from_str(&last_modified) {
            out.insert(header::LAST_MODIFIED, value);
        }
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    // If-Range: ranges only while the representation is the one the client has.
    let range_applies = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(value) if value.starts_with('"') => value == etag,
        Some(value) => value == last_modified,
    };
    let ranges = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if range_applies => range::parse(range, size),
        _ => Ranges::Whole,
    };
    let head = ask.method == Method::HEAD;
    let (status, pieces, length, kind) = match ranges {
        Ranges::Whole => (
            StatusCode::OK,
            VecDeque::from([Piece::File {
                offset: 0,
                len: size,
            }]),
            size,
            HeaderValue::from_static(content_type),
        ),
        Ranges::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let out = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                out.insert(header::CONTENT_RANGE, value);
            }
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return response;
        }
        Ranges::Parts(parts) if parts.len() == 1 => {
            let (start, end) = parts[0];
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            (
                StatusCode::PARTIAL_CONTENT,
                VecDeque::from([Piece::File {
                    offset: start,
                    len: end - start + 1,
                }]),
                end - start + 1,
                HeaderValue::from_static(content_type),
            )
        }
        Ranges::Parts(parts) => {
            let boundary = format!("{:016x}", etag_hash(&etag));
            let mut pieces = VecDeque::new();
            let mut length = 0u64;
            for (start, end) in parts {
                let part = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
                );
                length += part.len() as u64 + (end - start + 1);
                pieces.push_back(Piece::Bytes(Bytes::from(part)));
                pieces.push_back(Piece::File {
                    offset: start,
                    len: end - start + 1,
                });
            }
            let close = format!("\r\n--{boundary}--\r\n");
            length += close.len() as u64;
            pieces.push_back(Piece::Bytes(Bytes::from(close)));
            let kind = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
                .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges"));
            (StatusCode::PARTIAL_CONTENT, pieces, length, kind)
        }
    };
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, kind);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if head || length == 0 {
        return response;
    }
    // A small whole file goes out as one buffer, read now; anything else streams.
    if let (1, Some(&Piece::File { offset, len })) = (pieces.len(), pieces.front())
        && len as usize <= WHOLE
    {
        return match read_exact_at(&file, offset, len as usize) {
            Ok(bytes) => {
                *response.body_mut() = Body::full(bytes);
                response
            }
            Err(error) => {
                tracing::debug!("cannot read {}: {error}", ask.full_path);
                reply::status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
    }
    *response.body_mut() = Body::stream(FileBody {
        file,
        pieces,
        left: length,
    });
    response
}

fn etag_hash(etag: &str) -> u64 {
    // FNV-1a: the boundary only has to be unlikely to occur in the file.
    etag.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads `len` bytes at `offset` (into memory that is not zeroed first).
fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    let mut reader = file;
    if offset != 0 {
        reader.seek(SeekFrom::Start(offset))?;
    }
    let mut buffer = Vec::with_capacity(len);
    reader.take(len as u64).read_to_end(&mut buffer)?;
    if buffer.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while it was sent",
        ));
    }
    Ok(Bytes::from(buffer))
}

enum Piece {
    Bytes(Bytes),
    File { offset: u64, len: u64 },
}

/// A file body read chunk by chunk as hyper asks for it, with multipart headers between
/// ranges. A file that shrinks under it ends the body early (the client sees a short
/// response), as with any server.
struct FileBody {
    file: File,
    pieces: VecDeque<Piece>,
    left: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> PolledFrame {
        let this = self.get_mut();
        let Some(piece) = this.pieces.front_mut() else {
            return Poll::Ready(None);
        };
        let chunk = match piece {
            Piece::Bytes(bytes) => {
                let bytes = std::mem::take(bytes);
                this.pieces.pop_front();
                bytes
            }
            Piece::File { offset, len } => {
                let want = (*len).min(CHUNK as u64) as usize;
                let bytes = match read_exact_at(&this.file, *offset, want) {
                    Ok(bytes) => bytes,
                    Err(error) => return Poll::Ready(Some(Err(error))),
                };
                *offset += want as u64;
                *len -= want as u64;
                if *len == 0 {
                    this.pieces.pop_front();
                }
                bytes
            }
        };
        this.left = this.left.saturating_sub(chunk.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}
