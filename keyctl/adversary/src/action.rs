//! What the adversary (the board, the server and its own participant) and the hosts may
//! do in one step, and how a byte string chooses the steps.

use core::fmt;

/// Which board posts a [`Action::Drop`] targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Any post.
    Any,
    /// A leader's boxed meeting key.
    Rekey,
    /// A leader heartbeat.
    Heartbeat,
    /// A signed LPL link.
    Link,
    /// A key announcement or liveness nonce.
    Join,
    /// A server notice (`Leave`, `LeaderChange`) or a participant's own leave.
    Notice,
}

impl Kind {
    const ALL: [Self; 6] = [
        Self::Any,
        Self::Rekey,
        Self::Heartbeat,
        Self::Link,
        Self::Join,
        Self::Notice,
    ];

    fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }
}

/// Virtual time steps an [`Action::Advance`] can take, in milliseconds: from below the
/// activation delay to past the 10 s bound of I4.
pub const ADVANCE_MS: [u64; 8] = [50, 150, 400, 1_000, 2_500, 4_000, 6_000, 12_000];

/// The opcode byte of [`Action::StripPq`]: one value taken out of the modulo below, so the
/// byte strings of earlier corpora keep (almost all of) their meaning.
const STRIP_PQ_OPCODE: u8 = 0xff;

/// The opcode byte of [`Action::StripPqSig`], taken out of the modulo like
/// [`STRIP_PQ_OPCODE`] (it was an [`Action::InjectIdentity`]).
const STRIP_PQ_SIG_OPCODE: u8 = 0xfe;

/// The opcode byte of [`Action::ForgeRejoin`], taken out of the modulo like
/// [`STRIP_PQ_OPCODE`] (it was an [`Action::Advance`]).
const FORGE_REJOIN_OPCODE: u8 = 0xfd;

/// One step of the exploration. Participant indices are taken modulo
/// [`crate::PARTIES`]; index 0 is the host the server first names leader, 1 and 2 are
/// honest participants, 3 is the adversary's own participant ("mallory").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The board delivers, to `to`, the `pick`-th (modulo) post still pending for it,
    /// counted from the newest: reordering and delay.
    Deliver {
        /// Recipient.
        to: u8,
        /// Which pending post.
        pick: u8,
    },
    /// The board delivers every pending post to `to`, in order.
    Flush {
        /// Recipient.
        to: u8,
    },
    /// The board delivers every pending post to everyone, until nothing is pending.
    FlushAll,
    /// The board drops the next pending post of `kind` for `to` (a later
    /// [`Action::Replay`] may still deliver it: a long delay).
    Drop {
        /// Recipient.
        to: u8,
        /// Which posts.
        kind: Kind,
    },
    /// The board re-delivers an earlier post of this meeting (modulo the posts made so far)
    /// to `to`, whoever it was for: duplication and replay.
    Replay {
        /// Recipient.
        to: u8,
        /// Board index.
        index: u16,
    },
    /// The board delivers a post recorded from another instance of the meeting (same
    /// meeting ID and identities, another UUID).
    ReplayForeign {
        /// Recipient.
        to: u8,
        /// Index into the foreign recording.
        index: u16,
    },
    /// The server posts a `Leave` notice about `who` (true or not).
    NoticeLeave {
        /// About whom.
        who: u8,
    },
    /// The server posts a `LeaderChange` naming `who`.
    NoticeLeaderChange {
        /// The named leader.
        who: u8,
    },
    /// The adversary's participant joins again with its identity key and a fresh session
    /// (after a kick, a leave, or while its old session still runs).
    MalloryRejoin,
    /// `by` runs the leader command "kick `who`" (refused unless `by` leads).
    Kick {
        /// Who issues it.
        by: u8,
        /// Whom.
        who: u8,
    },
    /// `who` leaves the meeting.
    Leave {
        /// Who.
        who: u8,
    },
    /// `by` locks the meeting (refused unless `by` leads).
    Lock {
        /// Who issues it.
        by: u8,
    },
    /// `by` unlocks the meeting (refused unless `by` leads).
    Unlock {
        /// Who issues it.
        by: u8,
    },
    /// The board announces a fresh identity of its own (a Sybil: a valid self-signed
    /// binding and a liveness nonce for this meeting, from a session it then abandons).
    InjectIdentity,
    /// The board delivers to `to` the next pending key announcement whose binding carries an
    /// ML-KEM-768 key, with the key stripped (so a leader would box that participant's keys
    /// classically; issue 16). Nothing when none is pending.
    StripPq {
        /// Recipient.
        to: u8,
    },
    /// The board delivers to `to` the next pending hybrid-signed post (revision 4) as the
    /// classical message it gets by dropping the ML-DSA half (issue 16 part 2). Nothing when
    /// none is pending.
    StripPqSig {
        /// Recipient.
        to: u8,
    },
    /// Keyctl revision 5's threat: a quantum adversary, which can forge Ed25519 but not
    /// ML-DSA-65, comes back as party `victim` (any party, whether it is present, left or
    /// was kicked) under its `IVK`. The world grants the adversary `victim`'s Ed25519 seed
    /// for this action only (the oracle of a quantum computer that recovered the secret
    /// scalar), and the adversary starts a fresh session under `victim`'s participant ID
    /// with it: a classical identity, or when `other_ml_dsa`, a hybrid identity whose
    /// ML-DSA-65 key is another than `victim`'s. The board posts that session's
    /// announcement and nonce (and whatever else it posts later) as the others' posts, to
    /// be delivered by the other actions, and hands the session every post of the board as
    /// soon as there is one (the board is on its side). The session replaces the previous
    /// forgery, if any; at most [`crate::MAX_FORGED`] per run take effect. I9 says nobody
    /// honest admits or keys it.
    ForgeRejoin {
        /// Whose identity (modulo [`crate::PARTIES`]).
        victim: u8,
        /// A hybrid identity with another ML-DSA-65 key instead of a classical one.
        other_ml_dsa: bool,
    },
    /// Virtual time passes by [`ADVANCE_MS`]`[step]`, firing every due timer; when
    /// `deliver`, the board delivers everything pending after each timer (a fair board
    /// for that stretch).
    Advance {
        /// Index into [`ADVANCE_MS`] (modulo).
        step: u8,
        /// Whether the board is fair meanwhile.
        deliver: bool,
    },
}

impl Action {
    /// Decodes a byte string into actions: one opcode byte, then the parameter bytes the
    /// opcode takes; a truncated last action is dropped. Every byte string is valid, so
    /// a fuzzer's mutations stay meaningful.
    pub fn decode(mut bytes: &[u8]) -> Vec<Self> {
        let mut out = Vec::new();
        while let Some((&op, rest)) = bytes.split_first() {
            bytes = rest;
            let mut arg = || -> Option<u8> {
                let (&b, rest) = bytes.split_first()?;
                bytes = rest;
                Some(b)
            };
            let action = if op == STRIP_PQ_OPCODE {
                arg().map(|to| Self::StripPq { to })
            } else if op == STRIP_PQ_SIG_OPCODE {
                arg().map(|to| Self::StripPqSig { to })
            } else if op == FORGE_REJOIN_OPCODE {
                arg().and_then(|victim| {
                    Some(Self::ForgeRejoin {
                        victim,
                        other_ml_dsa: arg()? & 1 == 1,
                    })
                })
            } else {
                Self::decode_one(op, &mut arg)
            };
            match action {
                Some(a) => out.push(a),
                None => break,
            }
        }
        out
    }

    /// Decodes an action of any opcode but [`STRIP_PQ_OPCODE`], [`STRIP_PQ_SIG_OPCODE`] and
    /// [`FORGE_REJOIN_OPCODE`], taking its parameters from `arg`.
    fn decode_one(op: u8, arg: &mut impl FnMut() -> Option<u8>) -> Option<Self> {
        match op % 15 {
            0 => arg().and_then(|to| Some(Self::Deliver { to, pick: arg()? })),
            1 => arg().map(|to| Self::Flush { to }),
            2 => Some(Self::FlushAll),
            3 => arg().and_then(|to| {
                Some(Self::Drop {
                    to,
                    kind: Kind::from_byte(arg()?),
                })
            }),
            4 => arg().and_then(|to| {
                Some(Self::Replay {
                    to,
                    index: u16::from_le_bytes([arg()?, arg()?]),
                })
            }),
            5 => arg().and_then(|to| {
                Some(Self::ReplayForeign {
                    to,
                    index: u16::from_le_bytes([arg()?, arg()?]),
                })
            }),
            6 => arg().map(|who| Self::NoticeLeave { who }),
            7 => arg().map(|who| Self::NoticeLeaderChange { who }),
            8 => Some(Self::MalloryRejoin),
            9 => arg().and_then(|by| Some(Self::Kick { by, who: arg()? })),
            10 => arg().map(|who| Self::Leave { who }),
            11 => arg().map(|by| Self::Lock { by }),
            12 => arg().map(|by| Self::Unlock { by }),
            14 => Some(Self::InjectIdentity),
            _ => arg().map(|b| Self::Advance {
                step: b >> 1,
                deliver: b & 1 == 1,
            }),
        }
    }

    /// The inverse of [`Action::decode`] for one action (used to write seeds).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Deliver { to, pick } => out.extend([0, to, pick]),
            Self::Flush { to } => out.extend([1, to]),
            Self::FlushAll => out.push(2),
            Self::Drop { to, kind } => {
                let k = Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
                out.extend([3, to, u8::try_from(k).unwrap_or(0)]);
            }
            Self::Replay { to, index } => {
                out.extend([4, to]);
                out.extend(index.to_le_bytes());
            }
            Self::ReplayForeign { to, index } => {
                out.extend([5, to]);
                out.extend(index.to_le_bytes());
            }
            Self::NoticeLeave { who } => out.extend([6, who]),
            Self::NoticeLeaderChange { who } => out.extend([7, who]),
            Self::MalloryRejoin => out.push(8),
            Self::Kick { by, who } => out.extend([9, by, who]),
            Self::Leave { who } => out.extend([10, who]),
            Self::Lock { by } => out.extend([11, by]),
            Self::Unlock { by } => out.extend([12, by]),
            Self::Advance { step, deliver } => {
                out.extend([13, (step << 1) | u8::from(deliver)]);
            }
            Self::InjectIdentity => out.push(14),
            Self::StripPq { to } => out.extend([STRIP_PQ_OPCODE, to]),
            Self::StripPqSig { to } => out.extend([STRIP_PQ_SIG_OPCODE, to]),
            Self::ForgeRejoin {
                victim,
                other_ml_dsa,
            } => out.extend([FORGE_REJOIN_OPCODE, victim, u8::from(other_ml_dsa)]),
        }
    }
}

/// An action list printed as Rust, to paste into a regression test.
pub struct Repro<'a>(pub &'a [Action]);

impl fmt::Display for Repro<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[")?;
        for a in self.0 {
            writeln!(f, "    Action::{a:?},")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode() {
        let all = [
            Action::Deliver { to: 1, pick: 9 },
            Action::Flush { to: 2 },
            Action::FlushAll,
            Action::Drop {
                to: 3,
                kind: Kind::Heartbeat,
            },
            Action::Replay { to: 0, index: 513 },
            Action::ReplayForeign { to: 1, index: 7 },
            Action::NoticeLeave { who: 2 },
            Action::NoticeLeaderChange { who: 3 },
            Action::MalloryRejoin,
            Action::Kick { by: 0, who: 3 },
            Action::Leave { who: 1 },
            Action::Lock { by: 0 },
            Action::Unlock { by: 1 },
            Action::Advance {
                step: 7,
                deliver: true,
            },
            Action::InjectIdentity,
            Action::StripPq { to: 0 },
            Action::StripPqSig { to: 1 },
            Action::ForgeRejoin {
                victim: 2,
                other_ml_dsa: false,
            },
            Action::ForgeRejoin {
                victim: 200,
                other_ml_dsa: true,
            },
        ];
        let mut bytes = Vec::new();
        for a in &all {
            a.encode(&mut bytes);
        }
        assert_eq!(Action::decode(&bytes), all);
        // A truncated last action is dropped, never misread.
        assert_eq!(
            Action::decode(&bytes[..bytes.len() - 1]),
            all[..all.len() - 1]
        );
    }
}
