//! Bounds on what a meeting holds, so that no input from the board grows a session's state
//! without limit (v4.6 meetings are designed for up to 1,000 participants).

/// Most participants present at once, and the default and ceiling of
/// [`super::Timings::max_participants`]. The leader refuses further joins with an alert.
pub const MAX_PARTICIPANTS: usize = 1_000;

/// List entries (present, left and kicked together) a leader keeps per participant it may
/// have present: every admission of a new (userID, deviceID) adds one for the meeting's life.
pub const ROSTER_PER_PARTICIPANT: usize = 4;

/// Most entries any participant list may hold; a list past it is refused.
pub const MAX_ROSTER: usize = ROSTER_PER_PARTICIPANT * MAX_PARTICIPANTS;

/// Most announced participants that are not (yet) in the list: joiners waiting for their
/// nonce or for the leader. Further announcements of strangers are refused.
pub const MAX_PENDING: usize = 256;

/// The highest sender slot; the dataplane's KID carries the slot in 16 bits
/// (docs/PROTOCOL.md, "Stream keys and KIDs"). Slots are never reused, so a meeting admits
/// at most this many joins plus one in its life.
pub const MAX_SLOT: u32 = 0xffff;

/// How often the leader answers one member's key request: at most once per this many
/// milliseconds, so a member cannot make the leader box keys at will.
pub const KEY_REQUEST_MIN_GAP_MS: u64 = 1_000;
