//! The participant session: `veil_session` over `keyctl::meeting::Session`, driven from C.
//!
//! The session is sans-IO: the host feeds it board messages and the current time, and pulls
//! messages to post, events and the next timeout. Randomness comes from the operating system
//! (`keyctl::rng::OsRng`) inside; time only ever comes from the caller.

use std::collections::VecDeque;
use std::sync::Arc;

use core::ffi::c_char;

use dataplane::keyring::{Handoff, Millis, own_slot_in};
use keyctl::crypto::SigningKey;
use keyctl::crypto::hybrid_sig::HybridSigningKey;
use keyctl::meeting::{Config, Event, KeyDelivery, KeyUpdate, PqPolicy, Session, Timings};
use keyctl::rand_core::TryRng;
use keyctl::rng::OsRng;
use keyctl::wire::{Field, Id, MeetingRef, ParticipantId};
use zeroize::Zeroizing;

use crate::event::{VEIL_EVENT_KEY_UPDATE, VEIL_EVENT_RETIRE, veil_event};
use crate::ffi::{boundary, boundary_void, check_out, free, give, try_mut, try_ref, try_slice};
use crate::ffi::{try_slice_mut, write_out};
use crate::keyring_link::SharedKeyring;
use crate::protector::{VEIL_SLOT_UNSET, veil_protector};
use crate::result::veil_result;

/// Size of a buffer that holds a security code: 39 digits and the NUL.
pub const VEIL_SECURITY_CODE_SIZE: usize = 40;
const _: () = assert!(VEIL_SECURITY_CODE_SIZE == keyctl::crypto::SECURITY_CODE_DIGITS + 1);

/// Length of an Ed25519 identity seed.
pub const VEIL_IDENTITY_SEED_LEN: usize = 32;

/// `veil_session_params.pq`: an ML-KEM-768 key, and as leader the hybrid box (X25519 +
/// ML-KEM-768, whitepaper v4.6) for every participant that has one, the classical box for the
/// others. Zero, so a zero-initialized `pq` is the default.
pub const VEIL_PQ_PREFERRED: u32 = 0;
/// `veil_session_params.pq`: as leader, refuse joiners without an ML-KEM-768 key (an alert),
/// so every key goes in the hybrid box; as participant, take keys only from such a leader.
pub const VEIL_PQ_REQUIRED: u32 = 1;
/// `veil_session_params.pq`: no ML-KEM-768 key, classical box only (refused by `required`
/// meetings).
pub const VEIL_PQ_OFF: u32 = 2;

/// `veil_session_key_delivery`: this session has not seen the member's binding.
pub const VEIL_KEY_DELIVERY_UNKNOWN: u32 = 0;
/// `veil_session_key_delivery`: the member is the leader; it makes the key.
pub const VEIL_KEY_DELIVERY_LEADER: u32 = 1;
/// `veil_session_key_delivery`: the member gets the key in the hybrid box.
pub const VEIL_KEY_DELIVERY_HYBRID: u32 = 2;
/// `veil_session_key_delivery`: the member gets the key in the classical box (X25519 only):
/// readable by a recording adversary once X25519 falls.
pub const VEIL_KEY_DELIVERY_CLASSICAL: u32 = 3;

fn pq_from_c(pq: u32) -> Result<PqPolicy, veil_result> {
    match pq {
        VEIL_PQ_PREFERRED => Ok(PqPolicy::Preferred),
        VEIL_PQ_REQUIRED => Ok(PqPolicy::Required),
        VEIL_PQ_OFF => Ok(PqPolicy::Off),
        _ => Err(veil_result::InvalidArgument),
    }
}

fn pq_to_c(pq: PqPolicy) -> u32 {
    match pq {
        PqPolicy::Preferred => VEIL_PQ_PREFERRED,
        PqPolicy::Required => VEIL_PQ_REQUIRED,
        PqPolicy::Off => VEIL_PQ_OFF,
    }
}

/// What the server tells a participant when it joins. Every ID is a byte string of at most
/// `VEIL_MAX_ID_LEN` bytes, given as a pointer and its length.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct veil_session_params {
    /// meetingID.
    pub meeting_id: *const u8,
    /// Length of `meeting_id`.
    pub meeting_id_len: usize,
    /// meetingUUID: this instance of the meeting.
    pub meeting_uuid: *const u8,
    /// Length of `meeting_uuid`.
    pub meeting_uuid_len: usize,
    /// This participant's userID.
    pub user_id: *const u8,
    /// Length of `user_id`.
    pub user_id_len: usize,
    /// This participant's deviceID.
    pub device_id: *const u8,
    /// Length of `device_id`.
    pub device_id_len: usize,
    /// The display name to announce.
    pub display_name: *const u8,
    /// Length of `display_name`.
    pub display_name_len: usize,
    /// The leader's userID, as the server names it. If user and device equal this
    /// participant's, the session starts as leader.
    pub leader_user_id: *const u8,
    /// Length of `leader_user_id`.
    pub leader_user_id_len: usize,
    /// The leader's deviceID.
    pub leader_device_id: *const u8,
    /// Length of `leader_device_id`.
    pub leader_device_id_len: usize,
    /// Post-quantum key delivery: `VEIL_PQ_PREFERRED` (0, the default), `VEIL_PQ_REQUIRED` or
    /// `VEIL_PQ_OFF`; any other value is `VEIL_RESULT_INVALID_ARGUMENT`. As leader this is the
    /// meeting's policy. Added in 0.1 with issue 16: the struct grew by this field, so hosts
    /// recompile against this header (a zero-filled initializer keeps the default).
    pub pq: u32,
}

/// Messages accepted and refused by one session.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct veil_session_counters {
    /// Board messages the session accepted.
    pub messages_accepted: u64,
    /// Board messages it refused (malformed, bad signature, stale, other meeting, ...).
    pub messages_refused: u64,
}

/// One participant's key-agreement session for one meeting instance (leader or participant
/// role; the server may move the leader role at any time).
///
/// Thread safety: a session may be moved between threads but used by one thread at a time.
/// It holds the identity key, the ephemeral box key and the meeting keys; all are erased when
/// it ends or is freed.
#[allow(non_camel_case_types)]
pub struct veil_session {
    session: Session,
    rng: OsRng,
    meeting: MeetingRef,
    /// The linked protector's keyring, and the handoff that applies this session's events
    /// to it.
    linked: Option<(Arc<SharedKeyring>, Handoff)>,
    /// Whether a key update was reported; linking a protector after that would miss it.
    keys_seen: bool,
    /// A message popped from the session that did not fit the caller's buffer yet.
    pending_transmit: Option<Vec<u8>>,
    events: VecDeque<veil_event>,
    counters: veil_session_counters,
    /// The time of the latest input, for applying keys drained outside an input call.
    last_now: Millis,
}

/// The session's config from the C parameters.
///
/// # Safety
/// Every pointer in `params` NULL or readable for its length.
unsafe fn config_from(params: &veil_session_params) -> Result<Config, veil_result> {
    // SAFETY: the caller's contract, for each field.
    let bytes = |ptr, len| unsafe { try_slice(ptr, len) };
    let invalid = |_| veil_result::InvalidArgument;
    let meeting = MeetingRef::new(
        bytes(params.meeting_id, params.meeting_id_len)?,
        bytes(params.meeting_uuid, params.meeting_uuid_len)?,
    )
    .map_err(invalid)?;
    let me = ParticipantId::new(
        bytes(params.user_id, params.user_id_len)?,
        bytes(params.device_id, params.device_id_len)?,
    )
    .map_err(invalid)?;
    let leader = ParticipantId::new(
        bytes(params.leader_user_id, params.leader_user_id_len)?,
        bytes(params.leader_device_id, params.leader_device_id_len)?,
    )
    .map_err(invalid)?;
    let display_name = Id::new(
        Field::DisplayName,
        bytes(params.display_name, params.display_name_len)?,
    )
    .map_err(invalid)?;
    Ok(Config {
        meeting,
        me,
        display_name,
        leader,
        invite: None,
        host_secret: None,
        timings: Timings::default(),
        pq: pq_from_c(params.pq)?,
    })
}

impl veil_session {
    /// Moves everything the session queued into C events, applying keys to the linked
    /// protector first, so the dataplane is keyed as soon as keyctl certifies a key.
    fn drain(&mut self, now: Millis) {
        while let Some(event) = self.session.poll_event() {
            let mut c_event = match &event {
                Event::KeyUpdate(update) => self.key_update(update),
                Event::RetireEpoch { mk_seq, at } => {
                    let mut c_event = veil_event::new(VEIL_EVENT_RETIRE);
                    c_event.mk_seq = *mk_seq;
                    c_event.at_ms = at.0;
                    c_event
                }
                Event::Alert(alert) => {
                    self.events.push_back(veil_event::alert(alert));
                    continue;
                }
                // whitepaper 3.7.8: a participant who leaves discards every key; the handoff
                // erases the linked protector's.
                Event::Left(reason) => veil_event::left(*reason),
            };
            if let Some((shared, handoff)) = &self.linked {
                c_event.protector_result = shared.handle(handoff, &self.meeting, &event, now);
            }
            self.events.push_back(c_event);
        }
    }

    /// The KEY_UPDATE event of `update`, with this participant's slot in its roster (reported
    /// whether or not a protector is linked; `VEIL_SLOT_UNSET` if the roster does not name it
    /// exactly once).
    fn key_update(&mut self, update: &KeyUpdate) -> veil_event {
        self.keys_seen = true;
        let own_slot = own_slot_in(update, self.session.me()).ok().flatten();
        let mut event = veil_event::new(VEIL_EVENT_KEY_UPDATE);
        event.mk_seq = update.mk_seq;
        event.at_ms = update.activate_at.0;
        event.roster_len = u32::try_from(update.roster.len()).unwrap_or(u32::MAX);
        event.own_slot = own_slot.unwrap_or(VEIL_SLOT_UNSET);
        event
    }

    fn finish_input(
        &mut self,
        now: Millis,
        result: Result<(), keyctl::meeting::MeetingError>,
    ) -> Result<(), veil_result> {
        self.last_now = self.last_now.max(now);
        self.drain(now);
        if let Some((shared, _)) = &self.linked {
            // keyctl arms a timer at each retirement time, so the retired epochs' keys are
            // erased from the dataplane at the same input that drops the session's copy.
            shared.prune(now);
        }
        result.map_err(veil_result::from)
    }
}

/// Joins a meeting: creates the session, which queues its key announcement (whitepaper
/// 3.7.2) for `veil_session_poll_transmit`, and starts leading if the server named this
/// participant the leader.
///
/// `identity_seed` is the 32-byte Ed25519 seed of this device's long-term identity key; pass
/// NULL and 0 to generate a fresh identity from the operating system's random source (which
/// also supplies every other random value the session needs). Unless `params->pq` is
/// `VEIL_PQ_OFF` the identity is hybrid (Ed25519 + ML-DSA-65, whose seed derives from the same
/// 32 bytes: docs/PROTOCOL.md "Hybrid signatures on the wire"), and everything the session
/// posts is hybrid-signed: messages of several kilobytes (an announcement is about 7 KB; size
/// buffers with `VEIL_RESULT_BUFFER_TOO_SMALL`). `now_ms` is the current time
/// in milliseconds on any clock the host uses consistently for every call.
///
/// # Safety
/// `params` NULL or a valid struct whose buffers are readable for their lengths;
/// `identity_seed` NULL or readable for its length; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_new(
    params: *const veil_session_params,
    identity_seed: *const u8,
    identity_seed_len: usize,
    now_ms: u64,
    out: *mut *mut veil_session,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (params, seed) = unsafe {
            (
                try_ref(params)?,
                try_slice(identity_seed, identity_seed_len)?,
            )
        };
        check_out(out)?;
        // SAFETY: the caller's contract on the struct's buffers.
        let config = unsafe { config_from(params) }?;
        let mut rng = OsRng::new();
        let seed: Zeroizing<[u8; VEIL_IDENTITY_SEED_LEN]> = if seed.is_empty() {
            let mut fresh = Zeroizing::new([0u8; VEIL_IDENTITY_SEED_LEN]);
            rng.try_fill_bytes(fresh.as_mut())
                .map_err(|_| veil_result::Crypto)?;
            fresh
        } else {
            Zeroizing::new(seed.try_into().map_err(|_| veil_result::InvalidArgument)?)
        };
        let meeting = config.meeting.clone();
        let now = Millis(now_ms);
        // The identity is hybrid (Ed25519 + ML-DSA-65, keyctl revision 4; the ML-DSA seed
        // derives from the same 32 bytes) unless `pq` is VEIL_PQ_OFF, as a sidecar's is unless
        // --pq off: a leader that requires post-quantum authentication admits it.
        let session = if config.pq == PqPolicy::Off {
            let identity = SigningKey::from_seed(&seed).map_err(|_| veil_result::Crypto)?;
            Session::new(config, identity, now, &mut rng)?
        } else {
            let identity =
                HybridSigningKey::from_ed25519_seed(&seed).map_err(|_| veil_result::Crypto)?;
            Session::new_hybrid(config, identity, now, &mut rng)?
        };
        let handle = veil_session {
            session,
            rng,
            meeting,
            linked: None,
            keys_seen: false,
            pending_transmit: None,
            events: VecDeque::new(),
            counters: veil_session_counters::default(),
            last_now: now,
        };
        // Not drained yet: a leader's first key is already queued, and stays queued until
        // the first input or poll, so a protector linked right after creation receives it.
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, handle) };
        Ok(())
    })
}

/// Frees a session, erasing every key it holds. A linked protector keeps the epochs already
/// installed (call `veil_session_leave` first to retire them). NULL is a no-op.
///
/// # Safety
/// `session` NULL or a session from `veil_session_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_free(session: *mut veil_session) {
    // SAFETY: the caller's contract.
    boundary_void(|| unsafe { free(session) });
}

/// Links a protector: from now on every key update is installed into it (with this
/// participant's sender slot from the key's roster), every retirement applied, and leaving
/// retires its keys. The protector must be for the same meeting (`VEIL_RESULT_INVALID_ARGUMENT`
/// otherwise) and linking must happen before the session handed out its first key update
/// (`VEIL_RESULT_WRONG_STATE`): link right after `veil_session_new`, before any input or poll.
/// A leader's first key is queued at creation and reaches a protector linked then.
/// The session shares the protector's keyring, so either may be freed first.
///
/// # Safety
/// `session` NULL or live; `protector` NULL or live and not in use by another thread during
/// the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_link_protector(
    session: *mut veil_session,
    protector: *const veil_protector,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (session, protector) = unsafe { (try_mut(session)?, try_ref(protector)?) };
        let shared = protector.shared();
        if !shared.serves(&session.meeting) {
            return Err(veil_result::InvalidArgument);
        }
        if session.keys_seen {
            return Err(veil_result::WrongState);
        }
        let handoff = Handoff::attach(session.session.me().clone(), Arc::clone(shared.keyring()));
        session.linked = Some((Arc::clone(shared), handoff));
        Ok(())
    })
}

/// Feeds one message from the board (untrusted bytes) at `now_ms`. A refused message returns
/// why (and is counted); the session's state is unchanged by it. Pull messages and events
/// afterwards either way.
///
/// # Safety
/// `session` NULL or live; `message` NULL or readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_handle_message(
    session: *mut veil_session,
    now_ms: u64,
    message: *const u8,
    message_len: usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (session, message) = unsafe { (try_mut(session)?, try_slice(message, message_len)?) };
        let now = Millis(now_ms);
        let result = session.session.handle(now, message, &mut session.rng);
        if result.is_ok() {
            session.counters.messages_accepted += 1;
        } else {
            session.counters.messages_refused += 1;
        }
        session.finish_input(now, result)
    })
}

/// Runs the session's timers due at `now_ms` (heartbeats, rotations, batched rekeys, key
/// retirement, the missed-heartbeat limit). Call it when the time from
/// `veil_session_next_timeout` is reached.
///
/// # Safety
/// `session` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_handle_timeout(
    session: *mut veil_session,
    now_ms: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_mut(session) }?;
        let now = Millis(now_ms);
        let result = session.session.handle_timeout(now, &mut session.rng);
        session.finish_input(now, result)
    })
}

/// Leaves the meeting (whitepaper 3.7.8): queues a leave notice to post, erases every key,
/// retires a linked protector's keys at `now_ms`. The session then only drains.
///
/// # Safety
/// `session` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_leave(
    session: *mut veil_session,
    now_ms: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_mut(session) }?;
        let result = session.session.leave();
        session.finish_input(Millis(now_ms), result)
    })
}

/// Copies the next message to post to the board into `out` (`*out_len` bytes) and dequeues
/// it. `VEIL_RESULT_EMPTY` when none is queued. If `out_cap` is too small, returns
/// `VEIL_RESULT_BUFFER_TOO_SMALL` with the needed size in `*out_len` and keeps the message
/// queued for a retry with a larger buffer.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable for `out_cap`; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_poll_transmit(
    session: *mut veil_session,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (session, out) = unsafe { (try_mut(session)?, try_slice_mut(out, out_cap)?) };
        check_out(out_len)?;
        if session.pending_transmit.is_none() {
            session.pending_transmit = session.session.poll_transmit().map(|m| m.to_bytes());
        }
        let message = session
            .pending_transmit
            .as_ref()
            .ok_or(veil_result::Empty)?;
        let len = message.len();
        if out.len() < len {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, len) };
            return Err(veil_result::BufferTooSmall);
        }
        out[..len].copy_from_slice(message);
        session.pending_transmit = None;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_len, len) };
        Ok(())
    })
}

/// Dequeues the next event into `*out`. `VEIL_RESULT_EMPTY` when none is queued.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_poll_event(
    session: *mut veil_session,
    out: *mut veil_event,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_mut(session) }?;
        check_out(out)?;
        session.drain(session.last_now);
        let event = session.events.pop_front().ok_or(veil_result::Empty)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, event) };
        Ok(())
    })
}

/// Writes to `*out_ms` when `veil_session_handle_timeout` must next be called.
/// `VEIL_RESULT_EMPTY` when no timer is armed (the session has ended).
///
/// # Safety
/// `session` NULL or live; `out_ms` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_next_timeout(
    session: *const veil_session,
    out_ms: *mut u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session) }?;
        check_out(out_ms)?;
        let at = session.session.poll_timeout().ok_or(veil_result::Empty)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_ms, at.0) };
        Ok(())
    })
}

/// Writes the current leader's 39-digit security code (whitepaper 3.8) as a NUL-terminated
/// string into `out`, and its length without the NUL to `*out_len`. Users compare it out of
/// band to detect a meddling server. `VEIL_RESULT_EMPTY` while the leader's binding is
/// unknown; `VEIL_RESULT_BUFFER_TOO_SMALL` with the needed size (NUL included,
/// `VEIL_SECURITY_CODE_SIZE`) in `*out_len` if `out_cap` is too small.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable for `out_cap`; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_security_code(
    session: *const veil_session,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (session, out) = unsafe { (try_ref(session)?, try_slice_mut(out.cast(), out_cap)?) };
        check_out(out_len)?;
        let code = session
            .session
            .leader_security_code()
            .ok_or(veil_result::Empty)?;
        let len = code.len();
        if out.len() <= len {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, len + 1) };
            return Err(veil_result::BufferTooSmall);
        }
        out[..len].copy_from_slice(code.as_bytes());
        out[len] = 0;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_len, len) };
        Ok(())
    })
}

/// Writes the highest mkSeqNum the session holds to `*out` (0 before the first key).
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_mk_seq(
    session: *const veil_session,
    out: *mut u32,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session) }?;
        check_out(out)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, session.session.mk_seq()) };
        Ok(())
    })
}

/// Writes whether the session currently leads the meeting (1) or not (0) to `*out`.
/// `VEIL_RESULT_SESSION_ENDED` once it has ended.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_is_leader(
    session: *const veil_session,
    out: *mut u8,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session) }?;
        check_out(out)?;
        let role = session.session.role().ok_or(veil_result::SessionEnded)?;
        let leads = u8::from(role == keyctl::meeting::Role::Leader);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, leads) };
        Ok(())
    })
}

/// Copies the session's counters into `*out`.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_get_counters(
    session: *const veil_session,
    out: *mut veil_session_counters,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session) }?;
        check_out(out)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, session.counters) };
        Ok(())
    })
}

/// Writes the meeting's post-quantum policy, as the current leader's signed binding states it
/// (`VEIL_PQ_*`), to `*out`. `VEIL_RESULT_EMPTY` while the leader's binding is unknown.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_pq_policy(
    session: *const veil_session,
    out: *mut u32,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session)? };
        check_out(out)?;
        let policy = session.session.pq_policy().ok_or(veil_result::Empty)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, pq_to_c(policy)) };
        Ok(())
    })
}

/// Writes how the present member in sender slot `slot` gets the meeting key
/// (`VEIL_KEY_DELIVERY_*`) to `*out`, read from the signed bindings the certified participant
/// list names: every participant can see which of its peers got the key classically.
/// `VEIL_RESULT_UNKNOWN_PARTICIPANT` if no present member holds `slot`.
///
/// # Safety
/// `session` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_session_key_delivery(
    session: *const veil_session,
    slot: u32,
    out: *mut u32,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let session = unsafe { try_ref(session)? };
        check_out(out)?;
        let (Some(view), Some(delivery)) =
            (session.session.roster(), session.session.key_delivery())
        else {
            return Err(veil_result::SessionEnded);
        };
        let member = view
            .entries
            .iter()
            .find(|e| e.slot == slot && e.state == keyctl::wire::MemberState::Present)
            .ok_or(veil_result::UnknownParticipant)?;
        let code = match delivery.get(&member.participant) {
            Some(KeyDelivery::Leader) => VEIL_KEY_DELIVERY_LEADER,
            Some(KeyDelivery::Hybrid) => VEIL_KEY_DELIVERY_HYBRID,
            Some(KeyDelivery::Classical) => VEIL_KEY_DELIVERY_CLASSICAL,
            Some(KeyDelivery::Unknown) | None => VEIL_KEY_DELIVERY_UNKNOWN,
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, code) };
        Ok(())
    })
}
