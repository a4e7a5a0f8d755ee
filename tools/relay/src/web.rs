//! Browser members: WebTransport sessions (HTTP/3 datagrams) beside the UDP socket.
//!
//! A browser cannot send UDP, so `veil relay --web-listen ADDR` accepts WebTransport sessions
//! (`https://ADDR/veil`, the `wtransport` crate on its own thread with a single-threaded tokio
//! runtime) and carries each session's datagrams to the relay's loop through a bounded queue
//! and a mio waker. In the loop a session is a [`Member::Web`], registered exactly as a UDP
//! address is: the same registration datagram, the board's ticket, the challenge and the
//! echoed cookie (its cookie is derived from the QUIC connection's remote address), the same
//! table and limits. What a session sends is forwarded byte for byte to its meeting's UDP and
//! WebTransport members, and what they send reaches it as datagrams; nothing is decrypted.
//!
//! The certificate is self-signed and fresh at every start unless `--web-cert` and `--web-key`
//! name one: ECDSA P-256, valid 13 days, the form a page can pin with
//! `serverCertificateHashes` (W3C WebTransport, 4.x "server certificate hashes": at most two
//! weeks, ECDSA secp256r1). The relay prints its SHA-256, which the meeting link carries as
//! `relay_sha256`.
//!
//! Bounds: a session takes one of the `--max-web-sessions` places only once its QUIC handshake
//! is done (the address answered, so a spoofed Initial holds nothing), at most
//! [`SESSIONS_PER_IP`] per remote IP (more are answered 429, as past the cap); it must finish
//! its handshake within [`HANDSHAKE_TIMEOUT`], register within [`REGISTER_DEADLINE`] (the
//! relay's loop closes one that does not), and closes after [`IDLE_TIMEOUT`] of silence. QUIC
//! keeps at most [`SEND_BUFFER`] of datagrams waiting for one session (quinn drops the oldest
//! beyond it, uncounted: the session's own path is what is slow). The queue to the loop holds
//! [`QUEUE`] events: a datagram that finds it full is dropped and counted (`web_queue_full`),
//! never waited for.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use wtransport::endpoint::IncomingSession;
use wtransport::endpoint::endpoint_side::Server;
use wtransport::{Connection, Endpoint, Identity, ServerConfig};

use crate::counters::{RelayCounters, RelayDrop};
use crate::table::Peer;

/// The path a session must ask for: anything else is answered 404.
pub const PATH: &str = "/veil";
/// Events waiting for the relay's loop; a datagram beyond it is dropped and counted.
pub const QUEUE: usize = 4_096;
/// From the first QUIC packet to an accepted session.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A session that sends nothing for this long is closed (the page refreshes its registration
/// every 2 s, so a live one never gets near it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Sessions one remote IP may hold at once.
pub const SESSIONS_PER_IP: usize = 64;
/// How long a session may stay without a registration in the table before the relay's loop
/// closes it.
pub const REGISTER_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes of datagrams QUIC keeps waiting to be sent on one session.
pub const SEND_BUFFER: usize = 64 * 1024;
/// Validity of the self-signed certificate: under the two weeks a pinned hash allows.
const SELF_SIGNED_DAYS: u32 = 13;

/// A registered member of a meeting: a UDP source address, or a WebTransport session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    /// A source address on the media socket.
    Udp(SocketAddr),
    /// A WebTransport session: its number (unique for the relay's life) and the address its
    /// QUIC connection comes from.
    Web {
        /// Numbers sessions in the order they were accepted.
        session: u64,
        /// The connection's remote address: its cookie and its per-source count.
        remote: SocketAddr,
    },
}

impl Member {
    /// The address cookies are derived for.
    pub fn address(&self) -> SocketAddr {
        match *self {
            Self::Udp(addr) | Self::Web { remote: addr, .. } => addr,
        }
    }
}

impl Peer for Member {
    fn source_ip(&self) -> std::net::IpAddr {
        self.address().ip()
    }
}

/// What a session tells the relay's loop.
pub enum WebEvent {
    /// A session was accepted: the loop keeps its connection to send to it.
    Opened {
        /// Its number.
        session: u64,
        /// Its connection (a handle; sending on it needs no runtime).
        connection: Connection,
    },
    /// A datagram arrived on a session.
    Datagram {
        /// The session.
        session: u64,
        /// The session's remote address.
        remote: SocketAddr,
        /// The bytes, as the page sent them.
        payload: wtransport::datagram::Datagram,
    },
    /// The session ended (closed by the page, timed out, or lost).
    Closed {
        /// The session.
        session: u64,
    },
}

/// Where the WebTransport listener's certificate comes from.
#[derive(Debug, Clone)]
pub enum Certificate {
    /// A fresh self-signed one for these names (hostnames or IP addresses).
    SelfSigned(Vec<String>),
    /// PEM files: the chain and its key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

/// A running WebTransport listener.
pub struct WebListener {
    /// The UDP address QUIC listens on.
    pub local_addr: SocketAddr,
    /// SHA-256 of the leaf certificate's DER: what a page pins.
    pub certificate_sha256: [u8; 32],
    /// Its events, for the relay's loop.
    pub events: Receiver<WebEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for WebListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The runtime or the socket.
    #[error("--web-listen: {0}")]
    Io(#[from] std::io::Error),
    /// `--web-cert` / `--web-key` could not be read.
    #[error("--web-cert/--web-key: {0}")]
    Pem(String),
    /// A name the self-signed certificate cannot carry.
    #[error("--web-name: {0}")]
    Name(String),
    /// The certificate chain was empty.
    #[error("--web-cert holds no certificate")]
    NoCertificate,
}

/// What the listener's thread shares with the relay's loop.
pub struct Wake {
    /// Set by the listener when it queued something and the loop has not been woken since.
    pub pending: AtomicBool,
    /// Wakes the loop's poll.
    pub waker: mio::Waker,
}

impl Wake {
    fn notify(&self) {
        if !self.pending.swap(true, Ordering::AcqRel)
            && let Err(error) = self.waker.wake()
        {
            tracing::debug!(%error, "could not wake the relay loop");
        }
    }
}

impl WebListener {
    /// Binds `addr` and starts accepting sessions on a thread of its own; events are counted
    /// into `counters` and announced through `wake`.
    pub fn start(
        addr: SocketAddr,
        certificate: &Certificate,
        max_sessions: usize,
        counters: Arc<RelayCounters>,
        wake: Arc<Wake>,
    ) -> Result<Self, WebError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let identity = runtime.block_on(identity(certificate))?;
        let certificate_sha256 = identity
            .certificate_chain()
            .as_slice()
            .first()
            .map(|leaf| keyctl::crypto::sha256(leaf.der()))
            .ok_or(WebError::NoCertificate)?;
        let mut transport = wtransport::config::QuicTransportConfig::default();
        transport.datagram_send_buffer_size(SEND_BUFFER);
        let config = ServerConfig::builder()
            .with_bind_address(addr)
            .with_custom_transport(identity, transport)
            .max_idle_timeout(Some(IDLE_TIMEOUT))
            .map_err(|_| std::io::Error::other("idle timeout out of range"))?
            // A session is keyed by the address it came from (its cookie, its per-source
            // count); a browser that changes address opens a new session and registers again.
            .allow_migration(false)
            .build();
        let endpoint = {
            let _guard = runtime.enter();
            Endpoint::server(config)?
        };
        let local_addr = endpoint.local_addr()?;
        let (sender, events) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let accept = Accept {
            sender,
            counters,
            wake,
            places: Arc::new(Places {
                max: max_sessions,
                held: Mutex::new((0, HashMap::new())),
            }),
            next_session: 0,
        };
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("relay-web".into())
            .spawn(move || runtime.block_on(accept.run(endpoint, thread_stop)))?;
        Ok(Self {
            local_addr,
            certificate_sha256,
            events,
            thread: Some(thread),
            stop,
        })
    }
}

impl Drop for WebListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The accept loop looks at the flag at least every second.
            let _ = thread.join();
        }
    }
}

async fn identity(certificate: &Certificate) -> Result<Identity, WebError> {
    match certificate {
        Certificate::SelfSigned(names) => Identity::self_signed_builder()
            .subject_alt_names(names)
            .from_now_utc()
            .validity_days(SELF_SIGNED_DAYS)
            .build()
            .map_err(|e| WebError::Name(e.to_string())),
        Certificate::Files { cert, key } => Identity::load_pemfiles(cert, key)
            .await
            .map_err(|e| WebError::Pem(e.to_string())),
    }
}

/// The accept loop's state.
struct Accept {
    sender: SyncSender<WebEvent>,
    counters: Arc<RelayCounters>,
    wake: Arc<Wake>,
    places: Arc<Places>,
    next_session: u64,
}

impl Accept {
    async fn run(mut self, endpoint: Endpoint<Server>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            let incoming =
                match tokio::time::timeout(Duration::from_secs(1), endpoint.accept()).await {
                    Ok(incoming) => incoming,
                    Err(_) => continue,
                };
            let session = self.next_session;
            self.next_session += 1;
            let link = Link {
                session,
                sender: self.sender.clone(),
                counters: self.counters.clone(),
                wake: self.wake.clone(),
            };
            tokio::spawn(link.serve(incoming, self.places.clone()));
        }
        endpoint.close(0u32.into(), b"relay stopping");
    }
}

/// The `--max-web-sessions` places, and how many each remote IP holds.
struct Places {
    max: usize,
    /// Sessions held in all, and per IP (an IP leaves the map with its last session).
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One place, given back when the session ends (dropped).
struct Slot {
    places: Arc<Places>,
    ip: IpAddr,
}

impl Places {
    /// A place for a session from `ip`, if there is one within both bounds.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_ip) = &mut *held;
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= self.max || from_ip >= SESSIONS_PER_IP {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, from_ip + 1);
        Some(Slot {
            places: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self
            .places
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, per_ip) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// One session's side of the queue.
struct Link {
    session: u64,
    sender: SyncSender<WebEvent>,
    counters: Arc<RelayCounters>,
    wake: Arc<Wake>,
}

impl Link {
    async fn serve(self, incoming: IncomingSession, places: Arc<Places>) {
        let Ok((connection, slot)) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, self.accept(incoming, &places))
                .await
                .unwrap_or_else(|_| {
                    RelayCounters::add(&self.counters.web_refused, 1);
                    Err(())
                })
        else {
            return;
        };
        let remote = connection.remote_address();
        tracing::debug!(session = self.session, %remote, "web session");
        // Opened must reach the loop before any datagram does, or there is nothing to answer.
        if !self.send(WebEvent::Opened {
            session: self.session,
            connection: connection.clone(),
        }) {
            RelayCounters::add(&self.counters.web_refused, 1);
            connection.close(1u32.into(), b"relay busy");
            return;
        }
        RelayCounters::add(&self.counters.web_sessions, 1);
        while let Ok(payload) = connection.receive_datagram().await {
            let datagram = WebEvent::Datagram {
                session: self.session,
                remote,
                payload,
            };
            if !self.send(datagram) {
                self.counters.count_drop(RelayDrop::WebQueueFull, 1);
            }
        }
        // If the queue is full the loop still learns it from a failed send or the expiry.
        self.send(WebEvent::Closed {
            session: self.session,
        });
        drop(slot);
    }

    /// The QUIC handshake, then a place (only now: the remote address answered), then the
    /// WebTransport request.
    async fn accept(
        &self,
        incoming: IncomingSession,
        places: &Arc<Places>,
    ) -> Result<(Connection, Slot), ()> {
        let refused = |counters: &RelayCounters| RelayCounters::add(&counters.web_refused, 1);
        let request = incoming.await.map_err(|_| refused(&self.counters))?;
        let Some(slot) = places.take(request.remote_address().ip()) else {
            refused(&self.counters);
            request.too_many_requests().await;
            return Err(());
        };
        if request.path() != PATH {
            refused(&self.counters);
            request.not_found().await;
            return Err(());
        }
        let connection = request
            .accept()
            .await
            .map_err(|_| refused(&self.counters))?;
        Ok((connection, slot))
    }

    fn send(&self, event: WebEvent) -> bool {
        match self.sender.try_send(event) {
            Ok(()) => {
                self.wake.notify();
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}
