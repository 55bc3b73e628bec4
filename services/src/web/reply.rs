//! Small responses: errors, redirects, text.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::http::Body;

/// A short text answer with `status`.
pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    response
}

/// `status` with its reason phrase as the body (`404 Not Found`).
pub fn status(status: StatusCode) -> Response<Body> {
    let body = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(Body::full(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
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
