use proptest::prelude::*;

use super::rtp::tests::build as build_rtp;
use super::*;
use crate::replay::ReplayError;
use crate::sframe::CipherSuite;
use crate::stream_key::StreamId;

const KID: u64 = (5 << 48) | (0x12_3456 << 8) | 1;
const MK_SEQ: u32 = 0x0102_0304;

fn contexts(suite: CipherSuite) -> (Context, Context) {
    let mut tx = Context::new(suite);
    tx.add_send_key(KID, b"stream base key").unwrap();
    let mut rx = Context::new(suite);
    rx.add_recv_key(KID, b"stream base key").unwrap();
    (tx, rx)
}

/// Seals `input` and returns the protected packet bytes.
fn protect(mode: Mode, tx: &mut Context, input: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + input.len() + 16];
    buf[HEADROOM..HEADROOM + input.len()].copy_from_slice(input);
    let range = seal(mode, tx, KID, MK_SEQ, &mut buf, HEADROOM, input.len()).unwrap();
    buf[range].to_vec()
}

fn unprotect(
    mode: Mode,
    rx: &Context,
    windows: &mut ReplayWindows,
    packet: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let parsed = Protected::parse(mode, &buf)?;
    let range = open(rx, windows, &parsed, &mut buf)?;
    Ok(buf[range].to_vec())
}

fn rtp_packet(payload: &[u8]) -> Vec<u8> {
    let ext = [0x11, 0xaa, 0xbb, 0x00];
    [build_rtp(2, Some((0xBEDE, &ext))), payload.to_vec()].concat()
}

/// What the local client hands the sealer in `mode`: the payload itself, or an RTP packet
/// carrying it.
fn input_for(mode: Mode, payload: &[u8]) -> Vec<u8> {
    match mode {
        Mode::Datagram => payload.to_vec(),
        Mode::Rtp => rtp_packet(payload),
    }
}

proptest! {
    #[test]
    fn datagrams_round_trip(
        suite in proptest::sample::select(CipherSuite::ALL.to_vec()),
        payload in proptest::collection::vec(any::<u8>(), 0..=9000),
    ) {
        let (mut tx, rx) = contexts(suite);
        let wire = protect(Mode::Datagram, &mut tx, &payload);
        prop_assert_eq!(&wire[..4], &MK_SEQ.to_be_bytes());
        // A header of a config byte and a 7-byte KID (slot 5 in the top bits); CTR 0 is inline.
        prop_assert_eq!(wire.len(), 4 + 8 + payload.len() + suite.tag_len());
        let mut windows = ReplayWindows::new();
        prop_assert_eq!(unprotect(Mode::Datagram, &rx, &mut windows, &wire).unwrap(), payload);
    }

    #[test]
    fn rtp_packets_round_trip_with_the_header_in_the_clear(
        payload in proptest::collection::vec(any::<u8>(), 0..=1500),
    ) {
        let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
        let packet = rtp_packet(&payload);
        let header_len = packet.len() - payload.len();
        let wire = protect(Mode::Rtp, &mut tx, &packet);
        prop_assert_eq!(&wire[..header_len], &packet[..header_len]);
        prop_assert_eq!(&wire[header_len..header_len + 4], &MK_SEQ.to_be_bytes());
        let mut windows = ReplayWindows::new();
        prop_assert_eq!(unprotect(Mode::Rtp, &rx, &mut windows, &wire).unwrap(), packet);
    }
}

#[test]
fn the_payload_never_appears_in_the_clear() {
    let (mut tx, _) = contexts(CipherSuite::Aes256GcmSha512_128);
    let secret = b"a plaintext marker that must not leak";
    for mode in [Mode::Datagram, Mode::Rtp] {
        let input = input_for(mode, secret);
        let wire = protect(mode, &mut tx, &input);
        assert!(!wire.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
    }
}

#[test]
fn every_bit_of_the_associated_data_and_body_is_authenticated() {
    let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
    for mode in [Mode::Datagram, Mode::Rtp] {
        let input = input_for(mode, b"media");
        let wire = protect(mode, &mut tx, &input);
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut windows = ReplayWindows::new();
            assert!(
                unprotect(mode, &rx, &mut windows, &bad).is_err(),
                "{mode:?} bit {bit}"
            );
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
    for mode in [Mode::Datagram, Mode::Rtp] {
        let input = input_for(mode, b"media");
        let wire = protect(mode, &mut tx, &input);
        for cut in 0..wire.len() {
            let mut windows = ReplayWindows::new();
            assert!(unprotect(mode, &rx, &mut windows, &wire[..cut]).is_err());
        }
    }
}

#[test]
fn a_replay_is_refused_and_counted() {
    let (mut tx, rx) = contexts(CipherSuite::Aes128GcmSha256_128);
    let wire = protect(Mode::Datagram, &mut tx, b"once");
    let mut windows = ReplayWindows::new();
    unprotect(Mode::Datagram, &rx, &mut windows, &wire).unwrap();
    let err = unprotect(Mode::Datagram, &rx, &mut windows, &wire).unwrap_err();
    assert_eq!(err, Error::Replay(ReplayError::Duplicate));
    assert_eq!(err.drop_reason(), DropReason::Replay);
}

#[test]
fn a_forged_header_cannot_poison_the_window() {
    let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
    let genuine: Vec<_> = (0..3)
        .map(|_| protect(Mode::Datagram, &mut tx, b"media"))
        .collect();
    // A forgery claiming a counter far ahead, with garbage where the ciphertext should be.
    let mut forged = MK_SEQ.to_be_bytes().to_vec();
    let (hdr, len) = Header::new(KID, 1 << 40).to_bytes();
    forged.extend_from_slice(&hdr[..len]);
    forged.extend_from_slice(&[0u8; 21]);
    let mut windows = ReplayWindows::new();
    let err = unprotect(Mode::Datagram, &rx, &mut windows, &forged).unwrap_err();
    assert_eq!(err.drop_reason(), DropReason::AuthFailure);
    for packet in &genuine {
        assert_eq!(
            unprotect(Mode::Datagram, &rx, &mut windows, packet).unwrap(),
            b"media"
        );
    }
}

#[test]
fn a_packet_of_another_epoch_fails_authentication() {
    // The receiver mistakenly uses this epoch's key for a packet claiming another mkSeqNum:
    // the mkSeqNum is associated data, so the tag does not verify.
    let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
    let mut wire = protect(Mode::Datagram, &mut tx, b"media");
    wire[..4].copy_from_slice(&(MK_SEQ + 1).to_be_bytes());
    let mut windows = ReplayWindows::new();
    let err = unprotect(Mode::Datagram, &rx, &mut windows, &wire).unwrap_err();
    assert_eq!(err, Error::Sframe(sframe::Error::AuthenticationFailed));
}

#[test]
fn rejections_map_to_their_counters() {
    let (mut tx, _) = contexts(CipherSuite::Aes256GcmSha512_128);
    let wire = protect(Mode::Datagram, &mut tx, b"media");
    let mut windows = ReplayWindows::new();
    let stranger = Context::new(CipherSuite::Aes256GcmSha512_128);
    let err = unprotect(Mode::Datagram, &stranger, &mut windows, &wire).unwrap_err();
    assert_eq!(err.drop_reason(), DropReason::UnknownKey);
    assert_eq!(
        Protected::parse(Mode::Datagram, &wire[..3]).unwrap_err(),
        Error::Truncated
    );
    let bad_rtp = Protected::parse(Mode::Rtp, &[0u8; 20]).unwrap_err();
    assert_eq!(bad_rtp.drop_reason(), DropReason::BadHeader);
    assert_eq!(
        Error::Replay(ReplayError::TooOld).drop_reason(),
        DropReason::TooOld
    );
    assert_eq!(Error::Reflected(KID).drop_reason(), DropReason::Reflected);
    assert_eq!(
        Error::StreamLimit(KID).drop_reason(),
        DropReason::StreamLimit
    );
    let mut counters = DropCounters::default();
    counters.record(DropReason::Replay);
    counters.record(DropReason::Replay);
    assert_eq!((counters.get(DropReason::Replay), counters.total()), (2, 2));
}

#[test]
fn sealing_checks_room_before_using_a_counter() {
    let (mut tx, rx) = contexts(CipherSuite::Aes256GcmSha512_128);
    let mut buf = vec![0u8; 64];
    let err = seal(Mode::Datagram, &mut tx, KID, MK_SEQ, &mut buf, 4, 10).unwrap_err();
    assert_eq!(
        err,
        Error::Sframe(sframe::Error::HeadroomTooSmall { needed: 12, got: 4 })
    );
    let err = seal(Mode::Datagram, &mut tx, KID, MK_SEQ, &mut buf, 21, 40).unwrap_err();
    assert_eq!(
        err,
        Error::Sframe(sframe::Error::BufferTooSmall {
            needed: 77,
            got: 64
        })
    );
    let err = seal(Mode::Rtp, &mut tx, KID, MK_SEQ, &mut buf, 21, 8).unwrap_err();
    assert_eq!(err, Error::Rtp(rtp::RtpError::Truncated));
    let wire = protect(Mode::Datagram, &mut tx, b"first");
    assert_eq!(
        Protected::parse(Mode::Datagram, &wire).unwrap().header.ctr,
        0
    );
    let mut windows = ReplayWindows::new();
    assert_eq!(
        unprotect(Mode::Datagram, &rx, &mut windows, &wire).unwrap(),
        b"first"
    );
}

#[test]
fn stream_ids_name_the_kid() {
    let id = StreamId::from_kid(KID);
    assert_eq!(
        (id.sender_slot, id.sender_instance, id.stream_index),
        (5, 0x12_3456, 1)
    );
}
