//! The meeting keys a participant holds, from arrival to certification to retirement
//! (whitepaper 3.7.6, v4.6 meetings: key rotation and liveness).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::time::Millis;

struct Epoch {
    mk: Zeroizing<[u8; 32]>,
    received_at: Millis,
    handed_off: bool,
    retire_at: Option<Millis>,
}

/// What became ready when a key was certified.
pub(crate) struct Ready {
    pub(crate) mk_seq: u32,
    pub(crate) mk: Zeroizing<[u8; 32]>,
    pub(crate) activate_at: Millis,
}

/// Keys by `mkSeqNum`, zeroized when retired or dropped.
#[derive(Default)]
pub(crate) struct KeyRing {
    epochs: BTreeMap<u32, Epoch>,
    highest: u32,
    certified: u32,
}

impl KeyRing {
    /// The highest `mkSeqNum` received (0 before the first).
    pub(crate) fn highest(&self) -> u32 {
        self.highest
    }

    /// Stores a key newer than every key seen; older ones are scheduled to retire
    /// `retire_after` later. Returns the `(mk_seq, at)` retirements scheduled.
    /// The caller has checked `mk_seq > highest`.
    pub(crate) fn insert(
        &mut self,
        mk_seq: u32,
        mk: &[u8; 32],
        now: Millis,
        retire_after: u64,
    ) -> Vec<(u32, Millis)> {
        let mut retired = Vec::new();
        for (&seq, e) in self.epochs.iter_mut() {
            if e.retire_at.is_none() {
                let at = now.after(retire_after);
                e.retire_at = Some(at);
                retired.push((seq, at));
            }
        }
        self.epochs.insert(
            mk_seq,
            Epoch {
                mk: Zeroizing::new(*mk),
                received_at: now,
                handed_off: false,
                retire_at: None,
            },
        );
        self.highest = mk_seq;
        retired
    }

    /// Records that a heartbeat certified `mk_seq`; returns the key if it is held, newly
    /// certified, and not yet handed to the dataplane.
    pub(crate) fn certify(&mut self, mk_seq: u32, now: Millis, delay: u64) -> Option<Ready> {
        self.certified = self.certified.max(mk_seq);
        let e = self.epochs.get_mut(&mk_seq)?;
        if e.handed_off {
            return None;
        }
        e.handed_off = true;
        // 3.7.6: wait ~2 s after arrival; v4.6: and not before the certifying heartbeat.
        let activate_at = e.received_at.after(delay).max(now);
        Some(Ready {
            mk_seq,
            mk: e.mk.clone(),
            activate_at,
        })
    }

    /// Whether a heartbeat already certified `mk_seq` before the key arrived.
    pub(crate) fn is_certified(&self, mk_seq: u32) -> bool {
        self.certified >= mk_seq
    }

    /// Drops (and zeroizes) keys whose retirement time has come.
    pub(crate) fn expire(&mut self, now: Millis) {
        self.epochs
            .retain(|_, e| e.retire_at.is_none_or(|at| at > now));
    }

    /// The next retirement time.
    pub(crate) fn next_timeout(&self) -> Option<Millis> {
        self.epochs.values().filter_map(|e| e.retire_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certify_once_activate_late_retire_after_newer() {
        let mut ring = KeyRing::default();
        assert!(ring.insert(1, &[1; 32], Millis(1_000), 10_000).is_empty());
        // Certified at once: activation still waits the 2 s delay.
        let r = ring.certify(1, Millis(1_500), 2_000).unwrap();
        assert_eq!((r.mk_seq, r.activate_at), (1, Millis(3_000)));
        assert!(
            ring.certify(1, Millis(1_600), 2_000).is_none(),
            "handed off once"
        );
        // Certified late: activation is the certification time.
        ring.insert(2, &[2; 32], Millis(5_000), 10_000);
        assert_eq!(ring.next_timeout(), Some(Millis(15_000)));
        let r = ring.certify(2, Millis(9_000), 2_000).unwrap();
        assert_eq!(r.activate_at, Millis(9_000));
        ring.expire(Millis(14_999));
        assert_eq!(ring.epochs.len(), 2);
        ring.expire(Millis(15_000));
        assert_eq!(ring.epochs.keys().copied().collect::<Vec<_>>(), vec![2]);
        // A heartbeat may certify before the key arrives.
        assert!(ring.certify(3, Millis(16_000), 2_000).is_none());
        assert!(ring.is_certified(3));
    }
}
