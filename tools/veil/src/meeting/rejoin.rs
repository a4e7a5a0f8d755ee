//! Rejoining after a lost session: which endings a rejoin can repair, the backoff between
//! attempts, and a [`Rejoiner`] that dials on a thread of its own so its driver stays
//! responsive (signals, admin requests) while an attempt connects.
//!
//! A rejoin is a fresh join with the same identity key: the board derives the same deviceID
//! from it, so it is the same participant (whitepaper 3.7.7: a rejoin with the same userID and
//! deviceID must carry the same IVK). The session itself is new. After a board restart the
//! meeting instance is new too (a new meetingUUID), and every key of it with it. The design
//! expects clients to come back on their own: v4.6 (locked meetings) lets a participant the
//! LPL lists rejoin a locked meeting "so participants who drop out due to network issues
//! automatically reconnect".

use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use keyctl::crypto::SigningKey;
use keyctl::meeting::{LeftReason, Timings};

use super::{MeetingDriverError, Participant, ParticipantEvent, ParticipantOptions};
use veil_board::BoardError;
use veil_board::client::{ClientOptions, Join};

/// The first delay before a rejoin attempt. Long enough that the board has closed the old
/// connection before the new hello arrives (it refuses a second live connection of one
/// participant, and a refusal ends the rejoining) and that a supervised board restart is
/// usually listening again; short next to the protocol's own delays before media flows
/// (the leader's join batch and the key's activation delay, seconds together).
pub const FIRST_DELAY: Duration = Duration::from_millis(250);

/// The longest delay between attempts: once the board has been gone for a while, media
/// resumes at most this long after it is back, and a meeting of sidecars costs the board
/// about one connection attempt per sidecar every few seconds while it is down.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Whether a session that ended with `event` is worth rejoining.
///
/// Yes when the board connection was lost or the board ended the meeting (a board restart),
/// when the leader's heartbeats stopped (whitepaper 3.7.7: the leader vanished; the board
/// names a new one to those who join), and when the leader's list records this device as gone
/// (keyctl: "the driver may rejoin"), and when a certified key never arrived (a board that
/// withheld one participant's rekey: a new admission gets a fresh box). No after a kick or a requested leave (the user or the
/// leader decided), none after the board named a leader outside a locked meeting's list
/// (v4.6 locked meetings: an alarm, not an outage), and none after this device (`--pq
/// required`) refused a leader with a weaker post-quantum policy (it would meet it again).
pub fn rejoins_after(event: &ParticipantEvent) -> bool {
    match event {
        ParticipantEvent::BoardLost(_) => true,
        // Every reason is named, so a reason keyctl adds must be decided here.
        ParticipantEvent::Left(reason) => match reason {
            LeftReason::HeartbeatsMissed | LeftReason::ListedAsLeft | LeftReason::KeyWithheld => {
                true
            }
            LeftReason::Requested
            | LeftReason::Kicked
            | LeftReason::LeaderNotInLockedList
            | LeftReason::WeakPqPolicy => false,
        },
        ParticipantEvent::Key(_) | ParticipantEvent::Retire { .. } | ParticipantEvent::Alert(_) => {
            false
        }
    }
}

/// Exponential backoff with "equal jitter": attempt n waits a uniformly random time between
/// half and all of `min(FIRST_DELAY * 2^n, MAX_DELAY)`. The random half spreads a meeting's
/// sidecars, which all lose a restarted board at the same instant, over the window instead
/// of reconnecting in lockstep; the fixed half keeps every wait at least half its nominal
/// length (a fully random wait could be near zero and hammer a board that is coming up).
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt, from 32 random bits; each call doubles the next.
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let nominal = FIRST_DELAY
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(MAX_DELAY);
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(spread.saturating_mul(u64::from(random)) >> 32)
    }

    /// Starts over at [`FIRST_DELAY`] (the session that came of the last attempt got a key).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What [`Rejoiner::poll`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejoin {
    /// Waiting for the next attempt, or an attempt is connecting.
    Pending,
    /// Welcomed into the meeting: a new session.
    Joined(Participant),
    /// The board refused the join (for example another live connection of this identity):
    /// no more attempts.
    Refused(MeetingDriverError),
}

/// Where the rejoiner is.
#[derive(Debug)]
enum Dial {
    /// In a session, or given up.
    Idle,
    /// The next attempt starts at this instant.
    Waiting(Instant),
    /// An attempt is connecting on its own thread.
    Running(Receiver<Result<Participant, MeetingDriverError>>),
}

/// Joins a meeting, and joins it again with the same identity when told the session was
/// lost, with [`Backoff`] between attempts. Non-blocking after the first join: attempts run
/// on a thread of their own, [`Rejoiner::poll`] collects them. Dropping it abandons an
/// attempt in flight (its session, if it gets one, posts a leave and ends).
#[derive(Debug)]
pub struct Rejoiner {
    board: ClientOptions,
    join: Join,
    identity: SigningKey,
    timings: Timings,
    pq: keyctl::wire::PqPolicy,
    clock: std::sync::Arc<dyn super::Clock>,
    host_secret: Option<keyctl::meeting::InviteSecret>,
    invite: Option<keyctl::meeting::Invite>,
    backoff: Backoff,
    dial: Dial,
    attempts: u64,
}

impl Rejoiner {
    /// Remembers how to join; joins nothing yet.
    pub fn new(opts: ParticipantOptions) -> Self {
        Self {
            board: opts.board,
            join: opts.join,
            identity: opts.identity,
            timings: opts.timings,
            pq: opts.pq,
            clock: opts.clock,
            host_secret: opts.host_secret,
            invite: opts.invite,
            backoff: Backoff::default(),
            dial: Dial::Idle,
            attempts: 0,
        }
    }

    fn options(&self) -> Result<ParticipantOptions, MeetingDriverError> {
        let identity = SigningKey::from_seed(self.identity.seed())
            .map_err(|e| MeetingDriverError::Session(e.into()))?;
        Ok(ParticipantOptions {
            board: self.board.clone(),
            join: self.join.clone(),
            identity,
            timings: self.timings,
            pq: self.pq,
            clock: std::sync::Arc::clone(&self.clock),
            host_secret: self.host_secret.clone(),
            invite: self.invite.clone(),
        })
    }

    /// The first join, blocking until welcomed or refused.
    pub fn join(&self) -> Result<Participant, MeetingDriverError> {
        Participant::spawn(self.options()?)
    }

    /// The session was lost: schedules the next attempt and returns how long until it.
    pub fn lost(&mut self, now: Instant) -> Duration {
        let mut random = [0u8; 4];
        // Without randomness the wait is the nominal delay: still backing off, only in step.
        let random = match aws_lc_rs::rand::fill(&mut random) {
            Ok(()) => u32::from_le_bytes(random),
            Err(_) => u32::MAX,
        };
        let delay = self.backoff.next_delay(random);
        self.dial = Dial::Waiting(now + delay);
        delay
    }

    /// The session holds a key: the next loss starts the backoff over. (A session that is
    /// welcomed but never keyed, for example under a frozen leader, keeps backing off.)
    pub fn settled(&mut self) {
        self.backoff.reset();
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Starts an attempt when one is due and collects one that finished.
    pub fn poll(&mut self, now: Instant) -> Rejoin {
        match &self.dial {
            Dial::Idle => Rejoin::Pending,
            Dial::Waiting(at) if now < *at => Rejoin::Pending,
            Dial::Waiting(_) => {
                self.attempts += 1;
                tracing::info!(attempt = self.attempts, board = %self.board.addr, "rejoining the meeting");
                match self.start_attempt() {
                    Ok(rx) => self.dial = Dial::Running(rx),
                    Err(error) => self.failed(now, &error),
                }
                Rejoin::Pending
            }
            Dial::Running(rx) => match rx.try_recv() {
                Err(TryRecvError::Empty) => Rejoin::Pending,
                Ok(Ok(participant)) => {
                    self.dial = Dial::Idle;
                    Rejoin::Joined(participant)
                }
                Ok(Err(error @ MeetingDriverError::Board(BoardError::Refused(_)))) => {
                    self.dial = Dial::Idle;
                    Rejoin::Refused(error)
                }
                Ok(Err(error)) => {
                    self.failed(now, &error);
                    Rejoin::Pending
                }
                Err(TryRecvError::Disconnected) => {
                    let error = MeetingDriverError::RejoinThreadDied;
                    self.failed(now, &error);
                    Rejoin::Pending
                }
            },
        }
    }

    fn failed(&mut self, now: Instant, error: &MeetingDriverError) {
        let delay = self.lost(now);
        tracing::info!(
            attempt = self.attempts,
            %error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "rejoin attempt failed"
        );
    }

    fn start_attempt(
        &self,
    ) -> Result<Receiver<Result<Participant, MeetingDriverError>>, MeetingDriverError> {
        let opts = self.options()?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("veil-rejoin".into())
            .spawn(move || {
                // A send to an abandoned rejoiner drops the participant: it leaves at once.
                let _ = tx.send(Participant::spawn(opts));
            })
            .map_err(MeetingDriverError::Spawn)?;
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::BoardLost;

    #[test]
    fn the_delay_doubles_from_the_first_to_the_cap_within_its_jitter() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        let mut nominal = FIRST_DELAY;
        for _ in 0..10 {
            let (l, h) = (low.next_delay(0), high.next_delay(u32::MAX));
            assert_eq!(l, nominal / 2);
            assert!(
                h <= nominal && h >= nominal - Duration::from_millis(1),
                "{h:?}"
            );
            nominal = (nominal * 2).min(MAX_DELAY);
        }
        assert_eq!(low.next_delay(0), MAX_DELAY / 2);
        low.reset();
        assert_eq!(low.next_delay(0), FIRST_DELAY / 2);
        let mut many = Backoff::default();
        for _ in 0..100 {
            assert!(many.next_delay(u32::MAX) <= MAX_DELAY);
        }
    }

    #[test]
    fn only_outages_are_rejoined() {
        let rejoin = [
            ParticipantEvent::BoardLost(BoardLost::Ended),
            ParticipantEvent::Left(LeftReason::HeartbeatsMissed),
            ParticipantEvent::Left(LeftReason::ListedAsLeft),
            ParticipantEvent::Left(LeftReason::KeyWithheld),
        ];
        let stay_out = [
            ParticipantEvent::Left(LeftReason::Kicked),
            ParticipantEvent::Left(LeftReason::Requested),
            ParticipantEvent::Left(LeftReason::LeaderNotInLockedList),
            ParticipantEvent::Left(LeftReason::WeakPqPolicy),
            ParticipantEvent::Retire {
                mk_seq: 1,
                at: keyctl::meeting::Millis(0),
            },
        ];
        assert!(rejoin.iter().all(rejoins_after));
        assert!(!stay_out.iter().any(rejoins_after));
    }
}
