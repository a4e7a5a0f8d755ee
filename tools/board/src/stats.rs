//! The board's counters: owned by the core, published by the server for the admin endpoint.
//! They hold numbers only, never a post.

use std::sync::{Arc, Mutex, PoisonError};

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
    /// A failed WebSocket handshake (another path than `/board`, a malformed upgrade) or a
    /// WebSocket protocol violation (`--ws-listen`).
    WebSocket,
    /// A relay ticket asked for again within [`crate::TICKET_REQUEST_INTERVAL_MS`] of the last
    /// answered ask: ignored, the connection stays.
    TicketTooSoon,
}

impl ErrorReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 25] = [
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
        Self::WebSocket,
        Self::TicketTooSoon,
    ];

    /// The reason's place in [`Self::ALL`] (and in the counters): its declaration order, which
    /// `ALL` follows (checked by a test).
    fn index(self) -> usize {
        self as usize
    }

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
            Self::WebSocket => "websocket",
            Self::TicketTooSoon => "ticket_too_soon",
        }
    }
}

/// The counters of one board: a plain struct the core owns and updates as it routes. The server
/// publishes a copy after every pass of its loop ([`PublishedStats`]); nothing else shares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardStats {
    meetings: u64,
    participants: u64,
    connections: u64,
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    tampered: u64,
    errors: [u64; ErrorReason::ALL.len()],
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

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl BoardStats {
    /// Counts a refusal.
    pub fn error(&mut self, reason: ErrorReason) {
        if let Some(c) = self.errors.get_mut(reason.index()) {
            *c = c.saturating_add(1);
        }
    }

    /// Counts a received frame of `len` bytes (prefix included).
    pub fn frame_in(&mut self, len: usize) {
        self.frames_in = self.frames_in.saturating_add(1);
        self.bytes_in = self.bytes_in.saturating_add(count(len));
    }

    /// Counts a queued frame of `len` bytes.
    pub fn frame_out(&mut self, len: usize) {
        self.frames_out = self.frames_out.saturating_add(1);
        self.bytes_out = self.bytes_out.saturating_add(count(len));
    }

    /// Counts one tampered delivery.
    pub fn tampered(&mut self) {
        self.tampered = self.tampered.saturating_add(1);
    }

    /// Sets the gauges.
    pub fn set_gauges(&mut self, meetings: usize, participants: usize, connections: usize) {
        self.meetings = count(meetings);
        self.participants = count(participants);
        self.connections = count(connections);
    }

    /// The refusals of one reason so far.
    pub fn errors(&self, reason: ErrorReason) -> u64 {
        self.errors.get(reason.index()).copied().unwrap_or_default()
    }

    /// A copy of every counter, labelled.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            meetings: self.meetings,
            participants: self.participants,
            connections: self.connections,
            frames_in: self.frames_in,
            frames_out: self.frames_out,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            tampered: self.tampered,
            errors: ErrorReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.errors(*r)))
                .collect(),
        }
    }
}

/// The counters as the server last published them, for readers on other threads (the admin
/// endpoint, tests). Cloning shares the same copy.
#[derive(Debug, Clone, Default)]
pub struct PublishedStats(Arc<Mutex<BoardStats>>);

impl PublishedStats {
    /// Replaces the published copy (the server, after each pass of its loop).
    pub fn publish(&self, stats: &BoardStats) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone_from(stats);
    }

    /// The published counters, labelled.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot()
    }

    /// The published refusals of one reason.
    pub fn errors(&self, reason: ErrorReason) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .errors(reason)
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
            F::BadField(_) => Self::BadField,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_counts_in_its_own_place() {
        let mut stats = BoardStats::default();
        for (i, reason) in ErrorReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
            for _ in 0..=i {
                stats.error(*reason);
            }
        }
        let snapshot = stats.snapshot();
        for (i, reason) in ErrorReason::ALL.iter().enumerate() {
            assert_eq!(stats.errors(*reason), i as u64 + 1);
            assert_eq!(snapshot.errors[reason.as_str()], i as u64 + 1);
        }
        assert_eq!(snapshot.errors.len(), ErrorReason::ALL.len());
    }
}
