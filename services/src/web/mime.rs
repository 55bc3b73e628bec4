//! Content types by file extension: the common types of the web, as Twisted's
//! `loadMimeTypes` and nginx's `mime.types` give them. Anything else is
//! `application/octet-stream` (Twisted says `text/html`; a browser must never render an
//! unknown upload as a page).

/// The type of files whose extension is not known.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// The content type for a file name.
pub fn content_type(name: &str) -> &'static str {
    let Some((_, extension)) = name.rsplit_once('.') else {
        return DEFAULT_TYPE;
    };
    let mut lower = [0u8; 8];
    if extension.len() > lower.len() {
        return DEFAULT_TYPE;
    }
    for (slot, byte) in lower.iter_mut().zip(extension.bytes()) {
        *slot = byte.to_ascii_lowercase();
    }
    match &lower[..extension.len()] {
        b"html" | b"htm" => "text/html",
        b"css" => "text/css",
        b"js" | b"mjs" => "text/javascript",
        b"json" | b"map" => "application/json",
        b"txt" | b"text" | b"log" | b"conf" | b"ini" | b"md" | b"rst" | b"py" | b"rs" | b"c"
        | b"h" | b"sh" | b"tac" => "text/plain",
        b"csv" => "text/csv",
        b"xml" => "application/xml",
        b"xhtml" => "application/xhtml+xml",
        b"svg" | b"svgz" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"avif" => "image/avif",
        b"ico" => "image/x-icon",
        b"bmp" => "image/bmp",
        b"tif" | b"tiff" => "image/tiff",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        b"otf" => "font/otf",
        b"mp3" => "audio/mpeg",
        b"ogg" | b"oga" => "audio/ogg",
        b"wav" => "audio/wav",
        b"flac" => "audio/flac",
        b"mp4" | b"m4v" => "video/mp4",
        b"webm" => "video/webm",
        b"ogv" => "video/ogg",
        b"mov" => "video/quicktime",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"bz2" => "application/x-bzip2",
        b"xz" => "application/x-xz",
        b"zst" => "application/zstd",
        b"tar" => "application/x-tar",
        b"wasm" => "application/wasm",
        b"rss" => "application/rss+xml",
        b"atom" => "application/atom+xml",
        b"epub" => "application/epub+zip",
        b"doc" => "application/msword",
        b"docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"xls" => "application/vnd.ms-excel",
        b"xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"ppt" => "application/vnd.ms-powerpoint",
        b"pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        b"odt" => "application/vnd.oasis.opendocument.text",
        b"deb" => "application/vnd.debian.binary-package",
        _ => DEFAULT_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_types_case_blind() {
        assert_eq!(content_type("index.html"), "text/html");
        assert_eq!(content_type("LOGO.PNG"), "image/png");
        assert_eq!(content_type("archive.tar.gz"), "application/gzip");
        assert_eq!(content_type("README"), DEFAULT_TYPE);
        assert_eq!(content_type("x.unknownextension"), DEFAULT_TYPE);
    }
}
