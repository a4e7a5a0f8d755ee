//! The ABI's promises, checked from Rust through the exported functions: outputs untouched
//! on failure, exact size queries, key rotation by time, and worker handles on several
//! threads never reusing a counter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ptr;

use veil::*;

const NOW: u64 = 1_700_000_000_000;
const MK: [u8; 32] = [7; 32];

fn protector(own_slot: u32) -> *mut veil_protector {
    let mut p = ptr::null_mut();
    // SAFETY: valid buffers and out-pointer.
    let r = unsafe {
        veil_protector_new(
            VEIL_MODE_DATAGRAM,
            5,
            b"m".as_ptr(),
            1,
            b"u".as_ptr(),
            1,
            own_slot,
            &mut p,
        )
    };
    assert_eq!(r, veil_result::Ok);
    p
}

fn install(p: *mut veil_protector, mk_seq: u32, activate_at: u64, now: u64) -> veil_result {
    let roster = [
        veil_roster_entry {
            slot: 1,
            sender_id: b"one".as_ptr(),
            sender_id_len: 3,
        },
        veil_roster_entry {
            slot: 2,
            sender_id: b"two".as_ptr(),
            sender_id_len: 3,
        },
    ];
    // SAFETY: a live protector, a 32-byte key, two roster entries.
    unsafe {
        veil_protector_install_key(
            p,
            mk_seq,
            MK.as_ptr(),
            32,
            roster.as_ptr(),
            2,
            activate_at,
            now,
        )
    }
}

/// Runs an `_into` call with an output buffer of `cap` bytes; the bytes written on success.
fn into_vec(
    cap: usize,
    call: impl FnOnce(*mut u8, usize, &mut usize) -> veil_result,
) -> Result<Vec<u8>, veil_result> {
    let mut out = vec![0u8; cap];
    let mut len = 0;
    match call(out.as_mut_ptr(), out.len(), &mut len) {
        veil_result::Ok => {
            out.truncate(len);
            Ok(out)
        }
        error => Err(error),
    }
}

fn protect(p: *mut veil_protector, now: u64, payload: &[u8]) -> Result<Vec<u8>, veil_result> {
    into_vec(payload.len() + VEIL_PROTECT_OVERHEAD, |out, cap, len| {
        // SAFETY: a live protector and buffers of the lengths given.
        unsafe {
            veil_protector_protect_into(p, now, 0, payload.as_ptr(), payload.len(), out, cap, len)
        }
    })
}

fn unprotect(p: *mut veil_protector, now: u64, packet: &[u8]) -> Result<Vec<u8>, veil_result> {
    into_vec(packet.len(), |out, cap, len| {
        // SAFETY: a live protector and buffers of the lengths given.
        unsafe {
            veil_protector_unprotect_into(p, now, packet.as_ptr(), packet.len(), out, cap, len)
        }
    })
}

fn counters(p: *mut veil_protector) -> veil_protector_counters {
    let mut counters = veil_protector_counters::default();
    // SAFETY: a live protector and a valid out-pointer.
    assert_eq!(
        unsafe { veil_protector_get_counters(p, &mut counters) },
        veil_result::Ok
    );
    counters
}

fn free(p: *mut veil_protector) {
    // SAFETY: a protector from veil_protector_new, freed once.
    unsafe { veil_protector_free(p) }
}

#[test]
fn out_parameters_are_untouched_on_failure() {
    let sentinel = ptr::dangling_mut::<veil_sframe_context>();
    let mut ctx = sentinel;
    // SAFETY: a valid out-pointer; suite 0 is refused before anything is written.
    assert_eq!(
        unsafe { veil_sframe_context_new(0, &mut ctx) },
        veil_result::UnsupportedSuite
    );
    assert_eq!(ctx, sentinel);

    let mut ctx = ptr::null_mut();
    // SAFETY: valid pointers throughout; the context is freed at the end.
    unsafe {
        assert_eq!(veil_sframe_context_new(5, &mut ctx), veil_result::Ok);
        let mut len = 777usize;
        let mut out = [0xAAu8; 64];
        let r = veil_sframe_encrypt(
            ctx,
            9,
            ptr::null(),
            0,
            b"x".as_ptr(),
            1,
            out.as_mut_ptr(),
            64,
            &mut len,
        );
        assert_eq!(r, veil_result::UnknownKey);
        assert_eq!(len, 777);
        assert!(out.iter().all(|&b| b == 0xAA));
        veil_sframe_context_free(ctx);
    }

    let p = protector(1);
    let mut counters = veil_protector_counters {
        sealed: 99,
        ..Default::default()
    };
    // SAFETY: NULL protector: refused before the out-parameter is touched.
    let r = unsafe { veil_protector_get_counters(ptr::null(), &mut counters) };
    assert_eq!(r, veil_result::NullPointer);
    assert_eq!(counters.sealed, 99);
    free(p);
}

#[test]
fn encrypt_size_is_exact_as_the_header_grows() {
    let mut ctx = ptr::null_mut();
    // SAFETY: valid pointers throughout; the context is freed at the end.
    unsafe {
        assert_eq!(veil_sframe_context_new(1, &mut ctx), veil_result::Ok);
        assert_eq!(
            veil_sframe_add_send_key(ctx, 300, b"key".as_ptr(), 3),
            veil_result::Ok
        );
        let mut out = [0u8; 64];
        // Counters 0..300 cross the header's growth from an inline CTR to one and two bytes.
        for _ in 0..300 {
            let (mut size, mut len) = (0, 0);
            assert_eq!(
                veil_sframe_encrypt_size(ctx, 300, 5, &mut size),
                veil_result::Ok
            );
            let r = veil_sframe_encrypt(
                ctx,
                300,
                ptr::null(),
                0,
                b"12345".as_ptr(),
                5,
                out.as_mut_ptr(),
                64,
                &mut len,
            );
            assert_eq!(r, veil_result::Ok);
            assert_eq!(size, len);
        }
        veil_sframe_context_free(ctx);
    }
}

#[test]
fn a_new_epoch_sends_from_its_activation_and_the_old_one_retires_ten_seconds_later() {
    let (alice, bob) = (protector(1), protector(2));
    for p in [alice, bob] {
        assert_eq!(install(p, 1, NOW, NOW), veil_result::Ok);
        assert_eq!(install(p, 2, NOW + 2_000, NOW + 1_000), veil_result::Ok);
    }
    let before = protect(alice, NOW + 1_500, b"old").unwrap();
    let after = protect(alice, NOW + 2_000, b"new").unwrap();
    assert_eq!(before[..4], 1u32.to_be_bytes());
    assert_eq!(after[..4], 2u32.to_be_bytes());
    assert_eq!(unprotect(bob, NOW + 2_000, &after).unwrap(), b"new");
    // Epoch 1 still opens until 10 s after epoch 2 arrived (at NOW + 1 s), then never.
    assert_eq!(unprotect(bob, NOW + 10_999, &before).unwrap(), b"old");
    let late = protect(alice, NOW + 1_600, b"late");
    assert_eq!(late.as_ref().map(|p| p[3]), Ok(1));
    assert_eq!(
        unprotect(bob, NOW + 11_000, &late.unwrap()),
        Err(veil_result::UnknownKey)
    );
    free(alice);
    free(bob);
}

#[test]
fn the_sender_slot_is_free_until_the_first_key_and_fixed_after() {
    let p = protector(VEIL_SLOT_UNSET);
    // SAFETY: a live protector.
    unsafe {
        assert_eq!(veil_protector_set_own_slot(p, 2), veil_result::Ok);
        assert_eq!(veil_protector_set_own_slot(p, 1), veil_result::Ok);
    }
    assert_eq!(install(p, 1, NOW, NOW), veil_result::Ok);
    // SAFETY: a live protector.
    unsafe {
        assert_eq!(veil_protector_set_own_slot(p, 1), veil_result::Ok);
        assert_eq!(veil_protector_set_own_slot(p, 2), veil_result::WrongState);
    }
    let packet = protect(p, NOW, b"x").unwrap();
    // KID = slot 1 << 48 | instance << 8 | stream 0, CTR 0 (RFC 9605 4.3): X set, a seven-byte
    // KID (0xE0) whose top byte is the slot and low byte the stream.
    assert_eq!((packet[4], packet[5], packet[11]), (0xE0, 0x01, 0x00));
    // SAFETY: a live protector.
    unsafe {
        assert_eq!(
            veil_protector_set_own_slot(p, VEIL_MAX_SENDER_SLOT + 1),
            veil_result::InvalidArgument
        );
    }
    free(p);
}

#[test]
fn a_protector_never_unprotects_its_own_packets_sent_back() {
    // A relay that reflects alice's packets to alice: RFC 9605 4.4.1, never decrypt with a
    // send key. Refused and counted, through the handle that sealed and through a worker.
    let (alice, bob) = (protector(1), protector(2));
    assert_eq!(install(alice, 1, NOW, NOW), veil_result::Ok);
    assert_eq!(install(bob, 1, NOW, NOW), veil_result::Ok);
    let packet = protect(alice, NOW, b"mine").unwrap();
    assert_eq!(
        unprotect(alice, NOW, &packet),
        Err(veil_result::WrongKeyDirection)
    );
    let mut worker = ptr::null_mut();
    // SAFETY: a live protector and a valid out-pointer.
    assert_eq!(
        unsafe { veil_protector_new_worker(alice, &mut worker) },
        veil_result::Ok
    );
    assert_eq!(
        unprotect(worker, NOW, &packet),
        Err(veil_result::WrongKeyDirection)
    );
    let seen = counters(alice);
    assert_eq!((seen.opened, seen.drop_reflected), (0, 1));
    assert_eq!(counters(worker).drop_reflected, 1);
    assert_eq!(unprotect(bob, NOW, &packet).unwrap(), b"mine");
    free(worker);
    free(alice);
    free(bob);
}

#[test]
fn the_same_key_in_a_fresh_protector_never_repeats_a_packet() {
    // A host that installs the same key into a new protector (after a restart, or twice for
    // one slot): each protector seals under its own random sender instance, so identical
    // plaintext at the same counter gives different packets, and the peer opens every one.
    let bob = protector(2);
    assert_eq!(install(bob, 1, NOW, NOW), veil_result::Ok);
    let mut packets = Vec::new();
    for _ in 0..3 {
        let alice = protector(1);
        assert_eq!(install(alice, 1, NOW, NOW), veil_result::Ok);
        packets.push(protect(alice, NOW, b"same").unwrap());
        free(alice);
    }
    assert_ne!(packets[0], packets[1]);
    assert_ne!(packets[1], packets[2]);
    assert_ne!(packets[0], packets[2]);
    for packet in &packets {
        assert_eq!(unprotect(bob, NOW, packet).unwrap(), b"same");
    }
    assert_eq!(counters(bob).drop_replay, 0);
    free(bob);
}

/// Send pointers across threads in the test; each handle is used by one thread only.
struct Handle(*mut veil_protector);
// SAFETY: the ABI documents that a handle may move between threads; this test uses each
// handle from exactly one thread at a time.
unsafe impl Send for Handle {}

#[test]
fn worker_handles_on_several_threads_never_reuse_a_counter() {
    let (alice, bob) = (protector(1), protector(2));
    assert_eq!(install(alice, 1, NOW, NOW), veil_result::Ok);
    assert_eq!(install(bob, 1, NOW, NOW), veil_result::Ok);
    let workers: Vec<Handle> = (0..4)
        .map(|_| {
            let mut w = ptr::null_mut();
            // SAFETY: a live protector and a valid out-pointer.
            assert_eq!(
                unsafe { veil_protector_new_worker(alice, &mut w) },
                veil_result::Ok
            );
            Handle(w)
        })
        .collect();
    let packets: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .iter()
            .map(|h| {
                let h = Handle(h.0);
                scope.spawn(move || {
                    let h = h;
                    (0..200)
                        .map(|_| protect(h.0, NOW, b"media").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    // Every packet opens once: no two share a counter (a repeat would be refused as a replay).
    for packet in &packets {
        assert_eq!(unprotect(bob, NOW, packet).unwrap(), b"media");
    }
    let mut counters = veil_protector_counters::default();
    // SAFETY: a live protector and a valid out-pointer.
    assert_eq!(
        unsafe { veil_protector_get_counters(bob, &mut counters) },
        veil_result::Ok
    );
    assert_eq!((counters.opened, counters.drop_replay), (800, 0));
    for w in workers {
        free(w.0);
    }
    free(alice);
    free(bob);
}

fn session(meeting_id: &[u8], user: &[u8]) -> *mut veil_session {
    let params = veil_session_params {
        meeting_id: meeting_id.as_ptr(),
        meeting_id_len: meeting_id.len(),
        meeting_uuid: b"uuid".as_ptr(),
        meeting_uuid_len: 4,
        user_id: user.as_ptr(),
        user_id_len: user.len(),
        device_id: b"d".as_ptr(),
        device_id_len: 1,
        display_name: user.as_ptr(),
        display_name_len: user.len(),
        leader_user_id: b"host".as_ptr(),
        leader_user_id_len: 4,
        leader_device_id: b"d".as_ptr(),
        leader_device_id_len: 1,
        pq: VEIL_PQ_PREFERRED,
    };
    let mut s = ptr::null_mut();
    // SAFETY: every buffer in `params` outlives the call; a valid out-pointer.
    let r = unsafe { veil_session_new(&params, [3u8; 32].as_ptr(), 32, NOW, &mut s) };
    assert_eq!(r, veil_result::Ok);
    s
}

#[test]
fn a_message_from_another_meeting_is_refused_counted_and_alerted() {
    let host = session(b"one", b"host");
    let stranger = session(b"two", b"guest");
    let mut message = vec![0u8; 16_384];
    let mut len = 0;
    // SAFETY: live sessions, buffers of the lengths given, valid out-pointers; freed at the end.
    unsafe {
        let r = veil_session_poll_transmit(stranger, message.as_mut_ptr(), message.len(), &mut len);
        assert_eq!(r, veil_result::Ok);
        let r = veil_session_handle_message(host, NOW, message.as_ptr(), len);
        assert_eq!(r, veil_result::WrongMeeting);

        let mut counters = veil_session_counters::default();
        assert_eq!(
            veil_session_get_counters(host, &mut counters),
            veil_result::Ok
        );
        assert_eq!(
            (counters.messages_accepted, counters.messages_refused),
            (0, 1)
        );

        let mut alert = None;
        let mut event = std::mem::MaybeUninit::<veil_event>::uninit();
        while veil_session_poll_event(host, event.as_mut_ptr()) == veil_result::Ok {
            let e = event.assume_init_ref();
            if e.kind == VEIL_EVENT_ALERT {
                let text = core::ffi::CStr::from_ptr(e.text.as_ptr())
                    .to_str()
                    .unwrap()
                    .to_owned();
                alert = Some((e.alert, text));
            }
        }
        let (code, text) = alert.expect("an alert event");
        assert_eq!(code, VEIL_ALERT_WRONG_MEETING);
        assert!(text.contains("another meeting"), "{text}");
        veil_session_free(host);
        veil_session_free(stranger);
    }
}

/// Finding 19.8: two handles opening the same packet in place at once both pass the replay
/// screen and both decrypt; the loser of the window's mark returned `VEIL_RESULT_REPLAY` with
/// the authenticated plaintext still in its buffer. On every failure the buffer must hold
/// exactly the packet it was given (veil.h: the ciphertext is restored).
#[test]
fn a_lost_race_on_the_same_packet_leaves_no_plaintext_in_place() {
    const PACKETS: usize = 3000;
    let (alice, bob) = (protector(1), protector(2));
    assert_eq!(install(alice, 1, NOW, NOW), veil_result::Ok);
    assert_eq!(install(bob, 1, NOW, NOW), veil_result::Ok);
    // Long packets: the wider the AEAD, the more often both handles are inside it at once.
    let plaintext = vec![0x5Au8; 1200];
    let packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|_| protect(alice, NOW, &plaintext).unwrap())
        .collect();
    let handles: Vec<Handle> = (0..2)
        .map(|_| {
            let mut w = ptr::null_mut();
            // SAFETY: a live protector and a valid out-pointer.
            assert_eq!(
                unsafe { veil_protector_new_worker(bob, &mut w) },
                veil_result::Ok
            );
            Handle(w)
        })
        .collect();
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<Vec<(veil_result, bool)>> = std::thread::scope(|scope| {
        let threads: Vec<_> = handles
            .iter()
            .map(|h| {
                let h = Handle(h.0);
                let (barrier, packets) = (&barrier, &packets);
                scope.spawn(move || {
                    let h = h;
                    let mut outcomes = Vec::with_capacity(PACKETS);
                    for packet in packets {
                        let mut buf = packet.clone();
                        let (mut offset, mut len) = (0usize, 0usize);
                        barrier.wait();
                        // SAFETY: a live handle used by this thread only; a buffer of its length.
                        let result = unsafe {
                            veil_protector_unprotect(
                                h.0,
                                NOW,
                                buf.as_mut_ptr(),
                                buf.len(),
                                &mut offset,
                                &mut len,
                            )
                        };
                        // On failure: exactly the packet, so no plaintext at all.
                        let intact = result == veil_result::Ok || buf == *packet;
                        outcomes.push((result, intact));
                    }
                    outcomes
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (n, (first, second)) in outcomes[0].iter().zip(&outcomes[1]).enumerate() {
        let results = [first.0, second.0];
        assert_eq!(
            results.iter().filter(|&&r| r == veil_result::Ok).count(),
            1,
            "packet {n}: exactly one handle opens it ({results:?})"
        );
        for outcome in [first, second] {
            assert!(
                outcome.1,
                "packet {n}: {:?} left the buffer changed (plaintext behind)",
                outcome.0
            );
        }
    }
    for h in handles {
        free(h.0);
    }
    free(alice);
    free(bob);
}
