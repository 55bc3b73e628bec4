//! Small responses: errors, redirects, text.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::Body;

/// A `status` answer of `content_type`, with `Content-Length` set to the length of `body`;
/// the body itself is sent unless `head_only` (the answer to a `HEAD` request).
pub fn sized(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
    head_only: bool,
) -> Response<Body> {
    let body = body.into();
    let length = body.len();
    let mut response = Response::new(if head_only {
        Body::empty()
    } else {
        Body::full(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The content type of the text answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// A short text answer with `status`.
pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    sized(status, TEXT, text, false)
}

/// `status` with its reason phrase as the body (`404 Not Found`).
pub fn status(status: StatusCode) -> Response<Body> {
    let body = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    sized(status, TEXT, body, false)
}

/// `405 Method Not Allowed`, saying which methods are.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A redirect to `location`.
pub fn redirect(code: StatusCode, location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}
