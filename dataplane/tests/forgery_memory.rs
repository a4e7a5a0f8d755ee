//! Forged packets never make a receiver keep memory (review finding 19.5: with a roster of 1,000,
//! one forged packet per KID added 185 MiB to one worker for one epoch).
//!
//! Each forgery names a real epoch and a KID whose sender slot is in the roster, so it reaches
//! key derivation and the AEAD, and carries a wrong tag. The KIDs are `(n << 8) | stream` for
//! n below the roster size and every stream index: every roster member's every stream in the
//! KID layout of data-plane wire version 1, and 200 sender instances of slot 0's every stream
//! in version 2 (docs/PROTOCOL.md). A counting allocator measures the heap this thread holds
//! before and after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{HEADROOM, Mode};
use dataplane::sframe::{CipherSuite, Header};
use zeroize::Zeroizing;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::live_bytes;

const ROSTER: u32 = 200;
/// The receiver's own slot: outside the forged range, in the roster.
const OWN_SLOT: u32 = 1_000;
/// What the receiver may keep after every forgery: its per-epoch bookkeeping, not per KID.
const BOUND: i64 = 64 * 1024;

fn ring() -> Keyring {
    let ring = Keyring::new(MeetingConfig {
        meeting_id: b"m".to_vec(),
        meeting_uuid: b"u".to_vec(),
        own_slot: OWN_SLOT,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    let roster: BTreeMap<u32, Vec<u8>> = (0..ROSTER)
        .chain([OWN_SLOT])
        .map(|slot| (slot, format!("member-{slot}").into_bytes()))
        .collect();
    ring.install(
        EpochKey {
            mk_seq: 1,
            meeting_key: Zeroizing::new([7; 32]),
            roster,
            activate_at: Millis(0),
        },
        Millis(0),
    )
    .unwrap();
    ring
}

#[test]
fn forgeries_over_every_kid_leave_no_memory_behind() {
    for mode in [Mode::Datagram, Mode::Rtp] {
        let ring = ring();
        let mut rx = WorkerKeys::new(mode);
        let rtp: &[u8] = &[0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
        let prefix = if mode == Mode::Rtp { rtp } else { &[] };
        let mut buf = vec![0u8; HEADROOM + 64];
        // One warm-up forgery: the worker's per-epoch state is made once, not per KID.
        let warm = |rx: &mut WorkerKeys, buf: &mut Vec<u8>, kid: u64| {
            let (header, len) = Header::new(kid, 0).to_bytes();
            buf.clear();
            buf.extend_from_slice(prefix);
            buf.extend_from_slice(&1u32.to_be_bytes());
            buf.extend_from_slice(&header[..len]);
            buf.extend_from_slice(&[0xaa; 32]);
            assert!(rx.open(&ring.load(), Millis(0), buf).is_err());
        };
        warm(&mut rx, &mut buf, 0);
        let before = live_bytes();
        for n in 0..u64::from(ROSTER) {
            for stream in 0..=255u64 {
                warm(&mut rx, &mut buf, (n << 8) | stream);
            }
        }
        let kept = live_bytes() - before;
        assert!(
            kept < BOUND,
            "{mode:?}: {} forgeries left {kept} bytes behind",
            ROSTER * 256
        );
    }
}
