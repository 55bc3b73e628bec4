//! A static folder (Twisted's `static.File`): files with their content type, `HEAD`, byte
//! ranges, `ETag` / `Last-Modified` and the conditional requests they answer, index files,
//! and directory listings.
//!
//! Every request opens the folder and then its file with `openat2(RESOLVE_BENEATH)`, so the
//! kernel itself refuses any way out of the folder: `..` (already refused in the URL) and
//! symbolic links whose target lies outside it (unless `follow_symlinks`). Files are opened
//! non-blocking (a FIFO cannot hang a worker) and anything but a file or folder is not found.
//!
//! Files are read in chunks of [`CHUNK`] bytes as the client takes them, never whole. The
//! reads are plain `pread`s on the worker thread, as nginx does without `aio`: from the page
//! cache they take microseconds, and a thread hop per chunk would cost more than the read.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::listing;
use super::mime;
use super::path::{self, Refused};
use super::reply;
use crate::http::Body;

/// How much of a file is read at once while it streams.
pub const CHUNK: usize = 64 * 1024;
/// Up to this size a file (or a range of one) is read at once and sent as one buffer.
pub const WHOLE: usize = 128 * 1024;

/// How long an opened root is used before it is opened again, so that a root replaced on
/// disk (a deploy that switches a `current` link) is seen within this time.
const ROOT_REOPEN: Duration = Duration::from_secs(1);

/// A static folder, as configured, and its root while it runs.
#[derive(Debug)]
pub struct Folder {
    /// The folder (or file) served.
    pub root: PathBuf,
    /// List folders without an index.
    pub listing: bool,
    /// Let symbolic links lead outside the root.
    pub follow_symlinks: bool,
    /// Index names, tried in order.
    pub index: Vec<String>,
    opened: Mutex<Option<(Arc<OwnedFd>, Instant)>>,
}

/// What a request asks of a folder: the method, the headers, the path under the mount and
/// the whole request path (for redirects and listings).
pub struct Ask<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The part of the path under the mount point (`/a/b.txt`).
    pub rest: &'a str,
    /// The full request path (`/files/a/b.txt`).
    pub full_path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
}

enum Opened {
    File(File, std::fs::Metadata),
    Dir(OwnedFd),
}

impl Folder {
    /// A folder to serve.
    pub fn new(root: PathBuf, listing: bool, follow_symlinks: bool, index: Vec<String>) -> Self {
        Folder {
            root,
            listing,
            follow_symlinks,
            index,
            opened: Mutex::new(None),
        }
    }

    /// Answers one request.
    pub fn serve(&self, ask: &Ask<'_>) -> Response<Body> {
        if ask.method != Method::GET && ask.method != Method::HEAD {
            return reply::method_not_allowed("GET, HEAD");
        }
        let (segments, trailing_slash) = match path::segments(ask.rest) {
            Ok(parts) => parts,
            Err(Refused::DotSegment | Refused::BadSegment) => {
                return reply::text(StatusCode::BAD_REQUEST, "Bad request path\n");
            }
        };
        let relative = segments.join("/");
        let opened = match self.open(&relative) {
            Ok(opened) => opened,
            Err(status) => return reply::status(status),
        };
        match opened {
            Opened::File(file, meta) => {
                if trailing_slash && !relative.is_empty() {
                    return reply::status(StatusCode::NOT_FOUND);
                }
                let name = segments
                    .last()
                    .map_or_else(|| file_name(&self.root), String::as_str);
                send_file(ask, file, &meta, mime::content_type(name))
            }
            Opened::Dir(dir) => {
                if !trailing_slash {
                    let mut location = format!("{}/", ask.full_path);
                    if let Some(query) = ask.query {
                        location.push('?');
                        location.push_str(query);
                    }
                    return reply::redirect(StatusCode::MOVED_PERMANENTLY, &location);
                }
                for name in &self.index {
                    match self.open_beneath(&dir, &relative, name) {
                        Ok(Opened::File(file, meta)) => {
                            return send_file(ask, file, &meta, mime::content_type(name));
                        }
                        Ok(Opened::Dir(_)) | Err(_) => {}
                    }
                }
                if !self.listing {
                    return reply::status(StatusCode::FORBIDDEN);
                }
                match listing::render(dir, ask.full_path, self.follow_symlinks) {
                    Ok(html) => {
                        let mut response = Response::new(if ask.method == Method::HEAD {
                            Body::empty()
                        } else {
                            Body::full(html.clone())
                        });
                        let headers = response.headers_mut();
                        headers.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/html; charset=utf-8"),
                        );
                        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
                        response
                    }
                    Err(error) => {
                        tracing::debug!("cannot list {}: {error}", ask.full_path);
                        reply::status(status_of(error))
                    }
                }
            }
        }
    }

    /// Opens the root and then `relative` beneath it.
    fn open(&self, relative: &str) -> Result<Opened, StatusCode> {
        if relative.is_empty() {
            return classify(self.open_root()?);
        }
        let root = self.root_fd()?;
        self.open_beneath(&*root, "", relative)
    }

    fn open_root(&self) -> Result<OwnedFd, StatusCode> {
        nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        )
        .map_err(|errno| {
            tracing::warn!("cannot open the web root {}: {errno}", self.root.display());
            status_of(errno)
        })
    }

    /// The root, opened at most [`ROOT_REOPEN`] ago.
    fn root_fd(&self) -> Result<Arc<OwnedFd>, StatusCode> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((fd, at)) = &*opened
            && at.elapsed() < ROOT_REOPEN
        {
            return Ok(Arc::clone(fd));
        }
        let fd = Arc::new(self.open_root()?);
        *opened = Some((Arc::clone(&fd), Instant::now()));
        Ok(fd)
    }

    /// Opens `relative` beneath `dir`, which is the folder `base` under the root.
    fn open_beneath(
        &self,
        dir: &impl AsFd,
        base: &str,
        relative: &str,
    ) -> Result<Opened, StatusCode> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let resolve = if self.follow_symlinks {
            ResolveFlag::RESOLVE_NO_MAGICLINKS
        } else {
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS
        };
        match nix::fcntl::openat2(dir, relative, OpenHow::new().flags(flags).resolve(resolve)) {
            Ok(fd) => classify(fd),
            // No openat2 (Linux before 5.6), or an absolute link, which RESOLVE_BENEATH
            // refuses even when it points inside: resolve it and check where it lands.
            Err(Errno::ENOSYS | Errno::EXDEV) => self.open_checked(&Path::new(base).join(relative)),
            Err(errno) => Err(status_of(errno)),
        }
    }

    /// Resolves `relative` (every link in it) and opens the result only if it lies inside the
    /// root (or anywhere, with `follow_symlinks`). Inside the root, the resolved path is
    /// opened beneath it with no links allowed, so a link swapped in meanwhile cannot lead out.
    fn open_checked(&self, relative: &Path) -> Result<Opened, StatusCode> {
        let root = self
            .root
            .canonicalize()
            .map_err(|_| StatusCode::NOT_FOUND)?;
        let real = root
            .join(relative)
            .canonicalize()
            .map_err(|_| StatusCode::NOT_FOUND)?;
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let Ok(inside) = real.strip_prefix(&root) else {
            if self.follow_symlinks {
                return classify(nix::fcntl::open(&real, flags, Mode::empty()).map_err(status_of)?);
            }
            tracing::debug!(
                "refused {}: a link leads outside {}",
                relative.display(),
                self.root.display()
            );
            return Err(StatusCode::NOT_FOUND);
        };
        let root_fd = nix::fcntl::open(&root, flags, Mode::empty()).map_err(status_of)?;
        if inside.as_os_str().is_empty() {
            return classify(root_fd);
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match nix::fcntl::openat2(&root_fd, inside, how) {
            Ok(fd) => classify(fd),
            // Old kernels: the path was just resolved, with no link left in it.
            Err(Errno::ENOSYS) => classify(
                nix::fcntl::open(&real, flags | OFlag::O_NOFOLLOW, Mode::empty())
                    .map_err(status_of)?,
            ),
            Err(errno) => Err(status_of(errno)),
        }
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("")
}

fn classify(fd: OwnedFd) -> Result<Opened, StatusCode> {
    let file = File::from(fd);
    let meta = file.metadata().map_err(|_| StatusCode::NOT_FOUND)?;
    if meta.is_file() {
        Ok(Opened::File(file, meta))
    } else if meta.is_dir() {
        Ok(Opened::Dir(OwnedFd::from(file)))
    } else {
        // FIFOs, sockets and devices are not content.
        Err(StatusCode::NOT_FOUND)
    }
}

fn status_of(errno: Errno) -> StatusCode {
    match errno {
        Errno::EACCES | Errno::EPERM => StatusCode::FORBIDDEN,
        Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV | Errno::ENAMETOOLONG => {
            StatusCode::NOT_FOUND
        }
        Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

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

fn send_file(
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
        Some(range) if range_applies => super::range::parse(range, size),
        _ => super::range::Ranges::Whole,
    };
    let head = ask.method == Method::HEAD;
    let (status, pieces, length, kind) = match ranges {
        super::range::Ranges::Whole => (
            StatusCode::OK,
            VecDeque::from([Piece::File {
                offset: 0,
                len: size,
            }]),
            size,
            HeaderValue::from_static(content_type),
        ),
        super::range::Ranges::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let out = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                out.insert(header::CONTENT_RANGE, value);
            }
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return response;
        }
        super::range::Ranges::Parts(parts) if parts.len() == 1 => {
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
        super::range::Ranges::Parts(parts) => {
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

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
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
