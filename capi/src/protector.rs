//! Packet mode: `veil_protector`, the dataplane's keyring and one worker's derived keys.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use dataplane::keyring::{EpochKey, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{self, DropReason, MK_SEQ_LEN, Mode};
use dataplane::sframe::{CipherSuite, MAX_HEADER_LEN};
use zeroize::Zeroizing;

use crate::ffi::{boundary, boundary_void, check_out, free, give, try_mut, try_ref, try_slice};
use crate::ffi::{try_slice_mut, write_out};
use crate::keyring_link::SharedKeyring;
use crate::result::veil_result;

/// Datagram mode: the whole UDP payload is protected.
pub const VEIL_MODE_DATAGRAM: u32 = 0;
/// RTP mode: the RTP header stays in the clear (and authenticated); the payload is protected.
pub const VEIL_MODE_RTP: u32 = 1;
/// A sender slot value meaning "not known yet"; a linked session sets the real one from the
/// first key update's roster.
pub const VEIL_SLOT_UNSET: u32 = 0xFFFF_FFFF;
/// Headroom that always suffices in front of a plaintext for `veil_protector_protect`.
pub const VEIL_PROTECT_HEADROOM: usize = 32;
/// Bytes protection adds at most: mkSeqNum, the longest SFrame header, the longest tag.
pub const VEIL_PROTECT_OVERHEAD: usize = 37;
/// Longest meeting ID or meeting UUID accepted, in bytes (as keyctl's identifiers).
pub const VEIL_MAX_ID_LEN: usize = 256;
/// The largest sender slot: a KID carries 16 bits of it (docs/PROTOCOL.md).
pub const VEIL_MAX_SENDER_SLOT: u32 = 0xFFFF;
/// How many streams (sender instance and stream index) of one sender a key epoch keeps
/// replay windows for; an authentic packet of a further one is dropped as `stream_limit`.
pub const VEIL_MAX_STREAMS_PER_SENDER: usize = 32;

// The header carries these as literals (cbindgen cannot evaluate paths into other crates);
// the build fails if the dataplane or keyctl ever disagree.
const _: () = assert!(VEIL_SLOT_UNSET == dataplane::keyring::NO_SLOT);
const _: () = assert!(VEIL_PROTECT_HEADROOM == packet::HEADROOM);
const _: () = assert!(VEIL_PROTECT_OVERHEAD == MK_SEQ_LEN + MAX_HEADER_LEN + 16);
const _: () = assert!(VEIL_MAX_ID_LEN == keyctl::wire::MAX_ID_LEN);
const _: () = assert!(VEIL_MAX_SENDER_SLOT == dataplane::stream_key::MAX_SENDER_SLOT);
const _: () = assert!(VEIL_MAX_STREAMS_PER_SENDER == dataplane::keyring::MAX_STREAMS_PER_SENDER);

/// A protector: the key epochs of one meeting (the dataplane keyring) and one worker's
/// derived keys, replay state and counters. It protects outgoing and unprotects incoming
/// datagrams or RTP packets.
///
/// Thread safety: a handle may be moved between threads but used by one thread at a time.
/// For parallel workers, give each thread its own handle from `veil_protector_new_worker`:
/// the handles share the keys, send counters and replay windows (lock-free), and a key
/// installed or retired through any handle, or by a linked session, reaches all of them.
/// Installing and retiring keys take an internal lock; protecting and unprotecting never do.
#[allow(non_camel_case_types)]
pub struct veil_protector {
    shared: Arc<SharedKeyring>,
    mode: Mode,
    worker: WorkerKeys,
    counters: veil_protector_counters,
    /// The packet an in-place unprotect was given, to put back if it is refused (review
    /// finding 19.8). Ciphertext only, never plaintext; kept between calls up to
    /// [`RETAINED_PACKET_COPY`] bytes so the packet path does not allocate once warm.
    received: Vec<u8>,
}

/// The largest packet copy a handle keeps between calls: a UDP datagram, or an RFC 4571
/// framed RTP packet, is never longer.
const RETAINED_PACKET_COPY: usize = 1 << 16;

impl veil_protector {
    fn with_shared(shared: Arc<SharedKeyring>, mode: Mode) -> Self {
        Self {
            shared,
            mode,
            worker: WorkerKeys::new(mode),
            counters: veil_protector_counters::default(),
            received: Vec::new(),
        }
    }

    /// The shared keyring, for a session to key.
    pub(crate) fn shared(&self) -> &Arc<SharedKeyring> {
        &self.shared
    }

    fn seal(
        &mut self,
        now: u64,
        stream_index: u8,
        buf: &mut [u8],
        headroom: usize,
        len: usize,
    ) -> Result<Range<usize>, veil_result> {
        let snapshot = self.shared.keyring().load();
        let result = self
            .worker
            .seal(&snapshot, Millis(now), stream_index, buf, headroom, len);
        match result {
            Ok(range) => {
                self.counters.sealed += 1;
                Ok(range)
            }
            Err(e) => {
                self.counters.seal_failed += 1;
                Err(e.into())
            }
        }
    }

    /// [`Self::open`], and on failure `buf` holds again exactly the bytes it was given. A
    /// refusal can come after the packet was decrypted in place: two handles racing on one
    /// packet both pass the replay screen and both decrypt, and the loser of the window's mark
    /// is refused as a replay (review finding 19.8). Restoring rather than zeroing keeps a
    /// packet refused for a key not yet installed usable for a retry.
    fn open_restoring(&mut self, now: u64, buf: &mut [u8]) -> Result<Range<usize>, veil_result> {
        let mut original = std::mem::take(&mut self.received);
        original.clear();
        original.extend_from_slice(buf);
        let result = self.open(now, buf);
        if result.is_err() {
            buf.copy_from_slice(&original);
        }
        if original.capacity() <= RETAINED_PACKET_COPY {
            self.received = original;
        }
        result
    }

    fn open(&mut self, now: u64, buf: &mut [u8]) -> Result<Range<usize>, veil_result> {
        let snapshot = self.shared.keyring().load();
        match self.worker.open(&snapshot, Millis(now), buf) {
            Ok(range) => {
                self.counters.opened += 1;
                Ok(range)
            }
            Err(e) => {
                self.counters.record_drop(e.drop_reason());
                Err(e.into())
            }
        }
    }
}

/// What one protector handle has done, by outcome. Received packets that were refused are
/// counted by reason; none is ever dropped silently.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct veil_protector_counters {
    /// Packets protected.
    pub sealed: u64,
    /// Packets unprotected (authenticated and not replayed).
    pub opened: u64,
    /// Protect calls refused (no key yet, not in the roster, buffer too small, bad RTP header).
    pub seal_failed: u64,
    /// Received packets dropped: malformed framing (mkSeqNum, RTP header, SFrame header).
    pub drop_bad_header: u64,
    /// Received packets dropped: no key for their mkSeqNum or KID.
    pub drop_unknown_key: u64,
    /// Received packets dropped: the tag did not verify.
    pub drop_auth_failure: u64,
    /// Received packets dropped: counter already received.
    pub drop_replay: u64,
    /// Received packets dropped: counter behind the replay window.
    pub drop_too_old: u64,
    /// Received packets dropped: under this device's own sender slot, its own media sent back
    /// (RFC 9605 4.4.1: a send key never decrypts).
    pub drop_reflected: u64,
    /// Received packets dropped: authentic, but their sender has used up the stream windows
    /// a key epoch keeps for one sender (`VEIL_MAX_STREAMS_PER_SENDER`).
    pub drop_stream_limit: u64,
}

impl veil_protector_counters {
    fn record_drop(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::BadHeader => &mut self.drop_bad_header,
            DropReason::UnknownKey => &mut self.drop_unknown_key,
            DropReason::AuthFailure => &mut self.drop_auth_failure,
            DropReason::Replay => &mut self.drop_replay,
            DropReason::TooOld => &mut self.drop_too_old,
            DropReason::Reflected => &mut self.drop_reflected,
            DropReason::StreamLimit => &mut self.drop_stream_limit,
        };
        *slot += 1;
    }
}

/// One roster entry of a key epoch: a sender slot and that sender's ID (the `senderID` of
/// the stream key derivation; `veil_sender_id` computes it from user and device IDs).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct veil_roster_entry {
    /// The sender slot (the high bits of the sender's KIDs).
    pub slot: u32,
    /// The sender ID bytes.
    pub sender_id: *const u8,
    /// Length of `sender_id`.
    pub sender_id_len: usize,
}

fn mode_from(mode: u32) -> Result<Mode, veil_result> {
    match mode {
        VEIL_MODE_DATAGRAM => Ok(Mode::Datagram),
        VEIL_MODE_RTP => Ok(Mode::Rtp),
        _ => Err(veil_result::InvalidArgument),
    }
}

/// A sender slot as the API takes it: at most `VEIL_MAX_SENDER_SLOT`, or `VEIL_SLOT_UNSET`.
fn slot_from(slot: u32) -> Result<u32, veil_result> {
    if slot <= VEIL_MAX_SENDER_SLOT || slot == VEIL_SLOT_UNSET {
        Ok(slot)
    } else {
        Err(veil_result::InvalidArgument)
    }
}

fn id_from(bytes: &[u8]) -> Result<Vec<u8>, veil_result> {
    if bytes.len() > VEIL_MAX_ID_LEN {
        return Err(veil_result::InvalidArgument);
    }
    Ok(bytes.to_vec())
}

/// Creates a protector for one meeting instance.
///
/// - `mode`: `VEIL_MODE_DATAGRAM` or `VEIL_MODE_RTP`.
/// - `suite`: the SFrame cipher suite of every key (0x0005, AES-256-GCM, is Veil's default).
/// - `meeting_id`, `meeting_uuid`: inputs of every stream key, at most `VEIL_MAX_ID_LEN` bytes.
/// - `own_slot`: this device's sender slot (at most `VEIL_MAX_SENDER_SLOT`), or
///   `VEIL_SLOT_UNSET` when a linked session will learn it from the first key update.
///
/// Every installed key epoch draws a fresh random sender instance into this device's KIDs, so
/// installing the same key into another protector (or after a restart) never repeats a
/// (key, nonce) pair. Packets under this device's own slot are never unprotected.
///
/// On success `*out` owns the protector; free it with `veil_protector_free`.
///
/// # Safety
/// Buffers NULL or readable for their lengths; `out` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_protector_new(
    mode: u32,
    suite: u16,
    meeting_id: *const u8,
    meeting_id_len: usize,
    meeting_uuid: *const u8,
    meeting_uuid_len: usize,
    own_slot: u32,
    out: *mut *mut veil_protector,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each buffer.
        let (meeting_id, meeting_uuid) = unsafe {
            (
                try_slice(meeting_id, meeting_id_len)?,
                try_slice(meeting_uuid, meeting_uuid_len)?,
            )
        };
        check_out(out)?;
        let mode = mode_from(mode)?;
        let config = MeetingConfig {
            meeting_id: id_from(meeting_id)?,
            meeting_uuid: id_from(meeting_uuid)?,
            own_slot: slot_from(own_slot)?,
            suite: CipherSuite::try_from(suite)?,
        };
        let shared = Arc::new(SharedKeyring::new(config));
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, veil_protector::with_shared(shared, mode)) };
        Ok(())
    })
}

/// Creates another handle on the same keyring, for another worker thread: same meeting,
/// mode and keys, its own derived-key cache and counters.
///
/// # Safety
/// `protector` NULL or live, not being used by another thread during the call; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_new_worker(
    protector: *const veil_protector,
    out: *mut *mut veil_protector,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let protector = unsafe { try_ref(protector) }?;
        check_out(out)?;
        let handle = veil_protector::with_shared(Arc::clone(&protector.shared), protector.mode);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, handle) };
        Ok(())
    })
}

/// Frees a protector handle. The keys are erased when the last handle sharing them (and any
/// session linked to them) is gone. NULL is a no-op.
///
/// # Safety
/// `protector` NULL or a handle from `veil_protector_new` or `_new_worker`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_free(protector: *mut veil_protector) {
    // SAFETY: the caller's contract.
    boundary_void(|| unsafe { free(protector) });
}

/// Sets this device's sender slot (at most `VEIL_MAX_SENDER_SLOT`). Allowed until the first
/// key is installed (then the slot is fixed: `VEIL_RESULT_WRONG_STATE`, unless it is the same
/// slot).
///
/// # Safety
/// `protector` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_set_own_slot(
    protector: *mut veil_protector,
    own_slot: u32,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let protector = unsafe { try_mut(protector) }?;
        protector.shared.set_own_slot(slot_from(own_slot)?)
    })
}

/// Installs the key epoch `mk_seq` at `now_ms` (whitepaper 3.7.6, v4.6): it decrypts at
/// once, sends from `activate_at_ms`, and the epoch it supersedes stops decrypting 10 s
/// later. `meeting_key` is the 32-byte MK (copied; the caller should erase its copy).
/// `roster` lists every sender slot of the epoch; a slot may appear once and be at most
/// `VEIL_MAX_SENDER_SLOT` (`VEIL_RESULT_INVALID_ARGUMENT` otherwise, and nothing changes).
/// `VEIL_RESULT_KEY_NOT_NEWER` unless `mk_seq` is above every installed one.
///
/// # Safety
/// `protector` NULL or live; `meeting_key` NULL or 32 readable bytes; `roster` NULL or
/// `roster_len` entries, each `sender_id` NULL or readable for its length.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_protector_install_key(
    protector: *mut veil_protector,
    mk_seq: u32,
    meeting_key: *const u8,
    meeting_key_len: usize,
    roster: *const veil_roster_entry,
    roster_len: usize,
    activate_at_ms: u64,
    now_ms: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (protector, meeting_key) = unsafe {
            (
                try_mut(protector)?,
                try_slice(meeting_key, meeting_key_len)?,
            )
        };
        if meeting_key.len() != 32 {
            return Err(veil_result::InvalidArgument);
        }
        // Copied straight into erasing storage: no stray copy of MK is left on the stack.
        let mut key_bytes = Zeroizing::new([0u8; 32]);
        key_bytes.copy_from_slice(meeting_key);
        // SAFETY: a `veil_roster_entry` array of `roster_len` by the caller's contract.
        let entries = unsafe { roster_slice(roster, roster_len) }?;
        let mut members = BTreeMap::new();
        for entry in entries {
            // SAFETY: each entry's buffer is readable for its length by contract.
            let sender_id = unsafe { try_slice(entry.sender_id, entry.sender_id_len) }?;
            if members.insert(entry.slot, sender_id.to_vec()).is_some() {
                return Err(veil_result::InvalidArgument);
            }
        }
        let key = EpochKey {
            mk_seq,
            meeting_key: key_bytes,
            roster: members,
            activate_at: Millis(activate_at_ms),
        };
        protector.shared.install(key, Millis(now_ms))
    })
}

/// # Safety
/// `roster` NULL or valid for `len` entries.
unsafe fn roster_slice<'a>(
    roster: *const veil_roster_entry,
    len: usize,
) -> Result<&'a [veil_roster_entry], veil_result> {
    if roster.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(veil_result::NullPointer)
        };
    }
    // SAFETY: non-NULL and `len` entries by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(roster, len) })
}

/// Retires the epoch `mk_seq` at `at_ms` (keyctl's retire event), or sooner if it was already
/// due. Unknown epochs are ignored.
///
/// # Safety
/// `protector` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_retire(
    protector: *mut veil_protector,
    mk_seq: u32,
    at_ms: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let protector = unsafe { try_mut(protector) }?;
        protector.shared.retire(mk_seq, Millis(at_ms));
        Ok(())
    })
}

/// Erases the keys of epochs whose retirement time has passed at `now_ms`. Unprotecting
/// already refuses them by time; this frees and zeroizes them. Installing a key prunes, and
/// a linked session prunes on every input; call it (for example once a second) when keys
/// are installed by hand.
///
/// # Safety
/// `protector` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_prune(
    protector: *mut veil_protector,
    now_ms: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let protector = unsafe { try_mut(protector) }?;
        protector.shared.prune(Millis(now_ms));
        Ok(())
    })
}

/// Protects a packet in place. The plaintext (in RTP mode, the whole RTP packet) is at
/// `buf[headroom .. headroom + plaintext_len]`; `buf_len` is the buffer's capacity. It needs
/// `VEIL_PROTECT_HEADROOM` bytes of headroom (always enough; the exact need is 4 + the SFrame
/// header) and the tag length (at most 16) after the plaintext. On success the protected
/// packet is at `buf[*out_offset .. *out_offset + *out_len]`.
///
/// `stream_index` tells this device's streams apart in RTP mode (KID = slot << 48 |
/// instance << 8 | stream_index); datagram mode has only stream 0 (another index is
/// `VEIL_RESULT_INVALID_ARGUMENT`). The epoch used is the newest activated at `now_ms`.
///
/// # Safety
/// `protector` NULL or live; `buf` NULL or `buf_len` writable bytes; outs NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_protector_protect(
    protector: *mut veil_protector,
    now_ms: u64,
    stream_index: u8,
    buf: *mut u8,
    buf_len: usize,
    headroom: usize,
    plaintext_len: usize,
    out_offset: *mut usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (protector, buf) = unsafe { (try_mut(protector)?, try_slice_mut(buf, buf_len)?) };
        check_out(out_offset)?;
        check_out(out_len)?;
        let range = protector.seal(now_ms, stream_index, buf, headroom, plaintext_len)?;
        // SAFETY: both checked non-NULL; writable by contract.
        unsafe { write_range(range, out_offset, out_len) };
        Ok(())
    })
}

/// Protects `plaintext` into `out` (`*out_len` bytes). `out_cap` must be at least
/// `plaintext_len + VEIL_PROTECT_OVERHEAD`; if it is not, returns
/// `VEIL_RESULT_BUFFER_TOO_SMALL` with that size in `*out_len`. The buffers must not overlap.
///
/// # Safety
/// `protector` NULL or live; buffers NULL or valid for their lengths; `out_len` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_protector_protect_into(
    protector: *mut veil_protector,
    now_ms: u64,
    stream_index: u8,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (protector, plaintext, out) = unsafe {
            (
                try_mut(protector)?,
                try_slice(plaintext, plaintext_len)?,
                try_slice_mut(out, out_cap)?,
            )
        };
        check_out(out_len)?;
        let needed = plaintext
            .len()
            .checked_add(VEIL_PROTECT_OVERHEAD)
            .ok_or(veil_result::InvalidArgument)?;
        if out.len() < needed {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, needed) };
            return Err(veil_result::BufferTooSmall);
        }
        // Seal in place behind just enough headroom for the longest prefix, then move the
        // packet to the front of `out`.
        let headroom = MK_SEQ_LEN + MAX_HEADER_LEN;
        out[headroom..headroom + plaintext.len()].copy_from_slice(plaintext);
        let sealed = protector.seal(now_ms, stream_index, out, headroom, plaintext.len());
        // On failure, leave no copy of the plaintext behind in a buffer meant for the network.
        let scrub = headroom..headroom + plaintext.len();
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { to_front(out, sealed, scrub, out_len) }
    })
}

/// Unprotects a received packet in place: checks its epoch (refusing retired ones at
/// `now_ms`), authenticates it, rejects replays, decrypts. On success the plaintext (in RTP
/// mode, the reassembled RTP packet) is at `buf[*out_offset .. *out_offset + *out_len]`.
/// Every refusal is counted by reason (`veil_protector_get_counters`). On failure `buf` holds
/// exactly the packet it was given: the ciphertext is restored, so no plaintext is left
/// behind even when the packet was decrypted before it was refused (another handle opened it
/// first), and a packet refused for want of its key can be retried once the key is installed.
///
/// # Safety
/// `protector` NULL or live; `buf` NULL or `len` writable bytes; outs NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_unprotect(
    protector: *mut veil_protector,
    now_ms: u64,
    buf: *mut u8,
    len: usize,
    out_offset: *mut usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (protector, buf) = unsafe { (try_mut(protector)?, try_slice_mut(buf, len)?) };
        check_out(out_offset)?;
        check_out(out_len)?;
        let range = protector.open_restoring(now_ms, buf)?;
        // SAFETY: both checked non-NULL; writable by contract.
        unsafe { write_range(range, out_offset, out_len) };
        Ok(())
    })
}

/// Unprotects `packet` into `out` (`*out_len` bytes). The packet is opened in place inside
/// `out`, so `out_cap` must be at least `packet_len`; if it is not, returns
/// `VEIL_RESULT_BUFFER_TOO_SMALL` with `packet_len` in `*out_len`. On failure `out` holds no
/// plaintext. The buffers must not overlap.
///
/// # Safety
/// As `veil_protector_protect_into`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_protector_unprotect_into(
    protector: *mut veil_protector,
    now_ms: u64,
    packet: *const u8,
    packet_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (protector, packet, out) = unsafe {
            (
                try_mut(protector)?,
                try_slice(packet, packet_len)?,
                try_slice_mut(out, out_cap)?,
            )
        };
        check_out(out_len)?;
        if out.len() < packet.len() {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, packet.len()) };
            return Err(veil_result::BufferTooSmall);
        }
        let work = &mut out[..packet.len()];
        work.copy_from_slice(packet);
        let opened = protector.open(now_ms, work);
        // A packet that failed to authenticate may have been partly decrypted in place;
        // release none of it.
        let scrub = 0..work.len();
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { to_front(work, opened, scrub, out_len) }
    })
}

/// Reports where an in-place call left its result: `range.start` in `*out_offset`, the length
/// in `*out_len`.
///
/// # Safety
/// Both pointers non-NULL (see [`check_out`]) and writable.
unsafe fn write_range(range: Range<usize>, out_offset: *mut usize, out_len: *mut usize) {
    // SAFETY: the caller's contract.
    unsafe {
        write_out(out_offset, range.start);
        write_out(out_len, range.end - range.start);
    }
}

/// Finishes an `_into` call that worked in place inside `buf`: on success moves the result to
/// the front of `buf` and writes its length to `*out_len`; on failure zeroes `scrub` (what may
/// hold plaintext) and returns the error, leaving `*out_len` untouched.
///
/// # Safety
/// `out_len` non-NULL (see [`check_out`]) and writable.
unsafe fn to_front(
    buf: &mut [u8],
    result: Result<Range<usize>, veil_result>,
    scrub: Range<usize>,
    out_len: *mut usize,
) -> Result<(), veil_result> {
    match result {
        Ok(range) => {
            let len = range.end - range.start;
            buf.copy_within(range, 0);
            // SAFETY: the caller's contract.
            unsafe { write_out(out_len, len) };
            Ok(())
        }
        Err(e) => {
            buf[scrub].fill(0);
            Err(e)
        }
    }
}

/// Copies this handle's counters into `*out`.
///
/// # Safety
/// `protector` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_protector_get_counters(
    protector: *const veil_protector,
    out: *mut veil_protector_counters,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let protector = unsafe { try_ref(protector) }?;
        check_out(out)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out, protector.counters) };
        Ok(())
    })
}

/// Computes the sender ID of a participant, `lp(user_id) || lp(device_id)` (2-byte
/// big-endian lengths), the form a roster entry carries. If `out_cap` is too small, returns
/// `VEIL_RESULT_BUFFER_TOO_SMALL` with the needed size in `*out_len`.
///
/// # Safety
/// Buffers NULL or valid for their lengths; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sender_id(
    user_id: *const u8,
    user_id_len: usize,
    device_id: *const u8,
    device_id_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (user, device, out) = unsafe {
            (
                try_slice(user_id, user_id_len)?,
                try_slice(device_id, device_id_len)?,
                try_slice_mut(out, out_cap)?,
            )
        };
        check_out(out_len)?;
        let participant = keyctl::wire::ParticipantId::new(user, device)
            .map_err(|_| veil_result::InvalidArgument)?;
        let id = dataplane::keyring::sender_id(&participant);
        if out.len() < id.len() {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, id.len()) };
            return Err(veil_result::BufferTooSmall);
        }
        out[..id.len()].copy_from_slice(&id);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_len, id.len()) };
        Ok(())
    })
}
