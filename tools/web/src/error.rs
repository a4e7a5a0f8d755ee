//! What a web participant refuses, each with its own variant (and a counter, [`crate::Counters`]).

use dataplane::keyring::{HandoffError, SealError};
use dataplane::packet::Error as PacketError;
use keyctl::meeting::MeetingError;
use veil_board::frame::FrameError;

/// Why a call was refused. State never changes on a refused input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A board message that is not one well-formed frame.
    #[error("board message: {0}")]
    Frame(#[from] FrameError),
    /// A board message whose length prefix disagrees with the message (a WebSocket message
    /// carries exactly one frame).
    #[error("a board message of {got} bytes declares a frame of {declared}")]
    FrameLength {
        /// The length the prefix declares.
        declared: usize,
        /// The message's length without the prefix.
        got: usize,
    },
    /// A frame the board may not send now (a second welcome, anything before the welcome).
    #[error("unexpected board frame: {0}")]
    Unexpected(&'static str),
    /// keyctl refused a message or a call (bad signature, stale key, not the leader, ...).
    #[error("meeting: {0}")]
    Meeting(#[from] MeetingError),
    /// The keyring refused a key keyctl handed over.
    #[error("keyring: {0}")]
    Handoff(#[from] HandoffError),
    /// Media could not be sealed (no key yet, or this device is not in the roster).
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    /// A received datagram did not open (forged, replayed, unknown or retired key).
    #[error("open: {0}")]
    Open(#[from] PacketError),
    /// Not joined yet: the board has not welcomed this participant.
    #[error("not in a meeting yet")]
    NotJoined,
    /// The meeting ended for this participant; make a new one to join again.
    #[error("the meeting ended for this participant")]
    Ended,
    /// A name the board would refuse (empty, or over 256 bytes).
    #[error("a name must be 1 to 256 bytes")]
    Name,
    /// A datagram from the relay that starts like a registration but is not a challenge
    /// for a participant registered there (the relay sends participants nothing else).
    #[error("a relay datagram that is neither media nor a challenge")]
    RelayDatagram,
    /// A name other than the `user` the link (and its invite) is for.
    #[error("the link is for another user: join under the link's user")]
    NotLinkUser,
    /// In an RTP-mode meeting (`media=rtp`), a payload that is not an RTP packet.
    #[error("the meeting's media is RTP, and this payload is not an RTP packet")]
    NotRtp,
    /// A payload larger than a datagram can carry sealed.
    #[error("a payload of {0} bytes is larger than a sealed datagram may be")]
    TooLarge(usize),
}
