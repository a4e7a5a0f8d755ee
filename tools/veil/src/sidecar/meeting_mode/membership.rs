//! The sidecar's membership of the meeting across sessions: the current session's events
//! applied to the keyring, the relay registration and the security code; and, when a session
//! is lost, every key dropped and the meeting rejoined with the same identity.
//!
//! A rejoin is a new session, often in a new meeting instance (a restarted board hands out a
//! new meetingUUID): keys of the old session are never carried into it (stream keys bind the
//! meetingUUID, and the old keys are erased when the session ends), the handoff's keyring serves
//! the new instance from the rejoin on and learns this device's slot from the new session's
//! first key (the workers keep running on it), the relay registration moves to the new
//! `meetingID/meetingUUID`, and the new leader's security code is printed again (whitepaper
//! 3.8, 3.10: re-check the code on every join or rejoin and leader change).

use std::sync::mpsc::Receiver;
use std::time::Instant;

use dataplane::keyring::{Handoff, Keyring};
use keyctl::wire::ParticipantId;

use super::admin::{AdminCommand, Record, apply_commands, status_json};
use super::keys;
use crate::meeting::{Participant, ParticipantEvent, ParticipantStatus, Rejoin, Rejoiner};
use crate::sidecar::SidecarError;
use crate::sidecar::metrics::Exposed;
use crate::sidecar::registrar::Registrar;

/// Where the sidecar stands in the meeting.
enum Link {
    /// In a session.
    In(Participant),
    /// Between sessions: the rejoiner backs off or connects.
    Rejoining,
    /// Out for good (kicked, left, refused, or `--no-rejoin`): keyless until SIGTERM.
    Out,
}

/// The meeting as the main loop drives it.
pub(super) struct Membership {
    link: Link,
    rejoiner: Rejoiner,
    rejoin: bool,
    /// keyctl's key events into the keyring the workers read.
    handoff: Handoff,
    registrar: Registrar,
    roster: Vec<(u32, ParticipantId)>,
    code_shown: Option<String>,
    /// The current session's status (the last one's once out; empty while rejoining).
    session: ParticipantStatus,
    record: Record,
    /// When a fresh relay ticket was last asked for.
    renewal_asked: Option<Instant>,
}

/// How long to wait for a renewed relay ticket before asking again.
const RENEWAL_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a session ended, for logs and `/status`; None for events that do not end it.
fn end_reason(event: &ParticipantEvent) -> Option<String> {
    match event {
        ParticipantEvent::Left(reason) => Some(format!("{reason:?}")),
        ParticipantEvent::BoardLost(why) => Some(format!("board lost: {why}")),
        _ => None,
    }
}

/// The relay's meeting for a session: `meetingID/meetingUUID`, so each instance is its own
/// fan-out group.
pub(super) fn relay_meeting(status: &ParticipantStatus) -> Vec<u8> {
    let mut meeting = status.meeting.clone().into_bytes();
    meeting.truncate(veil_relay::registration::MAX_MEETING_ID);
    meeting
}

impl Membership {
    /// In the first session; `rejoin` is false under `--no-rejoin`.
    pub(super) fn new(
        participant: Participant,
        rejoiner: Rejoiner,
        rejoin: bool,
        handoff: Handoff,
        registrar: Registrar,
    ) -> Self {
        Self {
            session: participant.status(),
            link: Link::In(participant),
            rejoiner,
            rejoin,
            handoff,
            registrar,
            roster: Vec::new(),
            code_shown: None,
            record: Record::default(),
            renewal_asked: None,
        }
    }

    /// The keyring the workers run on.
    pub(super) fn keyring(&self) -> &Keyring {
        self.handoff.keyring()
    }

    /// One turn of the main loop: the session's events and the leader commands, or the
    /// rejoin.
    pub(super) fn tick(&mut self, commands: &Receiver<AdminCommand>) -> Result<(), SidecarError> {
        match self.link {
            Link::In(_) => self.pump(commands),
            Link::Rejoining => {
                self.rejoin_poll()?;
                // Leader commands need a session; between sessions they are void.
                while commands.try_recv().is_ok() {}
                Ok(())
            }
            Link::Out => {
                while commands.try_recv().is_ok() {}
                Ok(())
            }
        }
    }

    fn pump(&mut self, commands: &Receiver<AdminCommand>) -> Result<(), SidecarError> {
        let Link::In(participant) = &self.link else {
            return Ok(());
        };
        let mut end = None;
        while let Ok(event) = participant.events().try_recv() {
            match event {
                ParticipantEvent::Key(update) => {
                    self.roster = update.roster.iter().map(|(s, p)| (*s, p.clone())).collect();
                    keys::install(&self.handoff, participant.meeting(), &update)?;
                    tracing::info!(mk_seq = update.mk_seq, "meeting key installed");
                    // In the meeting for real: a later loss backs off from the start again.
                    self.rejoiner.settled();
                }
                ParticipantEvent::Retire { mk_seq, at } => {
                    if let Err(error) = self.handoff.retire(participant.meeting(), mk_seq, at) {
                        tracing::warn!(mk_seq, %error, "retirement refused");
                    }
                }
                ParticipantEvent::Alert(alert) => tracing::warn!(?alert, "meeting alert"),
                other => {
                    if let Some(reason) = end_reason(&other) {
                        end = Some((other, reason));
                        break;
                    }
                }
            }
        }
        apply_commands(commands, participant, &self.roster);
        self.session = participant.status();
        if self.session.security_code != self.code_shown
            && let Some(code) = &self.session.security_code
        {
            // Printed for the user to compare out of band (whitepaper 3.8), once per
            // session and leader.
            println!("meeting leader security code: {code}");
            self.code_shown = Some(code.clone());
        }
        match end {
            Some((event, reason)) => {
                self.end(&event, reason);
                Ok(())
            }
            None => {
                // The relay ticket: present the newest, and ask for a fresh one half way to
                // its expiry (at most once per RENEWAL_RETRY while none comes).
                if let Some(ticket) = participant.relay_ticket() {
                    self.registrar.renew(ticket);
                }
                let now = Instant::now();
                if self.registrar.renewal_due(veil_relay::ticket::unix_now())
                    && self
                        .renewal_asked
                        .is_none_or(|at| now.duration_since(at) >= RENEWAL_RETRY)
                {
                    participant.renew_relay_ticket();
                    self.renewal_asked = Some(now);
                }
                self.registrar.tick(now);
                Ok(())
            }
        }
    }

    /// The session is over: every key goes (whitepaper 3.7.8; the workers let go of theirs at
    /// their next snapshot), the relay stops sending here, and either a rejoin is scheduled or
    /// the sidecar stays out.
    fn end(&mut self, event: &ParticipantEvent, reason: String) {
        self.handoff.erase();
        self.registrar.leave();
        self.roster.clear();
        self.record.last_end = Some(reason.clone());
        if self.rejoin && crate::meeting::rejoins_after(event) {
            let delay = self.rejoiner.lost(Instant::now());
            tracing::warn!(
                %reason,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "the meeting session ended; every key dropped; rejoining"
            );
            self.session = ParticipantStatus {
                me: self.session.me.clone(),
                ..ParticipantStatus::default()
            };
            self.record.rejoining = true;
            self.link = Link::Rejoining;
        } else {
            tracing::error!(%reason, "the meeting session ended; every key dropped");
            self.record.ended = Some(reason);
            self.link = Link::Out;
        }
    }

    fn rejoin_poll(&mut self) -> Result<(), SidecarError> {
        let polled = self.rejoiner.poll(Instant::now());
        self.record.rejoin_attempts = self.rejoiner.attempts();
        match polled {
            Rejoin::Joined(participant) => {
                self.handoff.enter(participant.meeting());
                self.session = participant.status();
                self.registrar
                    .move_to(&relay_meeting(&self.session), participant.relay_ticket())?;
                self.code_shown = None;
                self.record.rejoins += 1;
                self.record.rejoining = false;
                tracing::info!(
                    meeting = %self.session.meeting,
                    leader = %self.session.leader,
                    rejoins = self.record.rejoins,
                    "rejoined the meeting"
                );
                self.link = Link::In(participant);
            }
            Rejoin::Refused(error) => {
                tracing::error!(%error, "rejoin refused by the board; staying out");
                self.record.ended = Some(format!("rejoin refused: {error}"));
                self.record.rejoining = false;
                self.link = Link::Out;
            }
            _ => {}
        }
        Ok(())
    }

    /// `/status` now.
    pub(super) fn status(&self, exposed: &Exposed) -> serde_json::Value {
        status_json(
            &self.session,
            self.handoff.own_slot(),
            &self.record,
            exposed,
        )
    }

    /// SIGTERM: leaves the relay and the meeting (posting a leave if in a session); an
    /// attempt in flight is abandoned. Returns the handoff, for the caller to drop (zeroizing
    /// every key) once the workers are gone.
    pub(super) fn leave(self) -> Handoff {
        self.registrar.leave();
        if let Link::In(participant) = self.link
            && let Err(error) = participant.leave()
        {
            tracing::warn!(%error, "leaving the meeting");
        }
        self.handoff
    }
}
