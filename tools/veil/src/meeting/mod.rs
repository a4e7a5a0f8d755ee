//! `veil_cli::meeting`: one participant of a meeting, end to end. A [`Participant`] is a thread
//! that pumps a [`keyctl::meeting::Session`] against a [`BoardClient`], with
//! the [`Clock`] its options give (the wall clock outside simulations, the dataplane keyring's
//! clock too) and keyctl's `OsRng`.
//!
//! Inputs from the board are untrusted: a message the session refuses is counted and logged
//! (the error, never a key) and the meeting goes on; only what keyctl says ends the session
//! ([`ParticipantEvent::Left`]) or a lost board connection ([`ParticipantEvent::BoardLost`])
//! stops the thread. Every key lives in the session and is zeroized when it ends.
//!
//! A session does not outlive its board connection; [`Rejoiner`] joins again with the same
//! identity after an outage (a lost board, a leader that vanished), with backoff.

mod pump;
mod rejoin;
mod status;

pub use rejoin::{Backoff, FIRST_DELAY, MAX_DELAY, Rejoin, Rejoiner, rejoins_after};
pub use status::{ParticipantStatus, RosterEntry, display};

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use keyctl::crypto::SigningKey;
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::meeting::{
    Alert, Config, Invite, InviteSecret, KeyUpdate, LeftReason, MeetingError, Millis, Session,
    Timings,
};
use keyctl::rng::OsRng;
pub use keyctl::time::{Clock, SystemClock};
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId, PqPolicy};
use thiserror::Error;

use veil_board::BoardError;
use veil_board::client::{BoardClient, ClientOptions, Join};

/// What a participant needs.
#[derive(Debug)]
pub struct ParticipantOptions {
    /// The board.
    pub board: ClientOptions,
    /// The meeting and name. `join.ivk` is overwritten with `identity`'s key.
    pub join: Join,
    /// The long-term identity key (from a keyctl identity file, or fresh). Unless
    /// `pq = off`, the session's identity is the hybrid one derived from it
    /// (`HybridSigningKey::from_ed25519_seed`: the same IVK, and an ML-DSA-65 key).
    pub identity: SigningKey,
    /// keyctl's timing rules (the whitepaper's by default).
    pub timings: Timings,
    /// Post-quantum key delivery (`--pq`): whether the session makes an ML-KEM-768 key, and,
    /// as leader, the meeting's policy (keyctl `Config::pq`).
    pub pq: PqPolicy,
    /// The time the session is told ([`SystemClock`] outside simulations).
    pub clock: Arc<dyn Clock>,
    /// The host's per-meeting invite secret (`veil sidecar --host --invites`): as leader the
    /// session admits only joiners proving an invite made with it (keyctl
    /// `Config::host_secret`, and the meeting becomes invite-only), and a kick bans the
    /// kicked user's invite too.
    pub host_secret: Option<InviteSecret>,
    /// This participant's invite, in an invite-only meeting (`$VEIL_INVITE`): the session
    /// proves it holds it, bound to its own binding; the invite never crosses the board.
    pub invite: Option<Invite>,
}

/// What the participant reports, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ParticipantEvent {
    /// A certified meeting key: hand it to the dataplane (`dataplane::keyring::Handoff`).
    Key(KeyUpdate),
    /// Stop decrypting `mk_seq` at `at`.
    Retire {
        /// The epoch.
        mk_seq: u32,
        /// When.
        at: Millis,
    },
    /// Something the user must see.
    Alert(Alert),
    /// The session ended (kicked, refused, heartbeat loss, requested...); it holds no key.
    Left(LeftReason),
    /// The board connection failed; the session is over and its keys are gone.
    BoardLost(BoardLost),
}

/// Why a running session lost its board.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum BoardLost {
    /// Receiving from the board failed (the connection closed, TLS failed, a bad frame).
    #[error("receiving: {0}")]
    Receive(Arc<BoardError>),
    /// A post or a relay ticket request could not be sent.
    #[error("sending: {0}")]
    Send(Arc<BoardError>),
    /// The board said the meeting (or the board) ended.
    #[error("the board ended the meeting")]
    Ended,
}

/// Why a participant could not start or stop cleanly.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MeetingDriverError {
    /// The board connection failed or refused the join.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// keyctl refused to start the session (for example invalid timings).
    #[error("meeting session: {0}")]
    Session(#[from] MeetingError),
    /// The name is not a valid display name.
    #[error("invalid name: {0}")]
    Name(keyctl::wire::WireError),
    /// The participant's thread could not be started.
    #[error("cannot start the participant's thread: {0}")]
    Spawn(std::io::Error),
    /// The pump thread panicked.
    #[error("the participant's thread panicked")]
    Panicked,
    /// A rejoin attempt's thread ended without an answer.
    #[error("the rejoin attempt's thread ended without an answer")]
    RejoinThreadDied,
}

/// A command from the handle to the pump thread.
#[derive(Debug)]
pub(crate) enum Command {
    Kick(ParticipantId),
    Lock,
    Unlock,
    RequestLock(bool),
    Leave,
    /// Drop the board connection without a word, as a crash would.
    Vanish,
    /// Ask the board for a fresh relay ticket.
    RenewRelayTicket,
}

/// The relay ticket of the session: from the Welcome, replaced by each renewal.
pub(crate) type SharedTicket = Arc<Mutex<Option<veil_relay::registration::TicketMac>>>;

/// A running participant: a pump thread, its events, and a status snapshot.
#[derive(Debug)]
pub struct Participant {
    me: ParticipantId,
    meeting: MeetingRef,
    relay_ticket: SharedTicket,
    commands: Sender<Command>,
    events: Receiver<ParticipantEvent>,
    status: Arc<Mutex<ParticipantStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Participant {
    /// Connects to the board, joins, starts the session, and returns once welcomed.
    pub fn spawn(opts: ParticipantOptions) -> Result<Self, MeetingDriverError> {
        let ParticipantOptions {
            board,
            mut join,
            identity,
            timings,
            pq,
            clock,
            host_secret,
            invite,
        } = opts;
        timings.validate()?;
        join.ivk = identity.verifying_key();
        let display_name =
            Id::new(Field::DisplayName, join.name.as_bytes()).map_err(MeetingDriverError::Name)?;
        let (client, welcome) = BoardClient::connect(&board, &join)?;
        let mut rng = OsRng::new();
        let cfg = Config {
            meeting: welcome.meeting.clone(),
            me: welcome.me.clone(),
            display_name,
            leader: welcome.leader.clone(),
            invite,
            host_secret: host_secret.clone(),
            timings,
            pq,
        };
        // Unless `--pq off`, the identity is hybrid (keyctl revision 4): the Ed25519 key and the
        // ML-DSA-65 key derived from its seed, so every signature is hybrid, and a `required`
        // leader admits only hybrid identities. Under `off`, Ed25519 alone, byte for byte as
        // before.
        let mut session = if pq != PqPolicy::Off {
            let hybrid = HybridSigningKey::from_ed25519_seed(identity.seed())
                .map_err(|e| MeetingDriverError::Session(e.into()))?;
            Session::new_hybrid(cfg, hybrid, clock.now(), &mut rng)?
        } else {
            Session::new(cfg, identity, clock.now(), &mut rng)?
        };
        session.set_cohosts(welcome.cohosts.iter().cloned())?;
        let status = Arc::new(Mutex::new(ParticipantStatus::new(&welcome)));
        let relay_ticket: SharedTicket = Arc::new(Mutex::new(welcome.relay_ticket));
        let (commands, command_rx) = channel();
        let (event_tx, events) = channel();
        let pump = pump::Pump {
            client,
            session,
            rng,
            commands: command_rx,
            events: event_tx,
            status: Arc::clone(&status),
            relay_ticket: Arc::clone(&relay_ticket),
            clock,
            host_secret,
            meeting: welcome.meeting.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("participant-{}", display(&welcome.me)))
            .spawn(move || pump.run())
            .map_err(MeetingDriverError::Spawn)?;
        Ok(Self {
            me: welcome.me,
            meeting: welcome.meeting,
            relay_ticket,
            commands,
            events,
            status,
            thread: Some(thread),
        })
    }

    /// This participant's ID, as the board assigned it.
    pub fn me(&self) -> &ParticipantId {
        &self.me
    }

    /// The meeting instance the board welcomed this participant into (a board restart
    /// starts a new instance: a new meetingUUID).
    pub fn meeting(&self) -> &MeetingRef {
        &self.meeting
    }

    /// The relay ticket the board issued with this session's Welcome or, after
    /// [`Participant::renew_relay_ticket`], the fresh one (`None` from a board without
    /// `--ticket-key`).
    pub fn relay_ticket(&self) -> Option<veil_relay::registration::TicketMac> {
        *self
            .relay_ticket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the board for a fresh relay ticket ([`Participant::relay_ticket`] shows it once
    /// it arrived).
    pub fn renew_relay_ticket(&self) {
        let _ = self.commands.send(Command::RenewRelayTicket);
    }

    /// The events, in order (a `std::sync::mpsc` receiver).
    pub fn events(&self) -> &Receiver<ParticipantEvent> {
        &self.events
    }

    /// A copy of the current status.
    pub fn status(&self) -> ParticipantStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Leader command: removes `who` and rotates the key at once. A non-leader's request
    /// is refused by keyctl and counted in the status's errors.
    pub fn kick(&self, who: &ParticipantId) {
        let _ = self.commands.send(Command::Kick(who.clone()));
    }

    /// Leader command: locks the meeting (newcomers are refused).
    pub fn lock(&self) {
        let _ = self.commands.send(Command::Lock);
    }

    /// Leader command: unlocks the meeting (everyone gets an alert).
    pub fn unlock(&self) {
        let _ = self.commands.send(Command::Unlock);
    }

    /// Co-host command: asks the leader to lock (`true`) or unlock the meeting. The leader
    /// acts only on co-hosts the board names (joined with `host`) and on a request signed
    /// over its latest list; if the list moved on, ask again.
    pub fn request_lock(&self, locked: bool) {
        let _ = self.commands.send(Command::RequestLock(locked));
    }

    /// Posts a leave, says goodbye to the board, and joins the thread; every key is gone
    /// when this returns.
    pub fn leave(mut self) -> Result<(), MeetingDriverError> {
        let _ = self.commands.send(Command::Leave);
        self.join_thread()
    }

    /// Drops the board connection without posting a leave, as a crash would (for tests of
    /// the board's leave and leader-change notices). Keys are zeroized all the same.
    pub fn vanish(mut self) -> Result<(), MeetingDriverError> {
        let _ = self.commands.send(Command::Vanish);
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<(), MeetingDriverError> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| MeetingDriverError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.commands.send(Command::Leave);
            let _ = self.join_thread();
        }
    }
}
