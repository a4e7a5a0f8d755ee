//! Helpers shared by the relay, real-media and demo tests: processes that die with the test,
//! ephemeral loopback ports, the admin endpoints.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub mod ffmpeg;
pub mod meeting;
pub mod page;

/// A free loopback UDP address (bound then released: the OS will not hand it out again soon).
pub fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A free loopback TCP address.
pub fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The `veil` binary under test.
pub fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

/// A fresh directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "veil-media-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed when dropped; its stderr goes to a file read back by [`Self::log`].
pub struct Proc {
    pub child: Child,
    pub log_path: PathBuf,
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    /// Spawns `cmd` with stdout piped and stderr to `dir/name.log`.
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Self {
        let log_path = dir.join(format!("{name}.log"));
        let log = File::create(&log_path).unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().map(BufReader::new);
        Self {
            child,
            log_path,
            stdout,
        }
    }

    /// The next stdout line (blocking).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
        line
    }

    /// The stderr log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, and the process must exit 0 within `limit`.
    pub fn stop(mut self, limit: Duration) {
        self.signal("TERM");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}; log:\n{}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `veil relay` on an ephemeral loopback port.
pub struct Relay {
    pub proc: Proc,
    pub media: SocketAddr,
    pub admin: SocketAddr,
    /// With `--web-listen`: the WebTransport address and its certificate's SHA-256.
    pub web: Option<(SocketAddr, [u8; 32])>,
}

impl Relay {
    /// Starts a relay with `extra` flags and waits for its address line.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(dir, "127.0.0.1:0".parse().unwrap(), extra)
    }

    /// Starts a relay listening on `media`.
    pub fn start_on(dir: &Path, media: SocketAddr, extra: &[&str]) -> Self {
        let mut cmd = veil();
        cmd.args(["relay", "--listen", &media.to_string()])
            .args(["--admin", "127.0.0.1:0"])
            .arg("--ticket-key")
            .arg(dir.join("ticket.key"))
            .args(extra);
        let mut proc = Proc::spawn(cmd, dir, "relay");
        let line = proc.line();
        // "veil relay: media ADDR admin ADDR [web ADDR sha256 HEX]"
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.get(2), Some(&"media"), "relay said {line:?}");
        let media = words[3].parse().unwrap();
        let admin = words[5].parse().unwrap();
        let web = (words.get(6) == Some(&"web")).then(|| {
            let hash = hex::decode(words[9]).unwrap().try_into().unwrap();
            (words[7].parse().unwrap(), hash)
        });
        Self {
            proc,
            media,
            admin,
            web,
        }
    }

    /// The relay's counters, by full sample name (labels included).
    pub fn metrics(&self) -> HashMap<String, f64> {
        metrics(self.admin).unwrap()
    }

    /// One counter, 0 if absent.
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics().get(name).copied().unwrap_or(0.0)
    }
}

/// An HTTP request to an admin endpoint; the body, if the status was 200.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> Option<String> {
    http_with_token(addr, method, path, None)
}

/// An HTTP request to an admin endpoint, with `Authorization: Bearer TOKEN` when given (what
/// every command needs); the body, if the status was 200.
pub fn http_with_token(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

/// Prometheus samples at `addr/metrics`.
pub fn metrics(addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let body = http(addr, "GET", "/metrics")?;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The registration datagram for `meeting` and `token`, without a ticket or a cookie
/// (docs/PROTOCOL.md, version 2, built by hand here so the test checks the documented bytes,
/// not the implementation against itself).
pub fn registration(kind: u8, meeting: &[u8], token: &[u8]) -> Vec<u8> {
    registration_with(kind, meeting, token, None, None)
}

/// The registration datagram with a ticket `(expiry, mac)` and an echoed cookie.
pub fn registration_with(
    kind: u8,
    meeting: &[u8],
    token: &[u8],
    ticket: Option<(u64, [u8; 32])>,
    cookie: Option<[u8; 16]>,
) -> Vec<u8> {
    let mut out = vec![0x00, b'V', b'R', b'G', 0x88, 0x00, 2, kind];
    out.push(u8::try_from(meeting.len()).unwrap());
    out.extend_from_slice(meeting);
    out.push(u8::try_from(token.len()).unwrap());
    out.extend_from_slice(token);
    let (expiry, mac) = ticket.unwrap_or((0, [0; 32]));
    out.extend_from_slice(&expiry.to_be_bytes());
    out.extend_from_slice(&mac);
    out.extend_from_slice(&cookie.unwrap_or([0; 16]));
    out
}

/// The cookie of a relay challenge (magic, version 2, kind 3, 16 bytes), or `None`.
pub fn challenge_cookie(datagram: &[u8]) -> Option<[u8; 16]> {
    let rest = datagram.strip_prefix(&[0x00, b'V', b'R', b'G', 0x88, 0x00, 2, 3][..])?;
    rest.try_into().ok()
}

/// A loopback UDP socket with 4 MiB buffers (the kernel's cap here), so a burst the test
/// sends or receives is not lost to a default-sized buffer on a busy machine.
pub fn roomy_socket() -> UdpSocket {
    let socket = dataplane_udp::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.set_nonblocking(false).unwrap();
    socket
}

/// Registers `socket` (read by `inbox`) with the relay and answers its challenge, as a
/// sidecar does; returns the cookie.
pub fn register_verified(
    socket: &UdpSocket,
    inbox: &Collector,
    relay: SocketAddr,
    meeting: &[u8],
    token: &[u8],
    ticket: Option<(u64, [u8; 32])>,
) -> [u8; 16] {
    socket
        .send_to(&registration_with(1, meeting, token, ticket, None), relay)
        .unwrap();
    let cookie = inbox.challenge(Duration::from_secs(5));
    socket
        .send_to(
            &registration_with(1, meeting, token, ticket, Some(cookie)),
            relay,
        )
        .unwrap();
    cookie
}

/// How many offsets of `haystack` start an occurrence of `needle` (overlaps counted).
pub fn count_at_offsets(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Reads a UDP socket on a thread of its own from the moment it is made, so a burst never
/// overflows the socket's receive buffer while the test is busy sending.
pub struct Collector {
    got: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl Collector {
    /// Binds a loopback socket and starts collecting.
    pub fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Self::on(socket)
    }

    /// Collects from `socket`.
    pub fn on(socket: UdpSocket) -> Self {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (got, stop) = (got.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        got.lock().unwrap().push(buf[..n].to_vec());
                    }
                }
            })
        };
        Self {
            got,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    /// The socket's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many datagrams arrived so far.
    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Waits for a relay challenge, takes it out of what was collected, and returns its cookie.
    pub fn challenge(&self, limit: Duration) -> [u8; 16] {
        let deadline = std::time::Instant::now() + limit;
        loop {
            {
                let mut got = self.got.lock().unwrap();
                if let Some(i) = got.iter().position(|d| challenge_cookie(d).is_some()) {
                    return challenge_cookie(&got.remove(i)).unwrap();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no challenge from the relay"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything so far once `n` datagrams arrived (or `limit` passed, to fail on), then
    /// nothing more for `quiet`; the collection starts over.
    pub fn take_at_least(&self, n: usize, limit: Duration, quiet: Duration) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + limit;
        while self.count() < n && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        self.take(quiet)
    }

    /// Everything so far, once nothing new arrived for `quiet`; the collection starts over.
    pub fn take(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut last = self.count();
        loop {
            thread::sleep(quiet);
            let now = self.count();
            if now == last {
                break;
            }
            last = now;
        }
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fresh pre-shared key file for `meeting` with `slots` sender slots, in `dir`.
pub fn psk_key_file(dir: &Path, meeting: &str, slots: u32) -> PathBuf {
    let out = veil()
        .args(["keygen", "--psk", "--meeting", meeting])
        .args(["--slots", &slots.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = dir.join(format!("{meeting}.toml"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Starts a PSK-mode sidecar of `slot` registered with `relay`, delivering to `deliver` and
/// sealing only what comes from `client` (`--local-client`; `None`: the default, `deliver`
/// itself); returns it and its `--local-listen` address.
pub fn psk_sidecar(
    dir: &Path,
    key_file: &Path,
    slot: u32,
    deliver: SocketAddr,
    client: Option<SocketAddr>,
    relay: SocketAddr,
    extra: &[&str],
) -> (Proc, SocketAddr) {
    let listen = free_udp();
    let mut cmd = veil();
    cmd.arg("sidecar")
        .args(["--key-file", key_file.to_str().unwrap()])
        .args(["--sender-slot", &slot.to_string()])
        .args(["--local-listen", &listen.to_string()])
        .args(["--local-deliver", &deliver.to_string()])
        .args(["--bind", &free_udp().to_string()])
        .args(["--remote", &relay.to_string(), "--relay"])
        .args(["--engine", "mio", "--workers", "1"])
        .args(extra);
    if let Some(client) = client {
        cmd.args(["--local-client", &client.to_string()]);
    }
    (Proc::spawn(cmd, dir, &format!("sidecar-{slot}")), listen)
}

/// A third member of `meeting` at the relay. In meeting mode the relay is closed, so the
/// tap mints its own ticket from the key file board and relay share (as a test may).
pub fn relay_tap(relay: &Relay, meeting: &[u8], ticket_key: Option<&std::path::Path>) -> Collector {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tap = Collector::on(socket.try_clone().unwrap());
    let ticket = ticket_key.map(|path| {
        let key = veil_relay::ticket::TicketKey::load_or_create(path).unwrap();
        let t = key.issue(meeting, "tap", veil_relay::ticket::unix_now() + 600);
        (t.expiry, t.mac)
    });
    register_verified(&socket, &tap, relay.media, meeting, b"tap", ticket);
    tap
}
