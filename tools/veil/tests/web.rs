//! `veil web` (issue 17): the page server answers exactly the page's files, with the right
//! content types and a strict set of security headers, refuses every other path and method,
//! and bounds a slow or oversized request. The server is driven in process with stand-in
//! wasm-bindgen output (the real one needs wasm tooling: tools/web/js/build-page); the binary
//! is checked for what it does as built: without the page it refuses to start and says how to
//! build it, with the page (`--features web-page`) it serves the real wasm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use veil_cli::web::{Assets, CSP, PageServer, READ_DEADLINE};

const WASM: &[u8] = b"\0asm\x01\0\0\0";

fn server() -> SocketAddr {
    let assets = Assets {
        pkg: Some(("export default function init() {}", WASM)),
        ..Assets::built_in()
    };
    let server = PageServer::bind("127.0.0.1:0".parse().unwrap(), assets, false).unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || server.run());
    addr
}

/// Sends `request` as is; the status code, the headers (lowercased names) and the body.
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let code = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_ascii_lowercase(), v.to_owned())
        })
        .collect();
    (code, headers, bytes[end + 4..].to_vec())
}

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every answer, a refusal too, carries the security headers.
fn secure(headers: &[(String, String)]) {
    assert_eq!(header(headers, "content-security-policy"), Some(CSP));
    assert_eq!(header(headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(headers, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(headers, "cache-control"), Some("no-store"));
}

#[test]
fn the_page_is_served_with_its_types_and_security_headers_and_nothing_else_is() {
    let addr = server();
    let built = Assets::built_in();
    let cases: [(&str, &str, &[u8]); 7] = [
        ("/", "text/html; charset=utf-8", built.index.as_bytes()),
        (
            "/index.html",
            "text/html; charset=utf-8",
            built.index.as_bytes(),
        ),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            built.app.as_bytes(),
        ),
        (
            "/media.js",
            "text/javascript; charset=utf-8",
            built.media.as_bytes(),
        ),
        (
            "/style.css",
            "text/css; charset=utf-8",
            built.style.as_bytes(),
        ),
        (
            "/pkg/veil_web_js.js",
            "text/javascript; charset=utf-8",
            b"export default function init() {}",
        ),
        ("/pkg/veil_web_js_bg.wasm", "application/wasm", WASM),
    ];
    for (path, content_type, body) in cases {
        let (code, headers, got) = request(addr, "GET", path);
        assert_eq!(code, 200, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(got, body, "{path}");
        secure(&headers);
        // HEAD: the same head, no body.
        let (code, headers, got) = request(addr, "HEAD", path);
        assert_eq!(code, 200);
        assert_eq!(
            header(&headers, "content-length"),
            Some(body.len().to_string().as_str())
        );
        assert!(got.is_empty(), "{path}: a body after HEAD");
    }
    // The CSP allows no script but this origin's, and no connection but this origin and
    // WebSocket boards.
    assert!(CSP.contains("script-src 'self' 'wasm-unsafe-eval';"));
    assert!(CSP.contains("connect-src 'self' ws: wss: https:;"));
    assert!(CSP.starts_with("default-src 'none';"));
    // The index links only this origin's files.
    assert!(!built.index.contains("://"), "{}", built.index);

    for path in [
        "/nope",
        "/pkg/",
        "/../Cargo.toml",
        "/log?x",
        "/result?PASS",
        "/index.html/",
    ] {
        let (code, headers, _) = request(addr, "GET", path);
        assert_eq!(code, 404, "{path}");
        secure(&headers);
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (code, headers, _) = request(addr, method, "/");
        assert_eq!(code, 405, "{method}");
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
        secure(&headers);
    }
    let (code, _, _) = raw(addr, b"GET index.html HTTP/1.1\r\n\r\n");
    assert_eq!(code, 400);
    // An oversized head is refused, not read on.
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(16 * 1024));
    assert_eq!(raw(addr, big.as_bytes()).0, 400);
}

#[test]
fn a_slow_client_is_closed_at_the_deadline_and_others_are_served_meanwhile() {
    let addr = server();
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET / HTT").unwrap();
    assert_eq!(request(addr, "GET", "/app.js").0, 200);
    slow.set_read_timeout(Some(READ_DEADLINE * 3)).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(rest.is_empty(), "nothing answered to half a request");
    assert!(
        took >= READ_DEADLINE && took < READ_DEADLINE * 2,
        "closed after {took:?}"
    );
}

/// A connection to `addr` from the loopback address `from` (127.0.0.0/8 is all loopback on
/// Linux, so a second client address needs no setup).
fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// The status code of the answer to `GET /` on `stream`. A refusal comes unasked, at the
/// accept: the request is sent only if nothing came within 200 ms, so the server never closes
/// a refused connection with the request unread (which would reset it, maybe before the
/// refusal was read).
fn get_status(mut stream: TcpStream, addr: SocketAddr) -> u16 {
    let mut bytes = vec![0u8; 64];
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let unasked = stream.read(&mut bytes).unwrap_or(0);
    bytes.truncate(unasked);
    if unasked == 0 {
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.read_to_end(&mut bytes);
    std::str::from_utf8(&bytes[9..12]).unwrap().parse().unwrap()
}

/// One client holding slow connections takes at most `MAX_PER_CLIENT` places: its next
/// connection gets 429 at once, while a client from another address is served; once its slow
/// connections are gone it is served again.
#[test]
fn one_client_holding_slow_connections_does_not_keep_the_page_from_others() {
    use veil_cli::web::MAX_PER_CLIENT;
    let addr = server();
    // Slow connections: connected, the request never sent.
    let slow: Vec<TcpStream> = (0..MAX_PER_CLIENT)
        .map(|_| connect_from([127, 0, 0, 1], addr))
        .collect();
    // Each was accepted and holds its place once the server answered a later connection, so
    // wait until the next one from the same client is refused.
    let started = Instant::now();
    let refused = loop {
        let status = get_status(connect_from([127, 0, 0, 1], addr), addr);
        if status == 429 || started.elapsed() > Duration::from_secs(3) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(refused, 429);
    assert!(
        started.elapsed() < READ_DEADLINE,
        "the slow connections must still hold their places"
    );
    assert_eq!(get_status(connect_from([127, 0, 0, 2], addr), addr), 200);
    drop(slow);
    let started = Instant::now();
    loop {
        let status = get_status(connect_from([127, 0, 0, 1], addr), addr);
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "places not given back: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_serves_the_built_in_page_or_says_how_to_build_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["web", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if cfg!(feature = "web-page") {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("veil web: page http://")
            .unwrap_or_else(|| panic!("{line:?}"));
        let addr: SocketAddr = url.trim().trim_end_matches('/').parse().unwrap();
        let (code, headers, body) = request(addr, "GET", "/pkg/veil_web_js_bg.wasm");
        let (index, _, _) = request(addr, "GET", "/");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!((code, index), (200, 200));
        assert_eq!(header(&headers, "content-type"), Some("application/wasm"));
        assert!(body.starts_with(b"\0asm"));
        secure(&headers);
    } else {
        let output = child.wait_with_output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("built without the page") && stderr.contains("tools/web/js/build-page"),
            "{stderr}"
        );
    }
}
