//! The board's counters: shared by the event loop (writer) and the admin endpoint (reader).
//! They hold numbers only, never a post.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Why the board refused input or closed a connection; one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorReason {
    /// A frame longer than the cap.
    Oversize,
    /// A frame that ended inside a field.
    Truncated,
    /// An unknown board protocol version.
    BadVersion,
    /// An unknown or misdirected frame type.
    BadType,
    /// Bytes after a frame's last field.
    Trailing,
    /// An invalid field (text too long, not UTF-8, bad flag).
    BadField,
    /// A post or bye before the hello.
    NotJoined,
    /// A second hello on one connection.
    SecondHello,
    /// A post that is not a keyctl message.
    MalformedPost,
    /// A hello for a participant ID already in the meeting.
    DuplicateParticipant,
    /// A socket error or a peer that closed mid-frame.
    Io,
    /// A failed TLS handshake or record.
    Tls,
    /// No hello within the timeout.
    HelloTimeout,
    /// A client posted a notice only the board sends (`LeaderChange`).
    BoardNotice,
    /// A post about another participant: an announcement, nonce, lock request or leave
    /// naming someone other than the connection's participant.
    Impersonation,
    /// A post naming another meeting instance than the one the connection joined.
    WrongMeeting,
    /// A rekey, heartbeat or list link from a connection the board has not made leader.
    NotLeader,
    /// A list link beyond the backlog's bound (links since the last snapshot, or their
    /// bytes).
    BacklogFull,
    /// A rekey for no present participant (it may just have left): counted, not closed.
    UnknownRecipient,
    /// A connection beyond the board's connection cap.
    ConnectionsFull,
    /// A hello that would open a meeting beyond the board's meeting cap.
    MeetingsFull,
    /// A hello to a meeting at its participant cap.
    MeetingFull,
    /// A connection whose unsent output passed the cap (it does not read).
    SlowConsumer,
}

impl ErrorReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 23] = [
        Self::Oversize,
        Self::Truncated,
        Self::BadVersion,
        Self::BadType,
        Self::Trailing,
        Self::BadField,
        Self::NotJoined,
        Self::SecondHello,
        Self::MalformedPost,
        Self::DuplicateParticipant,
        Self::Io,
        Self::Tls,
        Self::HelloTimeout,
        Self::BoardNotice,
        Self::Impersonation,
        Self::WrongMeeting,
        Self::NotLeader,
        Self::BacklogFull,
        Self::UnknownRecipient,
        Self::ConnectionsFull,
        Self::MeetingsFull,
        Self::MeetingFull,
        Self::SlowConsumer,
    ];

    /// The counter's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oversize => "oversize",
            Self::Truncated => "truncated",
            Self::BadVersion => "bad_version",
            Self::BadType => "bad_type",
            Self::Trailing => "trailing",
            Self::BadField => "bad_field",
            Self::NotJoined => "not_joined",
            Self::SecondHello => "second_hello",
            Self::MalformedPost => "malformed_post",
            Self::DuplicateParticipant => "duplicate_participant",
            Self::Io => "io",
            Self::Tls => "tls",
            Self::HelloTimeout => "hello_timeout",
            Self::BoardNotice => "board_notice",
            Self::Impersonation => "impersonation",
            Self::WrongMeeting => "wrong_meeting",
            Self::NotLeader => "not_leader",
            Self::BacklogFull => "backlog_full",
            Self::UnknownRecipient => "unknown_recipient",
            Self::ConnectionsFull => "connections_full",
            Self::MeetingsFull => "meetings_full",
            Self::MeetingFull => "meeting_full",
            Self::SlowConsumer => "slow_consumer",
        }
    }
}

/// Live counters of one board.
#[derive(Debug, Default)]
pub struct BoardStats {
    meetings: AtomicU64,
    participants: AtomicU64,
    connections: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    tampered: AtomicU64,
    errors: [AtomicU64; ErrorReason::ALL.len()],
}

/// A point-in-time copy of [`BoardStats`], as the admin endpoint serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Meeting instances with at least one participant.
    pub meetings: u64,
    /// Participants joined, over all meetings.
    pub participants: u64,
    /// Open connections (joined or not).
    pub connections: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received (frame bodies and prefixes, after TLS).
    pub bytes_in: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
    /// Deliveries changed, dropped or injected by `--tamper`.
    pub tampered: u64,
    /// Refused input, by reason.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

impl BoardStats {
    /// Counts a refusal.
    pub fn error(&self, reason: ErrorReason) {
        if let Some(c) = ErrorReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.errors.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a received frame of `len` bytes (prefix included).
    pub fn frame_in(&self, len: usize) {
        add(&self.frames_in, 1);
        add(&self.bytes_in, len);
    }

    /// Counts a queued frame of `len` bytes.
    pub fn frame_out(&self, len: usize) {
        add(&self.frames_out, 1);
        add(&self.bytes_out, len);
    }

    /// Counts one tampered delivery.
    pub fn tampered(&self) {
        add(&self.tampered, 1);
    }

    /// Sets the gauges.
    pub fn set_gauges(&self, meetings: usize, participants: usize, connections: usize) {
        let set = |c: &AtomicU64, v: usize| {
            c.store(u64::try_from(v).unwrap_or(u64::MAX), Ordering::Relaxed);
        };
        set(&self.meetings, meetings);
        set(&self.participants, participants);
        set(&self.connections, connections);
    }

    /// The refusals of one reason so far.
    pub fn errors(&self, reason: ErrorReason) -> u64 {
        self.snapshot()
            .errors
            .get(reason.as_str())
            .copied()
            .unwrap_or_default()
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            meetings: get(&self.meetings),
            participants: get(&self.participants),
            connections: get(&self.connections),
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            tampered: get(&self.tampered),
            errors: ErrorReason::ALL
                .iter()
                .zip(&self.errors)
                .map(|(r, c)| (r.as_str(), get(c)))
                .collect(),
        }
    }
}

impl From<&crate::frame::FrameError> for ErrorReason {
    fn from(e: &crate::frame::FrameError) -> Self {
        use crate::frame::FrameError as F;
        match e {
            F::Oversize { .. } => Self::Oversize,
            F::Truncated { .. } => Self::Truncated,
            F::BadVersion(_) => Self::BadVersion,
            F::BadType(_) => Self::BadType,
            F::Trailing(_) => Self::Trailing,
            _ => Self::BadField,
        }
    }
}
