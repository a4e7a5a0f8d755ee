//! The admin endpoints of `veil sidecar`, `veil board` and `veil relay`: one small HTTP/1.1
//! server (one request per connection), hardened against a web page and a slow client
//! (security review, findings 19.2 and 19.3).
//!
//! Who may ask:
//! - the `Host` must name the address the connection reached (the bound IP and port, or
//!   `localhost` on loopback): a DNS-rebound name is refused, for GETs too;
//! - a browser's cross-site request is refused: an `Origin` other than this endpoint's own,
//!   or a `Sec-Fetch-Site` other than `same-origin`/`none`;
//! - any method but GET needs `Authorization: Bearer TOKEN`, the per-run secret written to a
//!   0600 file (compared in constant time); a server without commands refuses them all;
//! - a non-loopback address needs `--admin-public`, and then every request needs the token.
//!
//! How long: the request (head and body) must arrive within [`READ_DEADLINE`] of the accept,
//! whatever the pace of the bytes, and the answer must leave within [`WRITE_DEADLINE`].
//! [`WORKERS`] threads serve the connections the accept thread queues (at most [`QUEUE`]); a
//! connection beyond that gets 503 at once. A slow client holds one worker for at most
//! [`READ_DEADLINE`].
//!
//! Every refusal gets a status, a short reason, a counter (`veil_admin_refused_total{reason}`,
//! appended to every Prometheus answer) and a log line that names the reason and the peer,
//! never a header.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The content type of Prometheus's text exposition format, which every admin endpoint serves
/// at `/metrics`.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// From the accept to the last byte of the request.
pub const READ_DEADLINE: Duration = Duration::from_secs(2);
/// From the handler's answer to its last byte handed to the kernel.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// Connections served at once.
pub const WORKERS: usize = 4;
/// Accepted connections waiting for a worker; beyond it, 503.
pub const QUEUE: usize = 16;
/// Largest request head.
const MAX_HEAD: usize = 8 * 1024;
/// Most header lines in a request head.
const MAX_HEADERS: usize = 32;
/// Largest request body (commands carry their argument in the path; a body is read and
/// dropped so that closing does not reset the connection before the answer is read).
const MAX_BODY: usize = 1024;

/// The admin flags every server shares, beside its own `--admin ADDR`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AdminAccess {
    /// Allow --admin on an address other than loopback (any client that reaches it can then
    /// try). Every request, GETs too, then needs the token.
    #[arg(long, requires = "admin")]
    pub admin_public: bool,
    /// Where to write the admin token, the per-run secret that requests which change anything
    /// send as `Authorization: Bearer TOKEN`. Mode 0600, replaced at start, removed at a clean
    /// exit. Default: `veil-ROLE-PID.admin-token` in $XDG_RUNTIME_DIR, else the temp dir.
    #[arg(long, value_name = "PATH", requires = "admin")]
    pub admin_token_file: Option<PathBuf>,
}

/// Why an admin server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A non-loopback `--admin` without `--admin-public`.
    #[error(
        "refusing --admin {0}: not a loopback address; add --admin-public to serve beyond this \
         machine (every request then needs the admin token)"
    )]
    NotLoopback(SocketAddr),
    /// The listening socket.
    #[error("--admin {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        error: io::Error,
    },
    /// The token file could not be written.
    #[error("admin token file {}: {error}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// No randomness for the token.
    #[error("admin token: the system random number generator failed")]
    Random,
    /// A thread could not be started.
    #[error("admin threads: {0}")]
    Spawn(io::Error),
}

/// Why a request was refused: the counter's `reason` label and the answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not HTTP/1.x, or ambiguous (a repeated Host, Authorization or Content-Length, a
    /// transfer coding, no Host in HTTP/1.1).
    #[error("malformed request")]
    BadRequest,
    /// A head over 8 KiB or 32 headers, or a body over 1 KiB.
    #[error("request too large")]
    TooLarge,
    /// The request did not arrive within [`READ_DEADLINE`].
    #[error("request not complete in time")]
    Deadline,
    /// The answer could not be handed over within [`WRITE_DEADLINE`].
    #[error("answer not read in time")]
    SlowReader,
    /// Every worker busy and the queue full.
    #[error("too many connections")]
    Busy,
    /// A `Host` other than the address the connection reached (DNS rebinding).
    #[error("Host is not this endpoint's address")]
    BadHost,
    /// A browser's cross-site request (`Origin`, `Sec-Fetch-Site`).
    #[error("cross-site request")]
    CrossSite,
    /// A request that needs the token came without one.
    #[error("admin token required")]
    MissingToken,
    /// A token that is not this run's.
    #[error("wrong admin token")]
    WrongToken,
    /// A method other than GET where the server has no commands.
    #[error("method not allowed")]
    Method,
}

impl Refusal {
    /// Every reason, in counter order.
    pub const ALL: [Self; 10] = [
        Self::BadRequest,
        Self::TooLarge,
        Self::Deadline,
        Self::SlowReader,
        Self::Busy,
        Self::BadHost,
        Self::CrossSite,
        Self::MissingToken,
        Self::WrongToken,
        Self::Method,
    ];

    /// The counter label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::TooLarge => "too_large",
            Self::Deadline => "deadline",
            Self::SlowReader => "slow_reader",
            Self::Busy => "busy",
            Self::BadHost => "bad_host",
            Self::CrossSite => "cross_site",
            Self::MissingToken => "missing_token",
            Self::WrongToken => "wrong_token",
            Self::Method => "method",
        }
    }

    const fn status(self) -> &'static str {
        match self {
            Self::BadRequest => "400 Bad Request",
            Self::TooLarge => "413 Content Too Large",
            Self::Deadline | Self::SlowReader => "408 Request Timeout",
            Self::Busy => "503 Service Unavailable",
            Self::BadHost => "421 Misdirected Request",
            Self::CrossSite => "403 Forbidden",
            Self::MissingToken | Self::WrongToken => "401 Unauthorized",
            Self::Method => "405 Method Not Allowed",
        }
    }

    /// Refusals that only an attacker or a misconfigured client cause: logged at warn.
    const fn is_suspect(self) -> bool {
        matches!(
            self,
            Self::BadHost | Self::CrossSite | Self::MissingToken | Self::WrongToken
        )
    }
}

/// The refusal counters of one admin server.
#[derive(Debug, Default)]
pub struct AdminStats {
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl AdminStats {
    fn count(&self, refusal: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == refusal) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refusals so far for `refusal`.
    pub fn refused(&self, refusal: Refusal) -> u64 {
        Refusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .map_or(0, |i| self.refused[i].load(Ordering::Relaxed))
    }

    /// The counters in Prometheus text (no `# EOF`).
    fn exposition(&self) -> String {
        let mut out = String::from(
            "# HELP veil_admin_refused Admin requests refused, by reason.\n\
             # TYPE veil_admin_refused counter\n",
        );
        for r in Refusal::ALL {
            out.push_str(&format!(
                "veil_admin_refused_total{{reason=\"{}\"}} {}\n",
                r.as_str(),
                self.refused(r)
            ));
        }
        out
    }

    /// Adds the counters to an exposition, before its OpenMetrics `# EOF` if it has one.
    fn append_to(&self, body: &mut String) {
        let eof = body.ends_with("# EOF\n");
        if eof {
            body.truncate(body.len() - "# EOF\n".len());
        }
        body.push_str(&self.exposition());
        if eof {
            body.push_str("# EOF\n");
        }
    }
}

/// A request that passed every check.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string (after `?`, undecoded), if the target had one.
    pub query: Option<String>,
}

/// An answer. Its `Debug` leaves the body out: some carry a secret.
pub struct Response {
    /// Status line text, e.g. `200 OK`.
    pub status: &'static str,
    /// Content type.
    pub content_type: &'static str,
    /// Body: zeroized when the answer is dropped, since some carry a secret (the host's
    /// `POST /invite` answers with an invite).
    pub body: Zeroizing<String>,
    /// A Prometheus exposition: the server appends its refusal counters.
    exposition: bool,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// 200 with a body (a `String`, or a `Zeroizing<String>` built without stray copies).
    pub fn ok(content_type: &'static str, body: impl Into<Zeroizing<String>>) -> Self {
        Self {
            status: "200 OK",
            content_type,
            body: body.into(),
            exposition: false,
        }
    }

    /// 200 with a Prometheus exposition, to which the admin counters are added.
    pub fn prometheus(content_type: &'static str, body: String) -> Self {
        Self {
            exposition: true,
            ..Self::ok(content_type, body)
        }
    }

    /// A plain-text error or hint.
    pub fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Zeroizing::new(body.into()),
            exposition: false,
        }
    }

    fn refusal(refusal: Refusal) -> Self {
        Self::text(refusal.status(), format!("{refusal}\n"))
    }
}

/// What one admin server is.
pub struct AdminConfig<'a> {
    /// `--admin`.
    pub addr: SocketAddr,
    /// `--admin-public`, `--admin-token-file`.
    pub access: &'a AdminAccess,
    /// The program, in thread names and the default token file name: `sidecar`, `board`,
    /// `relay`.
    pub role: &'static str,
    /// Whether any route changes state: then a token is made even on loopback.
    pub has_commands: bool,
}

/// Refuses a non-loopback `addr` without `--admin-public` (before anything else starts).
pub fn check_bind(addr: SocketAddr, access: &AdminAccess) -> Result<(), AdminError> {
    if addr.ip().is_loopback() || access.admin_public {
        Ok(())
    } else {
        Err(AdminError::NotLoopback(addr))
    }
}

/// A running admin server. Its threads serve until the process exits; dropping this
/// removes the token file.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    token_file: Option<PathBuf>,
    stats: Arc<AdminStats>,
}

/// This run's token.
struct Token(Zeroizing<String>);

impl Token {
    /// 32 random bytes, hex, written to a fresh 0600 `path`.
    fn create(path: &Path) -> Result<Self, AdminError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| AdminError::Random)?;
        let token = Self(Zeroizing::new(hex::encode(&bytes[..])));
        let failed = |error| AdminError::TokenFile {
            path: path.to_owned(),
            error,
        };
        // A stale file (or a symlink planted there) is removed, not written through:
        // create_new (O_EXCL) never follows a link, and fails if someone races us to it.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        file.write_all(token.0.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .map_err(failed)?;
        Ok(token)
    }

    fn matches(&self, offered: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(offered).into()
    }
}

/// What the workers share.
struct Shared<H> {
    handler: H,
    token: Option<Token>,
    /// Every request needs the token (`--admin-public`).
    public: bool,
    stats: Arc<AdminStats>,
}

type Pending = (TcpStream, Instant);

impl AdminServer {
    /// Binds `config.addr`, writes the token file if one is needed, and serves `handler` on
    /// [`WORKERS`] threads until the process exits.
    pub fn start<H>(config: &AdminConfig<'_>, handler: H) -> Result<Self, AdminError>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        check_bind(config.addr, config.access)?;
        let bind_error = |error| AdminError::Bind {
            addr: config.addr,
            error,
        };
        let listener = TcpListener::bind(config.addr).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let public = config.access.admin_public;
        let (token, token_file) = if config.has_commands || public {
            let path = config.access.admin_token_file.clone().unwrap_or_else(|| {
                std::env::var_os("XDG_RUNTIME_DIR")
                    .map_or_else(std::env::temp_dir, PathBuf::from)
                    .join(format!(
                        "veil-{}-{}.admin-token",
                        config.role,
                        std::process::id()
                    ))
            });
            (Some(Token::create(&path)?), Some(path))
        } else {
            (None, None)
        };
        let stats = Arc::new(AdminStats::default());
        let shared = Arc::new(Shared {
            handler,
            token,
            public,
            stats: stats.clone(),
        });
        let (queue_tx, queue_rx) = sync_channel::<Pending>(QUEUE);
        let queue_rx = Arc::new(Mutex::new(queue_rx));
        for i in 0..WORKERS {
            let (queue_rx, shared) = (queue_rx.clone(), shared.clone());
            thread::Builder::new()
                .name(format!("{}-admin-{i}", config.role))
                .spawn(move || work(&queue_rx, &shared))
                .map_err(AdminError::Spawn)?;
        }
        let accept_stats = stats.clone();
        thread::Builder::new()
            .name(format!("{}-admin", config.role))
            .spawn(move || {
                for stream in listener.incoming() {
                    let stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            // Out of descriptors, most likely: do not spin.
                            tracing::debug!(error = %e, "admin accept failed");
                            thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    match queue_tx.try_send((stream, Instant::now())) {
                        Ok(()) => {}
                        Err(TrySendError::Full((stream, _))) => {
                            accept_stats.count(Refusal::Busy);
                            tracing::debug!("admin request refused: every worker busy");
                            refuse_at_once(stream, Refusal::Busy);
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            })
            .map_err(AdminError::Spawn)?;
        match &token_file {
            Some(path) => tracing::info!(
                admin = %local_addr,
                token_file = %path.display(),
                "admin endpoint; send `Authorization: Bearer $(cat TOKEN_FILE)`"
            ),
            None => tracing::info!(admin = %local_addr, "admin endpoint"),
        }
        Ok(Self {
            local_addr,
            token_file,
            stats,
        })
    }

    /// The bound address (the port, when `--admin` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the token is, when this server has one.
    pub fn token_file(&self) -> Option<&Path> {
        self.token_file.as_deref()
    }

    /// The refusal counters.
    pub fn stats(&self) -> &AdminStats {
        &self.stats
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(path) = &self.token_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One worker: takes queued connections until the accept thread is gone.
fn work<H: Fn(&Request) -> Response>(queue: &Mutex<Receiver<Pending>>, shared: &Shared<H>) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((stream, accepted)) = next else {
            return;
        };
        serve(stream, accepted, shared);
    }
}

/// Writes a refusal without waiting: the socket's buffer takes it or it is lost.
fn refuse_at_once(mut stream: TcpStream, refusal: Refusal) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&encode(&Response::refusal(refusal)));
}

/// How reading a request ended, short of a request.
enum Failure {
    /// Answered with a status and counted.
    Refused(Refusal),
    /// The client went away (or closed before sending anything): nothing to answer.
    Gone,
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

fn serve<H: Fn(&Request) -> Response>(
    mut stream: TcpStream,
    accepted: Instant,
    shared: &Shared<H>,
) {
    let peer = stream.peer_addr().ok();
    let response = match read_request(&mut stream, accepted, shared) {
        Ok(request) => {
            let mut response = (shared.handler)(&request);
            if response.exposition {
                shared.stats.append_to(&mut response.body);
            }
            response
        }
        Err(Failure::Refused(refusal)) => {
            shared.stats.count(refusal);
            if refusal.is_suspect() {
                tracing::warn!(?peer, reason = refusal.as_str(), "admin request refused");
            } else {
                tracing::debug!(?peer, reason = refusal.as_str(), "admin request refused");
            }
            Response::refusal(refusal)
        }
        Err(Failure::Gone) => return,
    };
    if write_response(&mut stream, &response).is_err() {
        shared.stats.count(Refusal::SlowReader);
        tracing::debug!(?peer, "admin answer not taken in time");
    }
}

/// The parts of a request head the checks read.
struct Head {
    method: String,
    path: String,
    query: Option<String>,
    http_1_1: bool,
    host: Option<String>,
    origin: Option<String>,
    fetch_site: Option<String>,
    authorization: Option<Zeroizing<Vec<u8>>>,
    content_length: usize,
    head_len: usize,
}

fn read_request<H>(
    stream: &mut TcpStream,
    accepted: Instant,
    shared: &Shared<H>,
) -> Result<Request, Failure> {
    let deadline = accepted + READ_DEADLINE;
    let local = stream.local_addr().map_err(|_| Failure::Gone)?;
    // The head may hold the token: wiped when dropped.
    let mut buf = Zeroizing::new(Vec::with_capacity(1024));
    let head = loop {
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
        if buf.len() >= MAX_HEAD {
            return Err(Refusal::TooLarge.into());
        }
        read_some(stream, &mut buf, MAX_HEAD, deadline)?;
    };
    // The body is read (and dropped) before any answer, so the client sees the answer
    // rather than a reset.
    let total = head.head_len + head.content_length;
    while buf.len() < total {
        read_some(stream, &mut buf, total, deadline)?;
    }
    check_host(&head, local)?;
    check_site(&head, local)?;
    if shared.public || head.method != "GET" {
        let token = shared.token.as_ref().ok_or(Refusal::Method)?;
        let offered = head.authorization.as_deref().ok_or(Refusal::MissingToken)?;
        let offered = bearer(offered).ok_or(Refusal::MissingToken)?;
        if !token.matches(offered) {
            return Err(Refusal::WrongToken.into());
        }
    }
    Ok(Request {
        method: head.method,
        path: head.path,
        query: head.query,
    })
}

/// Reads what is there into `buf` (up to `limit` bytes in all), waiting no later than
/// `deadline`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
    deadline: Instant,
) -> Result<(), Failure> {
    let mut chunk = Zeroizing::new([0u8; 1024]);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Refusal::Deadline.into());
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(|_| Failure::Gone)?;
        let room = limit.saturating_sub(buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) if buf.is_empty() => return Err(Failure::Gone),
            Ok(0) => return Err(Refusal::BadRequest.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Refusal::Deadline.into());
            }
            Err(_) => return Err(Failure::Gone),
        }
    }
}

/// The request head in `buf`, once complete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(_) => return Err(Refusal::BadRequest),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(Refusal::BadRequest);
    };
    let mut head = Head {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or_default().to_owned(),
        query: target.split_once('?').map(|(_, q)| q.to_owned()),
        http_1_1: version == 1,
        host: None,
        origin: None,
        fetch_site: None,
        authorization: None,
        content_length: 0,
        head_len,
    };
    let mut seen_length = false;
    for header in request.headers.iter() {
        let text = || {
            std::str::from_utf8(header.value)
                .map(|v| v.trim().to_owned())
                .map_err(|_| Refusal::BadRequest)
        };
        // A repeated header that the checks read is ambiguous: refused, not guessed.
        let once = |slot: &mut Option<String>| match slot {
            Some(_) => Err(Refusal::BadRequest),
            None => {
                *slot = Some(text()?);
                Ok(())
            }
        };
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            once(&mut head.host)?;
        } else if name.eq_ignore_ascii_case("origin") {
            once(&mut head.origin)?;
        } else if name.eq_ignore_ascii_case("sec-fetch-site") {
            once(&mut head.fetch_site)?;
        } else if name.eq_ignore_ascii_case("authorization") {
            if head.authorization.is_some() {
                return Err(Refusal::BadRequest);
            }
            head.authorization = Some(Zeroizing::new(header.value.to_vec()));
        } else if name.eq_ignore_ascii_case("content-length") {
            if seen_length {
                return Err(Refusal::BadRequest);
            }
            seen_length = true;
            head.content_length = text()?.parse().map_err(|_| Refusal::BadRequest)?;
            if head.content_length > MAX_BODY {
                return Err(Refusal::TooLarge);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::BadRequest);
        }
    }
    Ok(Some(head))
}

/// The names this endpoint answers to on the connection that reached `local`: its IP
/// (IPv6 in brackets; an IPv4-mapped address also as IPv4) and, on loopback, `localhost`.
fn own_names(local: SocketAddr) -> Vec<String> {
    let mut names = Vec::with_capacity(3);
    let mut ip = local.ip();
    if let IpAddr::V6(v6) = ip {
        names.push(format!("[{v6}]"));
        if let Some(v4) = v6.to_ipv4_mapped() {
            ip = IpAddr::V4(v4);
            names.push(v4.to_string());
        }
    } else {
        names.push(ip.to_string());
    }
    if ip.is_loopback() {
        names.push("localhost".to_owned());
    }
    names
}

/// Whether `authority` (`host[:port]`) names this endpoint.
fn is_own_authority(authority: &str, local: SocketAddr) -> bool {
    let authority = authority.to_ascii_lowercase();
    let port = local.port();
    own_names(local).iter().any(|name| {
        authority
            .strip_prefix(name.as_str())
            .is_some_and(|rest| rest == format!(":{port}") || (rest.is_empty() && port == 80))
    })
}

/// DNS rebinding: a browser sends the page's own host name, which resolved to us.
fn check_host(head: &Head, local: SocketAddr) -> Result<(), Refusal> {
    match &head.host {
        Some(host) if is_own_authority(host, local) => Ok(()),
        Some(_) => Err(Refusal::BadHost),
        // HTTP/1.1 requires Host (RFC 9112 3.2); an HTTP/1.0 client without one is no
        // browser (every browser sends Host), so there is no page behind it.
        None if head.http_1_1 => Err(Refusal::BadRequest),
        None => Ok(()),
    }
}

/// A request a web page made the browser send: `Origin` names another site, or the
/// browser says so in `Sec-Fetch-Site`.
fn check_site(head: &Head, local: SocketAddr) -> Result<(), Refusal> {
    if let Some(origin) = &head.origin {
        let same = origin
            .strip_prefix("http://")
            .is_some_and(|authority| is_own_authority(authority, local));
        if !same {
            return Err(Refusal::CrossSite);
        }
    }
    match head.fetch_site.as_deref() {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err(Refusal::CrossSite),
    }
}

/// The credentials of `Authorization: Bearer TOKEN` (RFC 6750 2.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

/// The answer's bytes, head and body, in one buffer sized once (no reallocation leaves a copy
/// of the body behind) and zeroized when dropped.
fn encode(response: &Response) -> Zeroizing<Vec<u8>> {
    let challenge = if response.status.starts_with("401") {
        "WWW-Authenticate: Bearer realm=\"veil-admin\"\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\n{challenge}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(head.len() + response.body.len()));
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(response.body.as_bytes());
    out
}

/// Hands the answer to the kernel within [`WRITE_DEADLINE`], however slowly the client reads.
fn write_response(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    write_by(stream, &encode(response), Instant::now() + WRITE_DEADLINE)
}

/// Hands `bytes` to the kernel unless `deadline` passes first, however slowly the peer reads,
/// then closes the sending side (also `veil web`'s, for its page).
pub fn write_by(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    let mut sent = 0;
    while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(remaining))?;
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.shutdown(Shutdown::Write)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:9100".parse().unwrap()
    }

    fn head(raw: &str) -> Result<Option<Head>, Refusal> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn host_must_name_this_endpoint() {
        let v6: SocketAddr = "[::1]:9100".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9100".parse().unwrap();
        let public: SocketAddr = "10.1.2.3:80".parse().unwrap();
        for (authority, at, ok) in [
            ("127.0.0.1:9100", local(), true),
            ("LOCALHOST:9100", local(), true),
            ("127.0.0.1", local(), false),
            ("127.0.0.1:9101", local(), false),
            ("127.0.0.1:91000", local(), false),
            ("evil.example:9100", local(), false),
            ("127.0.0.1.evil.example:9100", local(), false),
            ("[::1]:9100", v6, true),
            ("localhost:9100", v6, true),
            ("127.0.0.1:9100", mapped, true),
            ("10.1.2.3", public, true),
            ("10.1.2.3:80", public, true),
            ("localhost", public, false),
        ] {
            assert_eq!(is_own_authority(authority, at), ok, "{authority} at {at}");
        }
    }

    #[test]
    fn the_checks_read_one_value_per_header() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nauthorization: y\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
        ] {
            assert_eq!(head(raw).err(), Some(Refusal::BadRequest), "{raw:?}");
        }
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n").err(),
            Some(Refusal::TooLarge)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(head(&many).err(), Some(Refusal::TooLarge));
        assert!(head("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn a_browser_cross_site_request_is_refused_and_a_same_origin_one_is_not() {
        let with = |extra: &str| {
            head(&format!(
                "GET /status HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n{extra}\r\n"
            ))
            .unwrap()
            .unwrap()
        };
        for extra in [
            "Origin: https://evil.example\r\n",
            "Origin: null\r\n",
            "Origin: https://127.0.0.1:9100\r\n",
            "Sec-Fetch-Site: cross-site\r\n",
            "Sec-Fetch-Site: same-site\r\n",
        ] {
            assert_eq!(check_site(&with(extra), local()), Err(Refusal::CrossSite));
        }
        for extra in [
            "",
            "Origin: http://127.0.0.1:9100\r\nSec-Fetch-Site: same-origin\r\n",
            "Sec-Fetch-Site: none\r\n",
        ] {
            assert_eq!(check_site(&with(extra), local()), Ok(()), "{extra:?}");
        }
        let old = head("GET /status HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(check_host(&old, local()), Ok(()));
        let new = head("GET /status HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(check_host(&new, local()), Err(Refusal::BadRequest));
    }

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"  bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
    }

    #[test]
    fn the_counters_go_before_the_openmetrics_end() {
        let stats = AdminStats::default();
        stats.count(Refusal::CrossSite);
        let mut body = "# TYPE x counter\nx_total 1\n# EOF\n".to_owned();
        stats.append_to(&mut body);
        assert!(body.ends_with("veil_admin_refused_total{reason=\"method\"} 0\n# EOF\n"));
        assert!(body.contains("veil_admin_refused_total{reason=\"cross_site\"} 1\n"));
        assert_eq!(body.matches("# EOF").count(), 1);
        let mut plain = "x_total 1\n".to_owned();
        stats.append_to(&mut plain);
        assert!(!plain.contains("# EOF"));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("veil-admin-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_token_file_is_private_fresh_and_removed_at_the_end() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("token");
        let path = dir.join("t");
        // A symlink planted at the path is replaced, never written through.
        let target = dir.join("target");
        std::fs::write(&target, "untouched").unwrap();
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let access = AdminAccess {
            admin_public: false,
            admin_token_file: Some(path.clone()),
        };
        let config = AdminConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            access: &access,
            role: "unit",
            has_commands: true,
        };
        let server = AdminServer::start(&config, |_| Response::text("200 OK", "")).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        let token = std::fs::read_to_string(&path).unwrap();
        assert_eq!(token.trim().len(), 64);
        let second = AdminServer::start(&config, |_| Response::text("200 OK", "")).unwrap();
        assert_ne!(
            std::fs::read_to_string(&path).unwrap(),
            token,
            "a token per run"
        );
        drop(second);
        assert!(!path.exists());
        drop(server);
    }

    #[test]
    fn a_non_loopback_address_needs_the_opt_in() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let closed = AdminAccess::default();
        assert!(matches!(
            check_bind(addr, &closed),
            Err(AdminError::NotLoopback(_))
        ));
        let open = AdminAccess {
            admin_public: true,
            admin_token_file: None,
        };
        assert!(check_bind(addr, &open).is_ok());
        assert!(check_bind("[::1]:0".parse().unwrap(), &closed).is_ok());
    }

    #[test]
    fn connections_beyond_the_workers_and_queue_are_refused_at_once() {
        let access = AdminAccess::default();
        let config = AdminConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            access: &access,
            role: "unit",
            has_commands: false,
        };
        let server = AdminServer::start(&config, |_| Response::text("200 OK", "fine\n")).unwrap();
        let addr = server.local_addr();
        // Idle connections fill the workers, then the queue.
        let connect = |n| {
            let idle: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
            thread::sleep(Duration::from_millis(300));
            idle
        };
        let idle = [connect(WORKERS), connect(QUEUE)];
        let started = Instant::now();
        let mut extra = TcpStream::connect(addr).unwrap();
        extra
            .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        let _ = extra.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(server.stats().refused(Refusal::Busy) >= 1);
        // Once the idle ones hit the deadline, the endpoint answers again.
        thread::sleep(READ_DEADLINE + Duration::from_millis(500));
        let mut again = TcpStream::connect(addr).unwrap();
        again
            .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        again.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        drop(idle);
    }
}
