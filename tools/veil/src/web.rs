//! `veil web --listen ADDR`: serves the browser participant's page (issue 17), and nothing
//! else. The page is static and built into this binary: `index.html` and `app.js` always
//! (`include_str!`), the wasm-bindgen output (`pkg/veil_web_js.js`, `pkg/veil_web_js_bg.wasm`)
//! when `veil` is built with the `web-page` feature and `VEIL_WEB_PKG` naming the directory
//! `tools/web/js/build-page` wrote (docs/ARCHITECTURE.md says why). Without it `veil web`
//! refuses to start and says how to build the page.
//!
//! The meeting link rides in the URL fragment, which browsers never send: this server learns
//! which page was loaded, never the board, meeting, invite or user.
//!
//! HTTP/1.1, one request per connection, GET and HEAD only (405 otherwise), the paths of the
//! page (404 otherwise). Every answer carries a strict Content-Security-Policy (this origin's
//! script and wasm only; connections to this origin, WebSocket boards and HTTPS relays),
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store`. The request head is at most [`MAX_HEAD`] bytes and must arrive
//! within [`READ_DEADLINE`]; the answer must leave within [`WRITE_DEADLINE`]; at most
//! [`MAX_CONNECTIONS`] are served at once (503 beyond), at most [`MAX_PER_CLIENT`] of them from
//! one client address (429 beyond).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

/// The request head must arrive within this long of the accept.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);
/// The answer (the wasm is the largest, about a megabyte) must leave within this long.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// Largest request head; a body is never read (GET and HEAD have none).
pub const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections served at once from one client address (an IPv4 address, or an IPv6 /64, which
/// one host can fill with addresses of its own). A page load opens about six, so several
/// browsers behind one NAT still load together, and one client holding slow connections keeps
/// at most this many of the [`MAX_CONNECTIONS`] from everyone else.
pub const MAX_PER_CLIENT: usize = 16;

/// The page's Content-Security-Policy: scripts and wasm from this origin only (no inline
/// script, no eval beyond compiling wasm), sockets to this origin (the wasm fetch, the test
/// report), to WebSocket boards and to relays over WebTransport (an `https:` URL), which the
/// link names so the page cannot list them ahead. No frames, forms, plugins or base rewrites.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    connect-src 'self' ws: wss: https:; style-src 'self'; img-src 'self'; media-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Flags of `veil web`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Examples:
  # build the page into veil once (needs wasm-bindgen-cli 0.2.130 and the wasm32 target)
  tools/web/js/build-page
  target/release/veil web --listen 127.0.0.1:8080
  # the host's sidecar hands out links to it: --web-url http://127.0.0.1:8080/ (see veil sidecar --help)
  # behind TLS (browsers need a secure context off loopback): a reverse proxy, or a CDN")]
pub struct WebArgs {
    /// Where to serve the page (HTTP). Loopback, or behind a TLS reverse proxy: browsers give
    /// WebCrypto and WebTransport only to secure contexts (https://, or loopback).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// For tools/web/js/browser-test only: answer GET /log?TEXT and /result?TEXT with 204 and
    /// print `veil web: log TEXT` / `veil web: result TEXT` (decoded) on stdout.
    #[arg(long, hide = true)]
    pub test_report: bool,
}

/// Why `veil web` cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// This binary was built without the page's wasm.
    #[error(
        "this veil was built without the page's wasm: run tools/web/js/build-page (it builds \
         the wasm with wasm-bindgen-cli 0.2.130 and then veil with the page: VEIL_WEB_PKG=DIR \
         cargo build --release -p veil --features web-page)"
    )]
    NoPage,
    /// The listener could not be bound.
    #[error("--listen {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        error: io::Error,
    },
}

/// The page's files.
#[derive(Debug, Clone, Copy)]
pub struct Assets {
    /// `index.html`.
    pub index: &'static str,
    /// `app.js`.
    pub app: &'static str,
    /// `media.js` (camera, WebCodecs, the relay's datagrams).
    pub media: &'static str,
    /// `style.css`.
    pub style: &'static str,
    /// wasm-bindgen's `veil_web_js.js` and `veil_web_js_bg.wasm`, when built in.
    pub pkg: Option<(&'static str, &'static [u8])>,
}

impl Assets {
    /// What this binary was built with.
    pub const fn built_in() -> Self {
        Self {
            index: include_str!("../../web/js/www/index.html"),
            app: include_str!("../../web/js/www/app.js"),
            media: include_str!("../../web/js/www/media.js"),
            style: include_str!("../../web/js/www/style.css"),
            pkg: built_in_pkg(),
        }
    }

    /// The file at `path` and its content type.
    fn get(&self, path: &str) -> Option<(&'static str, &'static [u8])> {
        let (js, wasm) = self.pkg?;
        Some(match path {
            "/" | "/index.html" => ("text/html; charset=utf-8", self.index.as_bytes()),
            "/app.js" => ("text/javascript; charset=utf-8", self.app.as_bytes()),
            "/media.js" => ("text/javascript; charset=utf-8", self.media.as_bytes()),
            "/style.css" => ("text/css; charset=utf-8", self.style.as_bytes()),
            "/pkg/veil_web_js.js" => ("text/javascript; charset=utf-8", js.as_bytes()),
            "/pkg/veil_web_js_bg.wasm" => ("application/wasm", wasm),
            _ => return None,
        })
    }
}

#[cfg(feature = "web-page")]
const fn built_in_pkg() -> Option<(&'static str, &'static [u8])> {
    Some((
        include_str!(concat!(env!("VEIL_WEB_PKG"), "/veil_web_js.js")),
        include_bytes!(concat!(env!("VEIL_WEB_PKG"), "/veil_web_js_bg.wasm")),
    ))
}

#[cfg(not(feature = "web-page"))]
const fn built_in_pkg() -> Option<(&'static str, &'static [u8])> {
    None
}

/// A bound page server; [`PageServer::run`] serves until the process ends.
#[derive(Debug)]
pub struct PageServer {
    listener: TcpListener,
    assets: Assets,
    test_report: bool,
}

impl PageServer {
    /// Binds `addr` to serve `assets` (refused without the wasm-bindgen output).
    pub fn bind(addr: SocketAddr, assets: Assets, test_report: bool) -> Result<Self, WebError> {
        if assets.pkg.is_none() {
            return Err(WebError::NoPage);
        }
        let listener = TcpListener::bind(addr).map_err(|error| WebError::Bind { addr, error })?;
        Ok(Self {
            listener,
            assets,
            test_report,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves each connection on a thread of its own, at most [`MAX_CONNECTIONS`] at once and
    /// [`MAX_PER_CLIENT`] from one client address.
    pub fn run(self) {
        let occupancy = Arc::new(Mutex::new(Occupancy::default()));
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else {
                // Out of descriptors, most likely: do not spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            let accepted = Instant::now();
            let Ok(peer) = stream.peer_addr() else {
                // Gone already.
                continue;
            };
            let place = match Place::take(&occupancy, client_key(peer.ip())) {
                Ok(place) => place,
                Err(status) => {
                    let _ = stream.set_nonblocking(true);
                    let _ = (&stream).write_all(&head(status, "text/plain", 0));
                    continue;
                }
            };
            let (assets, report) = (self.assets, self.test_report);
            // A thread that cannot be spawned drops the connection unanswered, and its place
            // with it.
            let _ = thread::Builder::new()
                .name("veil-web".into())
                .spawn(move || {
                    serve(stream, accepted, &assets, report);
                    drop(place);
                });
        }
    }
}

/// The connections being served: in all, and per client address ([`client_key`]). An entry
/// exists only while its count is above zero, so the map holds at most [`MAX_CONNECTIONS`].
#[derive(Debug, Default)]
struct Occupancy {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A served connection's place in the [`Occupancy`], given back when dropped.
#[derive(Debug)]
struct Place {
    occupancy: Arc<Mutex<Occupancy>>,
    client: IpAddr,
}

impl Place {
    /// A place for a connection from `client`, or the status to refuse it with: 503 when the
    /// server is full, 429 when `client` holds [`MAX_PER_CLIENT`] already.
    fn take(occupancy: &Arc<Mutex<Occupancy>>, client: IpAddr) -> Result<Self, &'static str> {
        let mut o = occupancy.lock().unwrap_or_else(PoisonError::into_inner);
        if o.total >= MAX_CONNECTIONS {
            return Err("503 Service Unavailable");
        }
        let held = o.per_client.get(&client).copied().unwrap_or(0);
        if held >= MAX_PER_CLIENT {
            return Err("429 Too Many Requests");
        }
        o.total += 1;
        o.per_client.insert(client, held + 1);
        Ok(Self {
            occupancy: Arc::clone(occupancy),
            client,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut o = self
            .occupancy
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        o.total = o.total.saturating_sub(1);
        if let Some(held) = o.per_client.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                o.per_client.remove(&self.client);
            }
        }
    }
}

/// The address a client is bounded by: an IPv4 address (also written as IPv4-mapped IPv6), or
/// the /64 of an IPv6 address, since one host or home commonly holds a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Runs `veil web` until the process is stopped.
pub fn run(args: &WebArgs) -> Result<(), WebError> {
    let server = PageServer::bind(args.listen, Assets::built_in(), args.test_report)?;
    let addr = server.local_addr().map_err(|error| WebError::Bind {
        addr: args.listen,
        error,
    })?;
    println!("veil web: page http://{addr}/");
    let _ = io::stdout().flush();
    server.run();
    Ok(())
}

/// A status line and the headers every answer carries.
fn head(status: &str, content_type: &str, length: usize) -> Vec<u8> {
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\n{allow}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The request line of a head that arrived within the deadline, or `None` (nothing to
/// answer: the client went away, was too slow, or sent too much).
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Option<Result<String, ()>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let line = buf[..end].split(|b| *b == b'\n').next().unwrap_or_default();
            return Some(String::from_utf8(line.to_vec()).map_err(|_| ()));
        }
        if buf.len() >= MAX_HEAD {
            return Some(Err(()));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return None;
        }
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Decodes `%XX` escapes (and nothing else) for the test report; invalid UTF-8 is replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What to answer `request_line`: status, content type and body (the body is dropped for HEAD).
fn answer(
    request_line: &str,
    assets: &Assets,
    report: bool,
) -> (&'static str, &'static str, &'static [u8]) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut parts = request_line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", TEXT, b"bad request\n");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return ("400 Bad Request", TEXT, b"bad request\n");
    }
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, b"GET or HEAD only\n");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if report && method == "GET" && (path == "/log" || path == "/result") {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "veil web: {} {}", &path[1..], percent_decode(query));
        let _ = stdout.flush();
        return ("204 No Content", TEXT, b"");
    }
    match assets.get(path) {
        Some((content_type, body)) => ("200 OK", content_type, body),
        None => ("404 Not Found", TEXT, b"not found\n"),
    }
}

fn serve(mut stream: TcpStream, accepted: Instant, assets: &Assets, report: bool) {
    let Some(line) = read_head(&mut stream, accepted + READ_DEADLINE) else {
        return;
    };
    let (status, content_type, body) = match &line {
        Ok(line) => answer(line, assets, report),
        Err(()) => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            &b"bad request\n"[..],
        ),
    };
    let is_head = line.as_deref().is_ok_and(|l| l.starts_with("HEAD "));
    let mut out = head(status, content_type, body.len());
    if !is_head && !status.starts_with("204") {
        out.extend_from_slice(body);
    }
    let _ = veil_admin::write_by(&mut stream, &out, Instant::now() + WRITE_DEADLINE);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FAKE: Assets = Assets {
        index: "<!doctype html>",
        app: "import x",
        media: "export y",
        style: "body{}",
        pkg: Some(("export default", b"\0asm")),
    };

    /// One client gets [`MAX_PER_CLIENT`] places; another still gets one; the server as a
    /// whole [`MAX_CONNECTIONS`]; a place given back is free again.
    #[test]
    fn places_are_bounded_per_client_and_in_all() {
        let occupancy = Arc::new(Mutex::new(Occupancy::default()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held: Vec<Place> = (0..MAX_PER_CLIENT)
            .map(|_| Place::take(&occupancy, a).unwrap())
            .collect();
        assert_eq!(
            Place::take(&occupancy, a).unwrap_err(),
            "429 Too Many Requests"
        );
        // Other clients fill the server; then even a new client is refused.
        let mut other = 0u8;
        while held.len() < MAX_CONNECTIONS {
            let ip = IpAddr::from([198, 51, 100, other]);
            if let Ok(place) = Place::take(&occupancy, ip) {
                held.push(place);
            } else {
                other += 1;
            }
        }
        let newcomer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            Place::take(&occupancy, newcomer).unwrap_err(),
            "503 Service Unavailable"
        );
        held.truncate(MAX_CONNECTIONS - 1);
        assert!(Place::take(&occupancy, newcomer).is_ok());
        drop(held);
        let o = occupancy.lock().unwrap();
        assert_eq!((o.total, o.per_client.len()), (0, 0));
    }

    #[test]
    fn an_ipv6_client_is_bounded_by_its_slash_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(one), client_key(two));
        assert_ne!(client_key(one), client_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn requests_map_to_assets_or_refusals() {
        assert_eq!(answer("GET / HTTP/1.1", &FAKE, false).0, "200 OK");
        let wasm = answer("GET /pkg/veil_web_js_bg.wasm?v=1 HTTP/1.1", &FAKE, false);
        assert_eq!((wasm.1, wasm.2), ("application/wasm", &b"\0asm"[..]));
        assert_eq!(answer("GET /x HTTP/1.1", &FAKE, false).0, "404 Not Found");
        assert_eq!(
            answer("GET /log?x HTTP/1.1", &FAKE, false).0,
            "404 Not Found"
        );
        assert_eq!(
            answer("GET /log?x HTTP/1.1", &FAKE, true).0,
            "204 No Content"
        );
        assert_eq!(
            answer("POST / HTTP/1.1", &FAKE, false).0,
            "405 Method Not Allowed"
        );
        for bad in ["GET /", "GET  / HTTP/1.1", "GET x HTTP/1.1", "GET / SPDY/3"] {
            assert_eq!(answer(bad, &FAKE, false).0, "400 Bad Request", "{bad}");
        }
        assert_eq!(percent_decode("PASS%20keyed%202%zz%"), "PASS keyed 2%zz%");
    }
}
