//! The relay's counters: written by the forwarding loop once per batch, read by `--admin`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::registration::RegistrationError;

/// Why a received datagram was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayDrop {
    /// Its source address is not registered (or its registration expired).
    Unregistered,
    /// Its source is registered but alone in its meeting: nobody to forward to.
    NoPeers,
    /// It was longer than a batch slot.
    Truncated,
    /// The kernel refused a send of it, or its WebTransport session was gone.
    SendFailed,
    /// Larger than a WebTransport member's path takes in one datagram (the QUIC path MTU).
    WebTooLarge,
    /// From a WebTransport session while the queue to the relay's loop was full.
    WebQueueFull,
}

/// Why a well-formed registration was refused (nothing changed; docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No ticket, and the relay is not `--open`.
    NoTicket,
    /// A ticket the key did not issue for this meeting and participant.
    BadTicket,
    /// A ticket past its expiry.
    ExpiredTicket,
    /// A register without this address's cookie: answered with a challenge, not applied.
    Unverified,
    /// A leave without this address's cookie (a forged leave from a spoofed source).
    BadCookie,
    /// `--max-registrations` addresses are registered.
    TableFull,
    /// The meeting holds `--max-meeting-members` addresses.
    MeetingFull,
    /// The source IP holds `--max-per-source` addresses.
    SourceFull,
}

impl Refusal {
    /// Every reason, in counter order.
    pub const ALL: [Refusal; 8] = [
        Self::NoTicket,
        Self::BadTicket,
        Self::ExpiredTicket,
        Self::Unverified,
        Self::BadCookie,
        Self::TableFull,
        Self::MeetingFull,
        Self::SourceFull,
    ];

    /// A short stable name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoTicket => "no_ticket",
            Self::BadTicket => "bad_ticket",
            Self::ExpiredTicket => "expired_ticket",
            Self::Unverified => "unverified",
            Self::BadCookie => "bad_cookie",
            Self::TableFull => "table_full",
            Self::MeetingFull => "meeting_full",
            Self::SourceFull => "source_full",
        }
    }
}

impl RelayDrop {
    /// Every reason, in counter order.
    pub const ALL: [RelayDrop; 6] = [
        Self::Unregistered,
        Self::NoPeers,
        Self::Truncated,
        Self::SendFailed,
        Self::WebTooLarge,
        Self::WebQueueFull,
    ];

    /// A short stable name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unregistered => "unregistered_source",
            Self::NoPeers => "no_peers",
            Self::Truncated => "truncated",
            Self::SendFailed => "send_failed",
            Self::WebTooLarge => "web_too_large",
            Self::WebQueueFull => "web_queue_full",
        }
    }
}

/// Shared counters (relaxed atomics: each is independent, read for display only).
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Datagrams received, registrations included.
    pub received: AtomicU64,
    /// Media datagrams from registered sources.
    pub media: AtomicU64,
    /// Copies sent (a datagram to a meeting of N goes out N-1 times).
    pub forwarded: AtomicU64,
    /// Bytes of the copies the kernel took.
    pub forwarded_bytes: AtomicU64,
    /// Registrations that added an address.
    pub joins: AtomicU64,
    /// Registrations that refreshed one.
    pub refreshes: AtomicU64,
    /// Leaves.
    pub leaves: AtomicU64,
    /// Entries dropped because their TTL passed.
    pub expired: AtomicU64,
    /// Drops by [`RelayDrop`] (index = position in [`RelayDrop::ALL`]).
    pub drops: [AtomicU64; RelayDrop::ALL.len()],
    /// Refused registrations by [`RegistrationError`] (index = [`RegistrationError::index`]).
    pub bad_registrations: [AtomicU64; RegistrationError::ALL.len()],
    /// Well-formed registrations refused by [`Refusal`] (index = position in [`Refusal::ALL`]).
    pub refused: [AtomicU64; Refusal::ALL.len()],
    /// Challenges sent: registrations with a valid ticket whose cookie was missing or wrong.
    pub challenges: AtomicU64,
    /// Registered addresses now.
    pub registered: AtomicU64,
    /// Meetings with a registered address now.
    pub meetings: AtomicU64,
    /// WebTransport sessions accepted.
    pub web_sessions: AtomicU64,
    /// WebTransport sessions refused: handshake failed or too slow, wrong path, or
    /// `--max-web-sessions` reached.
    pub web_refused: AtomicU64,
    /// WebTransport sessions the relay closed because they did not register in time.
    pub web_unregistered: AtomicU64,
}

impl RelayCounters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` drops for `reason`.
    pub fn count_drop(&self, reason: RelayDrop, n: u64) {
        if let Some(i) = RelayDrop::ALL.iter().position(|r| *r == reason) {
            Self::add(&self.drops[i], n);
        }
    }

    /// Adds one refusal for `reason`.
    pub fn count_refusal(&self, reason: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == reason) {
            Self::add(&self.refused[i], 1);
        }
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP veil_relay_{name} {help}");
            let _ = writeln!(out, "# TYPE veil_relay_{name} {kind}");
            for (labels, value) in samples {
                let suffix = if kind == "counter" { "_total" } else { "" };
                let _ = writeln!(out, "veil_relay_{name}{suffix}{labels} {value}");
            }
        };
        let one = |c: &AtomicU64| vec![(String::new(), load(c))];
        metric(
            "received",
            "counter",
            "Datagrams received",
            &one(&self.received),
        );
        metric(
            "media",
            "counter",
            "Media datagrams from registered sources",
            &one(&self.media),
        );
        metric(
            "forwarded",
            "counter",
            "Datagram copies sent to meeting members",
            &one(&self.forwarded),
        );
        metric(
            "forwarded_bytes",
            "counter",
            "Bytes of the copies sent",
            &one(&self.forwarded_bytes),
        );
        metric(
            "registrations",
            "counter",
            "Registrations by outcome",
            &[
                ("{outcome=\"joined\"}".into(), load(&self.joins)),
                ("{outcome=\"refreshed\"}".into(), load(&self.refreshes)),
                ("{outcome=\"left\"}".into(), load(&self.leaves)),
                ("{outcome=\"expired\"}".into(), load(&self.expired)),
            ],
        );
        let drops: Vec<_> = RelayDrop::ALL
            .iter()
            .zip(&self.drops)
            .map(|(r, c)| (format!("{{reason=\"{}\"}}", r.as_str()), load(c)))
            .collect();
        metric(
            "drops",
            "counter",
            "Datagrams not forwarded, by reason",
            &drops,
        );
        let bad: Vec<_> = RegistrationError::ALL
            .iter()
            .zip(&self.bad_registrations)
            .map(|(r, c)| (format!("{{reason=\"{}\"}}", r.as_str()), load(c)))
            .collect();
        metric(
            "bad_registrations",
            "counter",
            "Registration datagrams refused, by reason",
            &bad,
        );
        let refused: Vec<_> = Refusal::ALL
            .iter()
            .zip(&self.refused)
            .map(|(r, c)| (format!("{{reason=\"{}\"}}", r.as_str()), load(c)))
            .collect();
        metric(
            "refused_registrations",
            "counter",
            "Well-formed registrations refused, by reason",
            &refused,
        );
        metric(
            "challenges",
            "counter",
            "Cookie challenges sent to registering addresses",
            &one(&self.challenges),
        );
        metric(
            "web_sessions",
            "counter",
            "WebTransport sessions by outcome",
            &[
                ("{outcome=\"accepted\"}".into(), load(&self.web_sessions)),
                ("{outcome=\"refused\"}".into(), load(&self.web_refused)),
                (
                    "{outcome=\"closed_unregistered\"}".into(),
                    load(&self.web_unregistered),
                ),
            ],
        );
        metric(
            "registered",
            "gauge",
            "Registered media addresses",
            &one(&self.registered),
        );
        metric(
            "meetings",
            "gauge",
            "Meetings with a registered address",
            &one(&self.meetings),
        );
        out
    }
}
