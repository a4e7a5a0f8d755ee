//! One browser participant: the board's frames in and out, keyctl's session, and the keyring
//! its media is sealed and opened with.

use std::collections::VecDeque;

use dataplane::batch::stream_index;
use dataplane::keyring::{Handoff, WorkerKeys};
use dataplane::packet::{HEADROOM, Protected};
use dataplane::sframe::CipherSuite;
use dataplane::stream_key::StreamId;
use keyctl::crypto::SigningKey;
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::meeting::{
    Alert, Config, Event, LeftReason, MeetingError, Millis, PqPolicy, RosterView, Session, Timings,
};
use keyctl::rand_core::TryCryptoRng;
use keyctl::wire::{Field, Id, MeetingRef, MemberState, ParticipantId};
use veil_board::frame::{ClientFrame, Hello, MAX_TEXT, ServerFrame};
use veil_relay::registration::{TicketMac, is_registration};

use super::error::WebError;
use super::link::MeetingLink;
use super::relay::Registrar;

/// A frame's length prefix.
const FRAME_HEADER: usize = 4;
/// Largest media payload sealed: what fits a 1500-byte path with IPv6, UDP and Veil's framing.
pub const MAX_PAYLOAD: usize = 1200;
/// Bytes after a payload for the tag.
const TAG_ROOM: usize = 16;
/// Alerts kept for [`WebParticipant::status`] (the latest; every one is also an event).
pub const MAX_ALERTS: usize = 64;

/// What happened, for the page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebEvent {
    /// The board welcomed this participant into a meeting instance.
    Joined {
        /// This participant as the board named it.
        me: ParticipantId,
        /// The leader the board named (keyctl checks it).
        leader: ParticipantId,
    },
    /// A meeting key was certified and installed: media seals and opens under it.
    Keyed {
        /// Its `mkSeqNum`.
        mk_seq: u32,
    },
    /// keyctl raised an alert (a changed security code, a withheld key, ...).
    Alert(Alert),
    /// The board says someone joined or left (untrusted: the signed list decides).
    Presence,
    /// The session ended, for this reason; every key is erased.
    Left(LeftReason),
    /// The board refused this participant or ended the meeting.
    BoardEnded(String),
}

/// Refusals counted by kind (the board's messages, media), for the page's diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Board messages refused (malformed, unexpected, or refused by keyctl).
    pub board_refused: u64,
    /// Datagrams that did not open.
    pub media_refused: u64,
    /// Datagrams opened.
    pub media_opened: u64,
    /// Datagrams sealed.
    pub media_sealed: u64,
    /// Datagrams from the relay that start like a registration but are not its challenge.
    pub relay_refused: u64,
}

/// One entry of the leader's signed participant list, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The sender slot the leader assigned.
    pub slot: u32,
    /// The display name the member announced (signed by its identity key).
    pub name: String,
    /// `present`, `left` or `kicked`.
    pub state: &'static str,
}

/// What the page shows of this participant (`window.veilStatus()`): everything from the
/// verified session, nothing the board said on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebStatus {
    /// The leader's 39-digit security code (whitepaper 3.10), once keyed.
    pub security_code: Option<String>,
    /// The leader's signed list, as verified.
    pub participants: Vec<Member>,
    /// The `mkSeqNum` of the latest meeting key installed.
    pub mk_seq: Option<u32>,
    /// Datagrams sealed.
    pub packets_sealed: u64,
    /// Datagrams opened.
    pub packets_opened: u64,
    /// Datagrams refused.
    pub packets_refused: u64,
    /// Board messages refused.
    pub board_refused: u64,
    /// The latest alerts (at most [`MAX_ALERTS`]), oldest first.
    pub alerts: Vec<String>,
    /// Why this participant is out of the meeting, once it is (every key erased).
    pub ended: Option<String>,
}

impl WebStatus {
    /// The status as the page's `window.veilStatus()` returns it: a JSON object with
    /// `securityCode`, `participants` (`slot`, `name`, `state`), `mkSeqNum`, `packetsSealed`,
    /// `packetsOpened`, `packetsRefused`, `boardRefused`, `alerts` and `ended` (absent values
    /// are `null`).
    pub fn to_json(&self) -> String {
        let text = |t: Option<&str>| t.map_or_else(|| "null".to_owned(), json_string);
        let participants: Vec<String> = self
            .participants
            .iter()
            .map(|m| {
                format!(
                    "{{\"slot\":{},\"name\":{},\"state\":{}}}",
                    m.slot,
                    json_string(&m.name),
                    json_string(m.state)
                )
            })
            .collect();
        let alerts: Vec<String> = self.alerts.iter().map(|a| json_string(a)).collect();
        format!(
            "{{\"securityCode\":{},\"participants\":[{}],\"mkSeqNum\":{},\"packetsSealed\":{},\
             \"packetsOpened\":{},\"packetsRefused\":{},\"boardRefused\":{},\"alerts\":[{}],\
             \"ended\":{}}}",
            text(self.security_code.as_deref()),
            participants.join(","),
            self.mk_seq
                .map_or_else(|| "null".to_owned(), |k| k.to_string()),
            self.packets_sealed,
            self.packets_opened,
            self.packets_refused,
            self.board_refused,
            alerts.join(","),
            text(self.ended.as_deref()),
        )
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped (a display
/// name is whatever its owner signed).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Present => "present",
        MemberState::Left => "left",
        MemberState::Kicked => "kicked",
    }
}

enum State {
    /// Hello sent, waiting for the welcome.
    Greeting,
    /// In the meeting.
    Joined(Box<Joined>),
    /// Out of it, keys erased.
    Ended,
}

struct Joined {
    meeting: MeetingRef,
    session: Session,
    handoff: Handoff,
    worker: WorkerKeys,
    relay_ticket: Option<TicketMac>,
    /// The registration at the relay, when the link names one.
    registrar: Option<Registrar>,
}

/// A page's identity for one meeting: hybrid (Ed25519 + ML-DSA-65, keyctl revision 4) unless
/// the link says `pq=off`, as a sidecar's is unless `--pq off`, so a leader that requires
/// post-quantum authentication admits browsers too.
enum PageIdentity {
    /// Ed25519 only (`pq=off`).
    Classical(SigningKey),
    /// Ed25519 + ML-DSA-65.
    Hybrid(Box<HybridSigningKey>),
}

impl PageIdentity {
    fn ivk(&self) -> [u8; 32] {
        match self {
            Self::Classical(key) => key.verifying_key(),
            Self::Hybrid(key) => key.ed25519().verifying_key(),
        }
    }
}

/// A browser participant (see the crate docs).
pub struct WebParticipant {
    link: MeetingLink,
    name: String,
    /// Made for this meeting and dropped with it (zeroized by keyctl on drop).
    identity: Option<PageIdentity>,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    /// The one registration datagram waiting for the relay session: a newer one replaces it
    /// (it carries the current ticket and cookie), so forged challenges cannot queue up.
    relay_transmit: Option<Vec<u8>>,
    /// The sender slot of the last datagram opened.
    last_sender: Option<u32>,
    events: VecDeque<WebEvent>,
    counters: Counters,
    /// The latest key installed.
    mk_seq: Option<u32>,
    /// The latest alerts, for [`Self::status`].
    alerts: VecDeque<String>,
    /// Why the participant ended.
    ended: Option<String>,
}

impl core::fmt::Debug for WebParticipant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebParticipant")
            .field("meeting", &self.link.meeting)
            .field("name", &self.name)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl WebParticipant {
    /// A participant for `link` under `name`, with a fresh identity from `rng` (Ed25519 and
    /// ML-DSA-65, or Ed25519 alone under `pq=off`); its
    /// hello to the board is the first message [`Self::poll_transmit`] gives. A link that
    /// names its `user` (the userID its invite was made for) joins under that name: `name`
    /// must then be it or empty ([`WebError::NotLinkUser`] otherwise).
    pub fn new<R: TryCryptoRng + ?Sized>(
        link: MeetingLink,
        name: &str,
        rng: &mut R,
    ) -> Result<Self, WebError> {
        let name = match &link.user {
            Some(user) if name.is_empty() || name == user => user.clone(),
            Some(_) => return Err(WebError::NotLinkUser),
            None => name.to_owned(),
        };
        if name.is_empty() || name.len() > MAX_TEXT {
            return Err(WebError::Name);
        }
        let identity = match link.pq {
            PqPolicy::Off => {
                PageIdentity::Classical(SigningKey::generate(rng).map_err(MeetingError::from)?)
            }
            PqPolicy::Preferred | PqPolicy::Required => PageIdentity::Hybrid(Box::new(
                HybridSigningKey::generate(rng).map_err(MeetingError::from)?,
            )),
        };
        let hello = ClientFrame::Hello(Hello {
            meeting_id: &link.meeting,
            name: &name,
            host: false,
            ivk: identity.ivk(),
        })
        .encode();
        Ok(Self {
            link,
            name,
            identity: Some(identity),
            state: State::Greeting,
            transmit: VecDeque::from([hello]),
            relay_transmit: None,
            last_sender: None,
            events: VecDeque::new(),
            counters: Counters::default(),
            mk_seq: None,
            alerts: VecDeque::new(),
            ended: None,
        })
    }

    /// The next message to send to the board (one WebSocket binary message).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next datagram to send on the relay's WebTransport session (a registration, a
    /// refresh or the answer to a challenge; media is what [`Self::seal`] returns).
    pub fn poll_relay_transmit(&mut self) -> Option<Vec<u8>> {
        self.relay_transmit.take()
    }

    /// The next event for the page.
    pub fn poll_event(&mut self) -> Option<WebEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match &self.state {
            State::Joined(j) => {
                let registrar = j.registrar.as_ref();
                let refresh = registrar.map(Registrar::next_refresh);
                let renewal = registrar.and_then(Registrar::renewal_due);
                [j.session.poll_timeout(), refresh, renewal]
                    .into_iter()
                    .flatten()
                    .min()
            }
            State::Greeting | State::Ended => None,
        }
    }

    /// The refusals counted so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The name this participant joins under (the board's userID for it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link this participant joined with.
    pub fn link(&self) -> &MeetingLink {
        &self.link
    }

    /// The meeting instance the board welcomed this participant into.
    pub fn meeting(&self) -> Option<&MeetingRef> {
        match &self.state {
            State::Joined(j) => Some(&j.meeting),
            State::Greeting | State::Ended => None,
        }
    }

    /// The signed participant list as this participant verified it (whitepaper 3.7.7).
    pub fn roster(&self) -> Option<RosterView> {
        match &self.state {
            State::Joined(j) => j.session.roster(),
            State::Greeting | State::Ended => None,
        }
    }

    /// What the page shows: the security code, the signed list, the key, the counters, the
    /// alerts and the end.
    pub fn status(&self) -> WebStatus {
        let participants = self.roster().map_or_else(Vec::new, |r| {
            r.entries
                .iter()
                .map(|e| Member {
                    slot: e.slot,
                    name: String::from_utf8_lossy(e.display_name.as_bytes()).into_owned(),
                    state: state_name(e.state),
                })
                .collect()
        });
        WebStatus {
            security_code: self.security_code(),
            participants,
            mk_seq: self.mk_seq,
            packets_sealed: self.counters.media_sealed,
            packets_opened: self.counters.media_opened,
            packets_refused: self.counters.media_refused,
            board_refused: self.counters.board_refused,
            alerts: self.alerts.iter().cloned().collect(),
            ended: self.ended.clone(),
        }
    }

    /// The leader's security code, to compare out of band (whitepaper 3.10).
    pub fn security_code(&self) -> Option<String> {
        match &self.state {
            State::Joined(j) => j.session.leader_security_code(),
            State::Greeting | State::Ended => None,
        }
    }

    /// The relay ticket the board issued with the welcome, for registering at the relay.
    pub fn relay_ticket(&self) -> Option<TicketMac> {
        match &self.state {
            State::Joined(j) => j.relay_ticket,
            State::Greeting | State::Ended => None,
        }
    }

    /// One message from the board (one WebSocket binary message: exactly one frame). A
    /// refused message changes nothing and is counted.
    pub fn handle_board<R: TryCryptoRng + ?Sized>(
        &mut self,
        message: &[u8],
        now: Millis,
        rng: &mut R,
    ) -> Result<(), WebError> {
        let result = self.board_message(message, now, rng);
        if result.is_err() {
            self.counters.board_refused += 1;
        }
        result
    }

    fn board_message<R: TryCryptoRng + ?Sized>(
        &mut self,
        message: &[u8],
        now: Millis,
        rng: &mut R,
    ) -> Result<(), WebError> {
        let (prefix, body) =
            message
                .split_first_chunk::<FRAME_HEADER>()
                .ok_or(WebError::FrameLength {
                    declared: 0,
                    got: message.len(),
                })?;
        let declared = u32::from_be_bytes(*prefix) as usize;
        if declared != body.len() {
            return Err(WebError::FrameLength {
                declared,
                got: body.len(),
            });
        }
        let frame = ServerFrame::parse(body)?;
        match (&mut self.state, frame) {
            (State::Ended, _) => Err(WebError::Ended),
            (State::Greeting, ServerFrame::Welcome(w)) => {
                let identity = self.identity.take().ok_or(WebError::Ended)?;
                let display_name = Id::new(Field::DisplayName, self.name.as_bytes())
                    .map_err(|_| WebError::Name)?;
                let config = Config {
                    meeting: w.meeting.clone(),
                    me: w.me.clone(),
                    display_name,
                    leader: w.leader.clone(),
                    invite: self.link.invite.clone(),
                    host_secret: None,
                    timings: Timings::default(),
                    pq: self.link.pq,
                };
                // Fails only if the random source does (the default timings are valid); the
                // identity is then gone and the next welcome is refused as Ended.
                let mut session = match identity {
                    PageIdentity::Classical(key) => Session::new(config, key, now, rng)?,
                    PageIdentity::Hybrid(key) => Session::new_hybrid(config, *key, now, rng)?,
                };
                let _ = session.set_cohosts(w.cohosts.iter().cloned());
                let handoff =
                    Handoff::new(w.me.clone(), &w.meeting, CipherSuite::Aes256GcmSha512_128);
                self.events.push_back(WebEvent::Joined {
                    me: w.me.clone(),
                    leader: w.leader.clone(),
                });
                let mut registrar = self
                    .link
                    .relay
                    .as_ref()
                    .map(|_| Registrar::new(&w.meeting, &w.me, w.relay_ticket, now));
                self.relay_transmit = registrar.as_mut().and_then(|r| r.due(now));
                self.state = State::Joined(Box::new(Joined {
                    meeting: w.meeting,
                    session,
                    handoff,
                    worker: WorkerKeys::new(self.link.media),
                    relay_ticket: w.relay_ticket,
                    registrar,
                }));
                self.pump(now);
                Ok(())
            }
            (State::Greeting, ServerFrame::Refused(reason)) => {
                self.end(WebEvent::BoardEnded(reason.to_owned()));
                Ok(())
            }
            (State::Greeting, _) => Err(WebError::Unexpected("a frame before the welcome")),
            (State::Joined(_), ServerFrame::Welcome(_)) => {
                Err(WebError::Unexpected("a second welcome"))
            }
            (State::Joined(j), ServerFrame::Deliver(bytes)) => {
                // keyctl raises its alerts (a changed IVK, a bad chain, a refused downgrade)
                // and may end the session before it returns the refusal: deliver those first.
                let handled = j.session.handle(now, bytes, rng);
                self.pump(now);
                handled.map_err(WebError::from)
            }
            (State::Joined(j), ServerFrame::Cohosts(list)) => {
                let _ = j.session.set_cohosts(list);
                self.pump(now);
                Ok(())
            }
            (State::Joined(_), ServerFrame::Joined(_) | ServerFrame::Left(_)) => {
                self.events.push_back(WebEvent::Presence);
                Ok(())
            }
            (State::Joined(j), ServerFrame::RelayTicket(ticket)) => {
                j.relay_ticket = Some(ticket);
                if let Some(registrar) = &mut j.registrar {
                    registrar.renew(ticket, now);
                }
                Ok(())
            }
            (State::Joined(_), ServerFrame::Refused(reason)) => {
                self.end(WebEvent::BoardEnded(reason.to_owned()));
                Ok(())
            }
            (State::Joined(_), ServerFrame::Ended) => {
                self.end(WebEvent::BoardEnded("the meeting ended".to_owned()));
                Ok(())
            }
        }
    }

    /// Runs keyctl's timers (heartbeats, rotations, retirements) at `now`.
    pub fn handle_timeout<R: TryCryptoRng + ?Sized>(
        &mut self,
        now: Millis,
        rng: &mut R,
    ) -> Result<(), WebError> {
        let State::Joined(j) = &mut self.state else {
            return Ok(());
        };
        if let Some(refresh) = j.registrar.as_mut().and_then(|r| r.due(now)) {
            self.relay_transmit = Some(refresh);
        }
        // Half way to the ticket's expiry, ask the board for a fresh one (a sidecar does the
        // same); it comes back as a RelayTicket frame, presented from the next refresh on.
        if j.registrar.as_mut().is_some_and(|r| r.take_renewal(now)) {
            self.transmit.push_back(ClientFrame::TicketRequest.encode());
        }
        let handled = j.session.handle_timeout(now, rng);
        self.pump(now);
        handled.map_err(WebError::from)
    }

    /// Leaves the meeting: the signed Leave goes to the board, then every key is erased.
    pub fn leave(&mut self, now: Millis) -> Result<(), WebError> {
        let State::Joined(j) = &mut self.state else {
            return Err(WebError::NotJoined);
        };
        j.session.leave()?;
        self.pump(now);
        if !matches!(self.state, State::Ended) {
            self.end(WebEvent::Left(LeftReason::Requested));
        }
        Ok(())
    }

    /// Seals `payload` under the key that sends at `now`: in datagram mode any bytes, in RTP
    /// mode (`media=rtp`) an RTP packet, whose header stays clear and whose SSRC picks the
    /// stream.
    pub fn seal(&mut self, now: Millis, payload: &[u8]) -> Result<Vec<u8>, WebError> {
        let State::Joined(j) = &mut self.state else {
            return Err(WebError::NotJoined);
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(WebError::TooLarge(payload.len()));
        }
        // Datagram mode: stream 0. RTP mode: the SSRC's low byte (the sidecars' rule,
        // dataplane::batch::stream_index), and the payload must be an RTP packet.
        let stream = stream_index(self.link.media, payload).ok_or(WebError::NotRtp)?;
        let mut buf = vec![0u8; HEADROOM + payload.len() + TAG_ROOM];
        buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
        let snapshot = j.handoff.keyring().load_full();
        let range = j
            .worker
            .seal(&snapshot, now, stream, &mut buf, HEADROOM, payload.len())?;
        self.counters.media_sealed += 1;
        Ok(buf[range].to_vec())
    }

    /// One datagram from the relay's session: the plaintext of media, `None` for the relay's
    /// challenge (answered through [`Self::poll_relay_transmit`]), or a typed refusal
    /// (counted).
    pub fn handle_relay(
        &mut self,
        now: Millis,
        datagram: &[u8],
    ) -> Result<Option<Vec<u8>>, WebError> {
        if !is_registration(datagram) {
            return self.open(now, datagram).map(Some);
        }
        let State::Joined(j) = &mut self.state else {
            return Err(WebError::NotJoined);
        };
        match j.registrar.as_mut().and_then(|r| r.challenge(datagram)) {
            Some(answer) => {
                self.relay_transmit = Some(answer);
                Ok(None)
            }
            None => {
                self.counters.relay_refused += 1;
                Err(WebError::RelayDatagram)
            }
        }
    }

    /// The roster slot of the sender of the last datagram that opened (authenticated: its key
    /// is that sender's), so a page can keep one decoder per sender.
    pub fn last_sender(&self) -> Option<u32> {
        self.last_sender
    }

    /// Opens a received datagram: its plaintext, or a typed refusal (counted).
    pub fn open(&mut self, now: Millis, datagram: &[u8]) -> Result<Vec<u8>, WebError> {
        let State::Joined(j) = &mut self.state else {
            return Err(WebError::NotJoined);
        };
        let mut buf = datagram.to_vec();
        let snapshot = j.handoff.keyring().load_full();
        // The sender's roster slot is in the KID (RFC 9605 4.3, docs/PROTOCOL.md "Stream keys
        // and KIDs"); it is the sender's only once the packet authenticated, below.
        let sender = Protected::parse(self.link.media, datagram)
            .ok()
            .map(|p| StreamId::from_kid(p.header.kid).sender_slot);
        match j.worker.open(&snapshot, now, &mut buf) {
            Ok(range) => {
                self.counters.media_opened += 1;
                self.last_sender = sender;
                Ok(buf[range].to_vec())
            }
            Err(e) => {
                self.counters.media_refused += 1;
                Err(e.into())
            }
        }
    }

    /// Moves the session's posts to the transmit queue and its events to the keyring and the
    /// page; ends the participant if the session ended.
    fn pump(&mut self, now: Millis) {
        let State::Joined(j) = &mut self.state else {
            return;
        };
        while let Some(message) = j.session.poll_transmit() {
            self.transmit
                .push_back(ClientFrame::Post(&message.to_bytes()).encode());
        }
        let mut left = None;
        while let Some(event) = j.session.poll_event() {
            // A key the keyring refuses is reported by the session's alerts and the missing
            // Keyed event; media then simply does not seal under it.
            let installed = j.handoff.handle(&j.meeting, &event, now).is_ok();
            match event {
                Event::KeyUpdate(update) if installed => {
                    self.mk_seq = Some(update.mk_seq);
                    self.events.push_back(WebEvent::Keyed {
                        mk_seq: update.mk_seq,
                    });
                }
                Event::KeyUpdate(_) | Event::RetireEpoch { .. } => {}
                Event::Alert(alert) => {
                    if self.alerts.len() == MAX_ALERTS {
                        self.alerts.pop_front();
                    }
                    self.alerts.push_back(format!("{alert:?}"));
                    self.events.push_back(WebEvent::Alert(alert));
                }
                Event::Left(reason) => left = Some(reason),
            }
        }
        if let Some(reason) = left {
            self.end(WebEvent::Left(reason));
        }
    }

    /// Erases every key and ends: the session (and with it the box and meeting keys) is
    /// dropped, the keyring emptied.
    fn end(&mut self, event: WebEvent) {
        if let State::Joined(j) = &self.state {
            j.handoff.erase();
            // Out of the relay's fan-out at once rather than at the registration's expiry.
            self.relay_transmit = j.registrar.as_ref().and_then(Registrar::leave);
        }
        self.identity = None;
        self.state = State::Ended;
        self.ended = Some(match &event {
            WebEvent::Left(reason) => format!("{reason:?}"),
            WebEvent::BoardEnded(why) => format!("board: {why}"),
            other => format!("{other:?}"),
        });
        self.events.push_back(event);
    }
}

impl Drop for WebParticipant {
    fn drop(&mut self) {
        // Page unload: the keyring's keys are erased in place (the session zeroizes its own).
        if let State::Joined(j) = &self.state {
            j.handoff.erase();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_json_escapes_what_a_name_may_hold() {
        assert_eq!(
            json_string("a\"b\\c\n\u{1}\u{2028}é"),
            r#""a\"b\\c\u000a\u0001\u2028é""#
        );
        let status = WebStatus {
            participants: vec![Member {
                slot: 2,
                name: "</script>\"".into(),
                state: "kicked",
            }],
            alerts: vec!["A".into()],
            ..WebStatus::default()
        };
        assert_eq!(
            status.to_json(),
            r#"{"securityCode":null,"participants":[{"slot":2,"name":"</script>\"","state":"kicked"}],"mkSeqNum":null,"packetsSealed":0,"packetsOpened":0,"packetsRefused":0,"boardRefused":0,"alerts":["A"],"ended":null}"#
        );
    }
}
