//! Directory listings in the form of Twisted's `DirectoryLister`: a table of file name,
//! size, content type and encoding, folders first, each group sorted by name.

use std::fmt::Write as _;
use std::os::fd::OwnedFd;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{SFlag, fstatat};

use super::{mime, path};

/// The most entries a listing shows; a folder with more says how many it left out, so one
/// request cannot make an unbounded page.
pub const MAX_ENTRIES: usize = 10_000;

/// Twisted's `formatFileSize`: `512B`, `3K`, `7M`, `2G`.
pub fn format_size(size: u64) -> String {
    const K: u64 = 1024;
    match size {
        s if s < K => format!("{s}B"),
        s if s < K * K => format!("{}K", s / K),
        s if s < K * K * K => format!("{}M", s / (K * K)),
        s => format!("{}G", s / (K * K * K)),
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the listing of `dir`, shown as `shown_path` (the request path, ending in `/`).
pub fn render(dir: OwnedFd, shown_path: &str, follow_symlinks: bool) -> Result<String, Errno> {
    let stat_fd = dir.try_clone().map_err(|_| Errno::EMFILE)?;
    let mut dir = Dir::from_fd(dir)?;
    let mut folders = Vec::new();
    let mut files = Vec::new();
    let mut skipped = 0usize;
    let flags = if follow_symlinks {
        AtFlags::empty()
    } else {
        AtFlags::AT_SYMLINK_NOFOLLOW
    };
    for entry in dir.iter() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            skipped += 1;
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        if folders.len() + files.len() >= MAX_ENTRIES {
            skipped += 1;
            continue;
        }
        let Ok(stat) = fstatat(&stat_fd, name, flags) else {
            continue;
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            folders.push(name.to_owned());
        } else {
            files.push((name.to_owned(), u64::try_from(stat.st_size).unwrap_or(0)));
        }
    }
    folders.sort_unstable();
    files.sort_unstable();
    let title = format!(
        "Directory listing for {}",
        escape(&path::decode(shown_path).unwrap_or_else(|| shown_path.to_owned()))
    );
    let mut html = String::with_capacity(1024 + 160 * (folders.len() + files.len()));
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html>\n<head>\n<title>{title}</title>\n<style>\nth, .even td, .odd td {{ padding-right: 0.5em; }}\n.even-dir {{ background-color: #efe0ef }}\n.even {{ background-color: #eee }}\n.odd-dir {{background-color: #f0d0ef }}\n.odd {{ background-color: #dedede }}\n.icon {{ text-align: center }}\n.listing {{ margin-left: auto; margin-right: auto; width: 50%; padding: 0.1em; }}\nbody {{ border: 0; padding: 0; margin: 0; background-color: #efefef; }}\nh1 {{padding: 0.1em; background-color: #777; color: white; border-bottom: thin white dashed;}}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n<table>\n<thead>\n<tr>\n<th>Filename</th>\n<th>Size</th>\n<th>Content type</th>\n<th>Content encoding</th>\n</tr>\n</thead>\n<tbody>\n"
    );
    let mut row = 0usize;
    for name in &folders {
        let class = if row.is_multiple_of(2) {
            "odd-dir"
        } else {
            "even-dir"
        };
        row += 1;
        let _ = write!(
            html,
            "<tr class=\"{class}\">\n<td><a href=\"{}/\">{}/</a></td>\n<td></td>\n<td>[Directory]</td>\n<td></td>\n</tr>\n",
            path::encode(name),
            escape(name)
        );
    }
    for (name, size) in &files {
        let class = if row.is_multiple_of(2) { "odd" } else { "even" };
        row += 1;
        let _ = write!(
            html,
            "<tr class=\"{class}\">\n<td><a href=\"{}\">{}</a></td>\n<td>{}</td>\n<td>[{}]</td>\n<td></td>\n</tr>\n",
            path::encode(name),
            escape(name),
            format_size(*size),
            mime::content_type(name)
        );
    }
    html.push_str("</tbody>\n</table>\n");
    if skipped > 0 {
        let _ = writeln!(html, "<p>{skipped} more entries not shown.</p>");
    }
    html.push_str("</body>\n</html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_twisted_writes_them() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(format_size(1024), "1K");
        assert_eq!(format_size(100 * 1024), "100K");
        assert_eq!(format_size(3 << 20), "3M");
        assert_eq!(format_size(5 << 30), "5G");
    }

    #[test]
    fn names_cannot_inject_markup() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"
        );
    }
}
