//! The handoff: keyctl's events for this device, applied to the keyring the workers read.
//!
//! keyctl emits, for one participant of one meeting instance, certified keys
//! ([`Event::KeyUpdate`]: the meeting key of one `mkSeqNum`, the roster of sender slots it was
//! certified for, when to start sending with it), retirements ([`Event::RetireEpoch`]) and the
//! end of the session ([`Event::Left`]). A [`Handoff`] is the one place where they meet the
//! dataplane: it finds this device's slot in each key's roster (whitepaper 3.7.4: the leader
//! assigns each admitted participant its slot), installs the key as an epoch that seals under
//! that slot, retires epochs when told, and erases every key when the session ends
//! (whitepaper 3.7.8). Every driver (the sidecar, libveil, the tests) goes through it.
//!
//! The slot is published with the epoch, in the same snapshot swap, so workers already running
//! on the keyring learn it with their next snapshot: nothing restarts. It stays with that epoch
//! for good (a roster that moves this device to another slot applies from the next key on,
//! which has its own MK, sender instance and counters), so under one key this device seals under
//! one slot only, and the reflection check of an epoch always knows the slot this device sealed
//! under in it (RFC 9605 4.4.1, 4.4.3; docs/PROTOCOL.md "Nonce uniqueness").

use std::sync::Arc;

use keyctl::meeting::{Event, KeyUpdate};
use keyctl::wire::{MeetingRef, ParticipantId};

use super::{EpochKey, Keyring, KeyringError, MeetingConfig, Millis, NO_SLOT};
use crate::sframe::CipherSuite;

/// Why the handoff refused an event; nothing changed.
///
/// Exhaustive on purpose, as the errors it wraps: libveil and the sidecar map every variant
/// (docs/ARCHITECTURE.md, "Exhaustive errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    /// The event came from a session in another meeting instance than the keyring serves
    /// (stream keys bind meetingID and meetingUUID, so the key would seal media nobody in
    /// either instance can open).
    #[error("key {mk_seq} is for another meeting instance than the keyring serves")]
    WrongMeeting {
        /// The key's (or retirement's) mkSeqNum.
        mk_seq: u32,
    },
    /// The roster names this device under two slots. keyctl's list holds each participant
    /// once, so only a broken or hostile control plane sends this; which slot to seal under
    /// and which to refuse as reflected would be a guess, so the key is refused whole.
    #[error("the roster of key {mk_seq} names this device under slots {first} and {second}")]
    NamedTwice {
        /// The key's mkSeqNum.
        mk_seq: u32,
        /// The lower slot.
        first: u32,
        /// Another.
        second: u32,
    },
    /// The keyring refused the key (not newer, a slot beyond the KID layout, no randomness).
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// What a handled event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// A key was installed; this device seals under `own_slot` in it (`None`: its roster
    /// does not name this device, so the epoch only receives).
    Installed {
        /// The key's mkSeqNum.
        mk_seq: u32,
        /// This device's slot in the key's roster.
        own_slot: Option<u32>,
    },
    /// An epoch was set to retire.
    Retired {
        /// The epoch.
        mk_seq: u32,
    },
    /// The session ended: every key was erased.
    Erased,
    /// Nothing for the dataplane (an alert).
    Ignored,
}

/// This device's slot in `update`'s roster: `None` if it is not listed, an error if it is
/// listed twice.
pub fn own_slot_in(update: &KeyUpdate, me: &ParticipantId) -> Result<Option<u32>, HandoffError> {
    let mut mine = update
        .roster
        .iter()
        .filter_map(|(slot, who)| (who == me).then_some(*slot));
    match (mine.next(), mine.next()) {
        (Some(first), Some(second)) => Err(HandoffError::NamedTwice {
            mk_seq: update.mk_seq,
            first,
            second,
        }),
        (slot, _) => Ok(slot),
    }
}

/// keyctl's key events for one device, applied to the keyring its workers read: see the
/// module docs.
#[derive(Debug, Clone)]
pub struct Handoff {
    me: ParticipantId,
    keyring: Arc<Keyring>,
}

impl Handoff {
    /// The handoff of device `me` in `meeting`'s instance, with a new keyring of `suite` that
    /// holds no key and no slot yet (outgoing media has nothing to seal with until the first
    /// key names this device).
    pub fn new(me: ParticipantId, meeting: &MeetingRef, suite: CipherSuite) -> Self {
        let config = MeetingConfig {
            meeting_id: meeting.meeting_id.as_bytes().to_vec(),
            meeting_uuid: meeting.meeting_uuid.as_bytes().to_vec(),
            own_slot: NO_SLOT,
            suite,
        };
        Self::attach(me, Arc::new(Keyring::new(config)))
    }

    /// The handoff of device `me` onto an existing keyring (libveil links a session to a
    /// protector created before it): it serves the keyring's meeting instance.
    pub fn attach(me: ParticipantId, keyring: Arc<Keyring>) -> Self {
        Self { me, keyring }
    }

    /// The keyring the workers read: hand a clone to each of them, once.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The device whose slot this handoff finds.
    pub fn me(&self) -> &ParticipantId {
        &self.me
    }

    /// This device's slot in the newest key held, `None` before the first key, after the
    /// session ended, or if the newest key's roster does not name it.
    pub fn own_slot(&self) -> Option<u32> {
        self.keyring
            .load()
            .newest()
            .and_then(|epoch| epoch.own_slot())
    }

    /// Applies one of keyctl's events from the session in `meeting` at `now`: a key is
    /// installed ([`Self::install`]), a retirement applied ([`Self::retire`]), the end of the
    /// session erases every key ([`Self::erase`]); anything else is [`Handled::Ignored`].
    pub fn handle(
        &self,
        meeting: &MeetingRef,
        event: &Event,
        now: Millis,
    ) -> Result<Handled, HandoffError> {
        match event {
            Event::KeyUpdate(update) => {
                let own_slot = self.install(meeting, update, now)?;
                Ok(Handled::Installed {
                    mk_seq: update.mk_seq,
                    own_slot,
                })
            }
            Event::RetireEpoch { mk_seq, at } => {
                self.retire(meeting, *mk_seq, *at)?;
                Ok(Handled::Retired { mk_seq: *mk_seq })
            }
            Event::Left(_) => {
                self.erase();
                Ok(Handled::Erased)
            }
            Event::Alert(_) => Ok(Handled::Ignored),
        }
    }

    /// Installs a certified key from the session in `meeting` at `now` (whitepaper 3.7.6: it
    /// decrypts at once and sends from `update.activate_at`), sealing under this device's slot
    /// in its roster; returns that slot (`None`: not listed, the epoch only receives). Epochs
    /// retired by `now` are freed on the way. A key for another instance, a roster naming this
    /// device twice, or a key the keyring refuses changes nothing.
    pub fn install(
        &self,
        meeting: &MeetingRef,
        update: &KeyUpdate,
        now: Millis,
    ) -> Result<Option<u32>, HandoffError> {
        let own_slot = own_slot_in(update, &self.me)?;
        self.keyring
            .install_for(meeting, EpochKey::from(update), own_slot, now)?;
        self.keyring.prune(now);
        Ok(own_slot)
    }

    /// Retires `mk_seq` of the session in `meeting` at `at`, or sooner if already due
    /// (keyctl's `RetireEpoch`: 10 s after a newer key arrived, v4.6 liveness). An unknown
    /// epoch is ignored; one of another instance is refused.
    pub fn retire(
        &self,
        meeting: &MeetingRef,
        mk_seq: u32,
        at: Millis,
    ) -> Result<(), HandoffError> {
        self.keyring.retire_for(meeting, mk_seq, at)
    }

    /// The session ended (left, kicked, lost): every key goes at once (whitepaper 3.7.8).
    /// Whichever session it names, erasing is never unsafe, so this takes no meeting.
    pub fn erase(&self) {
        self.keyring.erase();
    }

    /// A new session of this device in `meeting` (a rejoin, perhaps in a new instance after
    /// the board restarted): every key of the last one is erased, the keyring serves the new
    /// instance (stream keys bind the meetingUUID) and knows no slot until its first key names
    /// one. The workers keep running on the same keyring.
    pub fn enter(&self, meeting: &MeetingRef) {
        self.keyring.serve(meeting);
    }
}
