//! The participant's thread: board events in, keyctl session pumped, events out.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyctl::meeting::{Event, InviteSecret, LeftReason, Session, invite_id};
use keyctl::rng::OsRng;
use keyctl::wire::MeetingRef;

use super::status::ParticipantStatus;
use super::{BoardLost, Command, ParticipantEvent};
use veil_board::client::{BoardClient, BoardEvent};

/// Longest wait on the board before looking at commands again.
const COMMAND_POLL: Duration = Duration::from_millis(50);

/// Why the pump stopped.
enum Stop {
    /// keyctl ended the session.
    Left(LeftReason),
    /// The board connection is gone.
    BoardLost(BoardLost),
    /// The handle asked to drop the connection silently.
    Vanish,
}

/// The thread's state: the board connection and the session it drives.
pub(crate) struct Pump {
    pub(crate) client: BoardClient,
    pub(crate) session: Session,
    pub(crate) rng: OsRng,
    pub(crate) commands: Receiver<Command>,
    pub(crate) events: Sender<ParticipantEvent>,
    pub(crate) status: Arc<Mutex<ParticipantStatus>>,
    pub(crate) relay_ticket: super::SharedTicket,
    pub(crate) clock: Arc<dyn super::Clock>,
    /// The host's invite secret, when this participant issues invites.
    pub(crate) host_secret: Option<InviteSecret>,
    /// The meeting instance (its meetingID is in every invite).
    pub(crate) meeting: MeetingRef,
}

impl Pump {
    fn with_status(&self, f: impl FnOnce(&mut ParticipantStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Runs until the session ends or the board is lost; the session (and every key in
    /// it) is dropped on return.
    pub(crate) fn run(mut self) {
        let stop = self.pump();
        let ended = match &stop {
            Stop::Left(reason) => format!("{reason:?}"),
            Stop::BoardLost(why) => format!("board lost: {why}"),
            Stop::Vanish => "disconnected".to_owned(),
        };
        match stop {
            Stop::Left(LeftReason::Requested) => {
                let _ = self.client.bye();
            }
            Stop::Left(_) | Stop::Vanish => {}
            Stop::BoardLost(why) => {
                tracing::warn!(error = %why, "board connection lost; the session is over");
                let _ = self.events.send(ParticipantEvent::BoardLost(why));
            }
        }
        self.with_status(|s| s.ended = Some(ended));
    }

    fn pump(&mut self) -> Stop {
        loop {
            if let Some(stop) = self.flush() {
                return stop;
            }
            match self.commands.try_recv() {
                Ok(cmd) => {
                    if let Some(stop) = self.command(cmd) {
                        return stop;
                    }
                    continue;
                }
                Err(TryRecvError::Empty) => {}
                // The handle is gone without leaving: leave for it.
                Err(TryRecvError::Disconnected) => {
                    if let Some(stop) = self.command(Command::Leave) {
                        return stop;
                    }
                    continue;
                }
            }
            let now = self.clock.now();
            let wait = self
                .session
                .poll_timeout()
                .map_or(COMMAND_POLL, |t| Duration::from_millis(t.since(now)))
                .min(COMMAND_POLL);
            match self.client.recv(wait) {
                Ok(Some(event)) => {
                    if let Some(stop) = self.board_event(event) {
                        return stop;
                    }
                }
                Ok(None) => {}
                Err(e) => return Stop::BoardLost(BoardLost::Receive(Arc::new(e))),
            }
            let now = self.clock.now();
            if self.session.poll_timeout().is_some_and(|t| t <= now)
                && let Err(e) = self.session.handle_timeout(now, &mut self.rng)
            {
                tracing::warn!(error = %e, "meeting timer failed");
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Option<Stop> {
        let now = self.clock.now();
        let result = match cmd {
            Command::Kick(who) => {
                let kicked = self.session.kick(now, &who, &mut self.rng);
                // keyctl bans the kicked identity (its participant ID and IVK); a browser
                // makes a fresh identity per page load, so its invite is banned too: the
                // same link no longer admits anyone (a new userID's invite does).
                match (&kicked, &self.host_secret) {
                    (Ok(()), Some(secret)) => {
                        let invite = invite_id(secret, &self.meeting, &who.user);
                        self.session.ban_invite(now, &invite, &mut self.rng)
                    }
                    _ => kicked,
                }
            }
            Command::Lock => self.session.lock(),
            Command::Unlock => self.session.unlock(),
            Command::RequestLock(locked) => self.session.request_lock(locked),
            Command::Leave => self.session.leave(),
            Command::Vanish => return Some(Stop::Vanish),
            Command::RenewRelayTicket => {
                if let Err(e) = self.client.request_relay_ticket() {
                    return Some(Stop::BoardLost(BoardLost::Send(Arc::new(e))));
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "meeting command refused");
        }
        self.flush()
    }

    fn board_event(&mut self, event: BoardEvent) -> Option<Stop> {
        match event {
            BoardEvent::Message(bytes) => {
                let now = self.clock.now();
                if let Err(e) = self.session.handle(now, &bytes, &mut self.rng) {
                    // Untrusted input: count it and go on (keyctl left its state unchanged).
                    tracing::debug!(error = %e, "board message refused");
                    self.with_status(|s| s.refused_messages += 1);
                }
            }
            BoardEvent::Joined(_) => self.with_status(|s| s.joins += 1),
            BoardEvent::Left(_) => self.with_status(|s| s.leaves += 1),
            BoardEvent::Refused(why) => {
                tracing::warn!(reason = %why, "the board refused");
            }
            BoardEvent::Cohosts(list) => {
                let _ = self.session.set_cohosts(list);
            }
            BoardEvent::RelayTicket(ticket) => {
                *self
                    .relay_ticket
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(ticket);
            }
            BoardEvent::Ended => {
                return Some(Stop::BoardLost(BoardLost::Ended));
            }
        }
        None
    }

    /// Posts what the session wants posted and hands its events on. Returns why to stop,
    /// once the session ended (after its last posts went out) or a post failed.
    fn flush(&mut self) -> Option<Stop> {
        while let Some(msg) = self.session.poll_transmit() {
            if let Err(e) = self.client.post(&msg) {
                return Some(Stop::BoardLost(BoardLost::Send(Arc::new(e))));
            }
        }
        let mut left = None;
        while let Some(event) = self.session.poll_event() {
            let out = match event {
                Event::KeyUpdate(update) => {
                    self.with_status(|s| s.rotations += 1);
                    ParticipantEvent::Key(update)
                }
                Event::RetireEpoch { mk_seq, at } => ParticipantEvent::Retire { mk_seq, at },
                Event::Alert(alert) => {
                    tracing::warn!(?alert, "meeting alert");
                    self.with_status(|s| s.alerts.push(format!("{alert:?}")));
                    ParticipantEvent::Alert(alert)
                }
                Event::Left(reason) => {
                    left = Some(reason);
                    ParticipantEvent::Left(reason)
                }
            };
            let _ = self.events.send(out);
        }
        let session = &self.session;
        self.with_status(|s| s.refresh(session));
        left.map(Stop::Left)
    }
}
