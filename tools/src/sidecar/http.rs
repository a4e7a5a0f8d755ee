//! The admin endpoints' HTTP/1.x: one request per connection, served on a thread of its own.
//!
//! Enough for `curl`, Prometheus and the tests: the request line is read, headers and any body
//! are ignored (commands carry their argument in the path). The relay's admin endpoint uses it
//! too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Largest request head read; anything longer is answered 400.
const MAX_REQUEST: usize = 8 * 1024;

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path without the query string.
    pub(crate) path: String,
}

/// A response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status line text, e.g. `200 OK`.
    pub(crate) status: &'static str,
    /// Content type.
    pub(crate) content_type: &'static str,
    /// Body.
    pub(crate) body: String,
}

impl Response {
    /// 200 with a body.
    pub(crate) fn ok(content_type: &'static str, body: String) -> Self {
        Self {
            status: "200 OK",
            content_type,
            body,
        }
    }

    /// A plain-text error or hint.
    pub(crate) fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Serves `listener` until the process exits, answering each request with `handler`.
pub(crate) fn serve(listener: TcpListener, handler: impl Fn(&Request) -> Response) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = respond(stream, &handler) {
                    tracing::debug!(error = %e, "admin request failed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "admin accept failed"),
        }
    }
}

fn respond(mut stream: TcpStream, handler: &impl Fn(&Request) -> Response) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let response = match read_request(&mut stream)? {
        Some(request) => handler(&request),
        None => Response::text("400 Bad Request", "bad request\n"),
    };
    write!(
        stream,
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        response.status,
        response.content_type,
        response.body.len(),
        response.body
    )
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut request_line = head.split("\r\n").next().unwrap_or_default().split(' ');
    let (Some(method), Some(target)) = (request_line.next(), request_line.next()) else {
        return Ok(None);
    };
    Ok(Some(Request {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or_default().to_owned(),
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
