//! A static folder (Twisted's `static.File`): files with their content type, `HEAD`, byte
//! ranges, `ETag` / `Last-Modified` and the conditional requests they answer, index files,
//! and directory listings.
//!
//! Every request opens the folder and then its file with `openat2(RESOLVE_BENEATH)`, so the
//! kernel itself refuses any way out of the folder: `..` (already refused in the URL) and
//! symbolic links whose target lies outside it (unless `follow_symlinks`). Files are opened
//! non-blocking (a FIFO cannot hang a worker) and anything but a file or folder is not found.
//!
//! Files are sent by `send.rs`, in chunks as the client takes them, never read whole.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::listing;
use super::mime;
use super::path::{self, Refused};
use super::reply;
use super::send::send_file;
use crate::http::Body;

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
                    Ok(html) => reply::sized(
                        StatusCode::OK,
                        "text/html; charset=utf-8",
                        html,
                        ask.method == Method::HEAD,
                    ),
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
