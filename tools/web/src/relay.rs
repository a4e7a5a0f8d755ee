//! The browser's registration at the relay, sans-IO: what to send on the WebTransport session
//! and when (docs/PROTOCOL.md, "Relay registration" and "Browser members").
//!
//! The same datagrams a sidecar sends over UDP: a register carrying the board's ticket, the
//! relay's challenge answered by the same register with the cookie echoed, a refresh every
//! [`REFRESH_INTERVAL`], a leave (with the cookie) when the participant ends. Half way to the
//! ticket's expiry the participant asks the board for a fresh one, as a sidecar does, and
//! again every [`RENEWAL_RETRY_MS`] while none comes. The relay is
//! untrusted: a forged challenge can only make the next refresh carry a wrong cookie, which the
//! relay answers with a challenge again, and media never depends on the relay for integrity.

use keyctl::meeting::Millis;
use keyctl::wire::{MeetingRef, ParticipantId};
use veil_relay::registration::{Kind, REFRESH_INTERVAL, Registrant, TicketMac};
use veil_relay::ticket::{relay_meeting, relay_token};

/// How long a participant waits for a renewed ticket before it asks the board again.
pub(crate) const RENEWAL_RETRY_MS: u64 = 30_000;

/// Where a participant stands with the relay.
#[derive(Debug)]
pub(crate) struct Registrar {
    me: Registrant,
    next_refresh: Millis,
    /// When the current ticket arrived (the page's clock is unix milliseconds, `Date.now()`,
    /// which the ticket's expiry in unix seconds is measured against).
    ticket_since: Millis,
    /// When the board was last asked for a fresh ticket, while none has come.
    renewal_asked: Option<Millis>,
}

/// Milliseconds between refreshes.
fn refresh_ms() -> u64 {
    u64::try_from(REFRESH_INTERVAL.as_millis()).unwrap_or(u64::MAX)
}

impl Registrar {
    /// Registers `me` for `meeting`'s media under the board's `ticket` (none for an open
    /// relay); the first register is due at once.
    pub(crate) fn new(
        meeting: &MeetingRef,
        me: &ParticipantId,
        ticket: Option<TicketMac>,
        now: Millis,
    ) -> Self {
        Self {
            me: Registrant {
                meeting_id: relay_meeting(meeting),
                token: relay_token(me),
                ticket,
                cookie: None,
            },
            next_refresh: now,
            ticket_since: now,
            renewal_asked: None,
        }
    }

    /// A renewed ticket, presented from the next refresh on (the cookie does not cover it).
    /// The same ticket again changes nothing. The last ask is kept: a board that answers every
    /// ask with a ticket already expired still gets one ask per [`RENEWAL_RETRY_MS`].
    pub(crate) fn renew(&mut self, ticket: TicketMac, now: Millis) {
        if self.me.ticket != Some(ticket) {
            self.me.ticket = Some(ticket);
            self.ticket_since = now;
        }
    }

    /// When the board should next be asked for a fresh ticket: half way from the ticket's
    /// arrival to its expiry, then every [`RENEWAL_RETRY_MS`] while none comes. `None` without
    /// a ticket (an open relay). An expiry already past asks at once.
    pub(crate) fn renewal_due(&self) -> Option<Millis> {
        let ticket = self.me.ticket?;
        let expiry_ms = ticket.expiry.saturating_mul(1000);
        let half = expiry_ms.saturating_sub(self.ticket_since.0) / 2;
        let due = self.ticket_since.after(half);
        Some(match self.renewal_asked {
            Some(asked) => due.max(asked.after(RENEWAL_RETRY_MS)),
            None => due,
        })
    }

    /// Whether to ask the board for a fresh ticket at `now`; if so, the ask is recorded.
    pub(crate) fn take_renewal(&mut self, now: Millis) -> bool {
        if self.renewal_due().is_some_and(|due| due <= now) {
            self.renewal_asked = Some(now);
            true
        } else {
            false
        }
    }

    /// When the next refresh is due.
    pub(crate) fn next_refresh(&self) -> Millis {
        self.next_refresh
    }

    /// The register (or refresh) datagram if one is due at `now`, scheduling the next.
    pub(crate) fn due(&mut self, now: Millis) -> Option<Vec<u8>> {
        if now < self.next_refresh {
            return None;
        }
        self.next_refresh = now.after(refresh_ms());
        self.datagram(Kind::Register)
    }

    /// If `datagram` is the relay's challenge: takes its cookie and returns the register that
    /// echoes it, to send at once. `None` for anything else.
    pub(crate) fn challenge(&mut self, datagram: &[u8]) -> Option<Vec<u8>> {
        if !self.me.take_challenge(datagram) {
            return None;
        }
        self.datagram(Kind::Register)
    }

    /// The leave, if the relay ever verified this participant (a leave without the cookie is
    /// refused anyway).
    pub(crate) fn leave(&self) -> Option<Vec<u8>> {
        self.me.cookie.and(self.datagram(Kind::Leave))
    }

    fn datagram(&self, kind: Kind) -> Option<Vec<u8>> {
        // relay_meeting and relay_token keep within the format's lengths, and a meeting ID
        // and device ID are never empty, so this encodes.
        self.me.datagram(kind).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keyctl::wire::{Field, Id};
    use veil_relay::registration::{Registration, emit_challenge};

    use super::*;

    fn registrar(now: Millis) -> Registrar {
        let meeting = MeetingRef {
            meeting_id: Id::new(Field::MeetingId, b"m").unwrap(),
            meeting_uuid: Id::new(Field::MeetingUuid, b"u").unwrap(),
        };
        let me = ParticipantId {
            user: Id::new(Field::UserId, b"guest").unwrap(),
            device: Id::new(Field::DeviceId, &[0xab; 16]).unwrap(),
        };
        let ticket = TicketMac {
            expiry: 99,
            mac: [5; 32],
        };
        Registrar::new(&meeting, &me, Some(ticket), now)
    }

    #[test]
    fn registers_at_once_then_every_refresh_interval() {
        let mut r = registrar(Millis(1_000));
        let first = Registration::parse(&r.due(Millis(1_000)).unwrap()).unwrap();
        assert_eq!(first.kind, Kind::Register);
        assert_eq!(first.meeting_id, b"m/u");
        assert_eq!(first.token, "ab".repeat(16));
        assert_eq!(first.ticket.unwrap().expiry, 99);
        assert_eq!(first.cookie, None);
        assert!(r.due(Millis(2_999)).is_none());
        assert_eq!(r.next_refresh(), Millis(3_000));
        assert!(r.due(Millis(3_000)).is_some());
    }

    #[test]
    fn a_challenge_is_answered_with_its_cookie_and_kept() {
        let mut r = registrar(Millis(0));
        assert!(r.leave().is_none(), "no leave before the relay verified us");
        assert!(
            r.challenge(&[0x80; 24]).is_none(),
            "media is not a challenge"
        );
        let answer = Registration::parse(&r.challenge(&emit_challenge(&[7; 16])).unwrap());
        assert_eq!(answer.unwrap().cookie, Some([7; 16]));
        let refresh = Registration::parse(&r.due(Millis(0)).unwrap()).unwrap();
        assert_eq!(refresh.cookie, Some([7; 16]));
        let leave = Registration::parse(&r.leave().unwrap()).unwrap();
        assert_eq!((leave.kind, leave.cookie), (Kind::Leave, Some([7; 16])));
    }

    #[test]
    fn a_renewal_is_asked_half_way_then_every_retry_until_a_new_ticket_comes() {
        // The ticket (expiry 99 s) arrived at 19 s: half way is 59 s.
        let mut r = registrar(Millis(19_000));
        assert_eq!(r.renewal_due(), Some(Millis(59_000)));
        assert!(!r.take_renewal(Millis(58_999)));
        assert!(r.take_renewal(Millis(59_000)));
        assert!(!r.take_renewal(Millis(59_001)), "asked once per retry");
        assert_eq!(r.renewal_due(), Some(Millis(59_000 + RENEWAL_RETRY_MS)));
        assert!(r.take_renewal(Millis(89_000)));
        // The same ticket again (a replayed frame) does not reset the schedule.
        let same = r.me.ticket.unwrap();
        r.renew(same, Millis(90_000));
        assert_eq!(r.renewal_due(), Some(Millis(89_000 + RENEWAL_RETRY_MS)));
        // A fresh one (expiry 299 s at 99 s) moves it half way along the new one: 199 s.
        let fresh = TicketMac {
            expiry: 299,
            mac: [6; 32],
        };
        r.renew(fresh, Millis(99_000));
        assert_eq!(r.renewal_due(), Some(Millis(199_000)));
        let refresh = Registration::parse(&r.due(Millis(99_000)).unwrap()).unwrap();
        assert_eq!(refresh.ticket, Some(fresh));
    }

    #[test]
    fn a_board_answering_with_expired_tickets_gets_one_ask_per_retry() {
        let mut r = registrar(Millis(200_000));
        assert!(r.take_renewal(Millis(200_000)), "expiry 99 s is past");
        // Every answer a fresh ticket, already expired: no ask before the retry.
        for (i, at) in (200_020..229_999).step_by(20).enumerate() {
            let mut mac = [1; 32];
            mac[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let expired = TicketMac { expiry: 100, mac };
            r.renew(expired, Millis(at));
            assert!(!r.take_renewal(Millis(at)), "asked again at {at}");
        }
        assert!(r.take_renewal(Millis(230_000)));
    }

    #[test]
    fn an_expired_ticket_asks_at_once_and_no_ticket_asks_never() {
        let mut r = registrar(Millis(500_000));
        assert!(r.take_renewal(Millis(500_000)), "expiry 99 s is long past");
        let mut open = Registrar::new(
            &MeetingRef {
                meeting_id: Id::new(Field::MeetingId, b"m").unwrap(),
                meeting_uuid: Id::new(Field::MeetingUuid, b"u").unwrap(),
            },
            &ParticipantId {
                user: Id::new(Field::UserId, b"guest").unwrap(),
                device: Id::new(Field::DeviceId, &[0xab; 16]).unwrap(),
            },
            None,
            Millis(0),
        );
        assert_eq!(open.renewal_due(), None);
        assert!(!open.take_renewal(Millis(u64::MAX)));
    }
}
