//! The meeting keys a participant holds, from arrival to certification to retirement
//! (whitepaper 3.7.6, v4.6 meetings: key rotation and liveness).
//!
//! A key reaches the dataplane only together with the roster that a verified heartbeat
//! certified for exactly its `mkSeqNum` (v4.6: "heartbeats certify both the mkSeqNum and
//! the list of participants for whom mkSeqNum is accessible"). A key older than the newest
//! certified one is superseded: it is never handed off, so a board that delays one rekey
//! cannot make a participant send under a key a removed member still holds.
//!
//! These are the session's own copies (the whitepaper's "meeting keys held"), not the
//! dataplane's keyring (`dataplane::keyring::Keyring`), which receives each certified key as a
//! [`super::KeyUpdate`] and keeps its own epochs, derived keys and replay windows.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::error::MeetingError;
use crate::time::Millis;
use crate::wire::ParticipantId;

/// Sender slot -> identity, as a heartbeat certified it.
pub(crate) type Roster = BTreeMap<u32, ParticipantId>;

/// One meeting key this participant holds, and where it stands.
struct HeldKey {
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
    pub(crate) roster: Roster,
}

/// The newest key a verified heartbeat certified, with the list it certified.
struct Certified {
    mk_seq: u32,
    roster: Roster,
}

/// What a verified heartbeat's certification means for this participant.
pub(crate) enum Certification {
    /// The key is held and goes to the dataplane now.
    Ready(Ready),
    /// The key is held and was handed off before.
    Held,
    /// A key this participant never received: it must not keep sending under an older
    /// one, and asks the leader for it.
    Missing,
}

/// The meeting keys this participant holds, by `mkSeqNum`; zeroized when retired or dropped.
#[derive(Default)]
pub(crate) struct HeldKeys {
    keys: BTreeMap<u32, HeldKey>,
    highest: u32,
    certified: Option<Certified>,
}

impl HeldKeys {
    /// The highest `mkSeqNum` received (0 before the first).
    pub(crate) fn highest(&self) -> u32 {
        self.highest
    }

    /// The highest `mkSeqNum` a verified heartbeat certified (0 before the first).
    pub(crate) fn certified(&self) -> u32 {
        self.certified.as_ref().map_or(0, |c| c.mk_seq)
    }

    /// The key of `mk_seq`, if held.
    pub(crate) fn get(&self, mk_seq: u32) -> Option<&[u8; 32]> {
        self.keys.get(&mk_seq).map(|e| &*e.mk)
    }

    /// Whether a heartbeat certified a key this participant does not hold.
    pub(crate) fn missing(&self) -> bool {
        self.certified() > self.highest
    }

    /// Checks that a rekey for `mk_seq` may be stored: above every key received
    /// (whitepaper 3.7.6: otherwise ignored) and not superseded by a certified newer key.
    pub(crate) fn check_new(&self, mk_seq: u32) -> Result<(), MeetingError> {
        if mk_seq <= self.highest {
            return Err(MeetingError::StaleKey {
                mk_seq,
                highest: self.highest,
            });
        }
        if mk_seq < self.certified() {
            return Err(MeetingError::SupersededKey {
                mk_seq,
                certified: self.certified(),
            });
        }
        Ok(())
    }

    /// Stores a key that passed [`HeldKeys::check_new`]; older ones are scheduled to retire
    /// `retire_after` later. Returns the retirements scheduled, and the key itself if a
    /// heartbeat already certified exactly this `mkSeqNum`.
    pub(crate) fn insert(
        &mut self,
        mk_seq: u32,
        mk: &[u8; 32],
        now: Millis,
        retire_after: u64,
        activation_delay: u64,
    ) -> (Vec<(u32, Millis)>, Option<Ready>) {
        let mut retired = Vec::new();
        for (&seq, e) in self.keys.iter_mut() {
            if e.retire_at.is_none() {
                let at = now.after(retire_after);
                e.retire_at = Some(at);
                retired.push((seq, at));
            }
        }
        self.keys.insert(
            mk_seq,
            HeldKey {
                mk: Zeroizing::new(*mk),
                received_at: now,
                handed_off: false,
                retire_at: None,
            },
        );
        self.highest = mk_seq;
        let ready = match &self.certified {
            Some(c) if c.mk_seq == mk_seq => {
                let roster = c.roster.clone();
                self.hand_off(mk_seq, roster, now, activation_delay)
            }
            _ => None,
        };
        (retired, ready)
    }

    /// Records that a verified heartbeat certified `mk_seq` for `roster`. The caller has
    /// checked that `mk_seq` is not below [`HeldKeys::certified`].
    pub(crate) fn certify(
        &mut self,
        mk_seq: u32,
        roster: Roster,
        now: Millis,
        delay: u64,
    ) -> Certification {
        self.certified = Some(Certified {
            mk_seq,
            roster: roster.clone(),
        });
        match self.keys.get(&mk_seq) {
            None => Certification::Missing,
            Some(e) if e.handed_off => Certification::Held,
            Some(_) => match self.hand_off(mk_seq, roster, now, delay) {
                Some(ready) => Certification::Ready(ready),
                None => Certification::Held,
            },
        }
    }

    fn hand_off(&mut self, mk_seq: u32, roster: Roster, now: Millis, delay: u64) -> Option<Ready> {
        let e = self.keys.get_mut(&mk_seq)?;
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
            roster,
        })
    }

    /// Retires every key older than `mk_seq` at `now` (sending under a superseded key
    /// must stop); returns the retirements for the dataplane.
    pub(crate) fn retire_older_than(&mut self, mk_seq: u32, now: Millis) -> Vec<(u32, Millis)> {
        let mut retired = Vec::new();
        for (&seq, e) in self.keys.range_mut(..mk_seq) {
            if e.retire_at.is_none_or(|at| at > now) {
                e.retire_at = Some(now);
                retired.push((seq, now));
            }
        }
        retired
    }

    /// On a leader change: forgets keys that no verified heartbeat certified (the old
    /// leader's last rotation, if its heartbeat never came), so that the new leader's
    /// first key, numbered above every certified one, is accepted (v4.6 key rotation).
    pub(crate) fn drop_uncertified(&mut self) {
        let certified = self.certified();
        self.keys.retain(|&seq, e| seq <= certified || e.handed_off);
        self.highest = self.keys.keys().next_back().copied().unwrap_or(0);
        // The certified key was scheduled to retire because a now forgotten key arrived: it
        // is the current key again.
        if let Some(e) = self.keys.get_mut(&certified) {
            e.retire_at = None;
        }
    }

    /// Drops (and zeroizes) keys whose retirement time has come.
    pub(crate) fn expire(&mut self, now: Millis) {
        self.keys
            .retain(|_, e| e.retire_at.is_none_or(|at| at > now));
    }

    /// The next retirement time.
    pub(crate) fn next_timeout(&self) -> Option<Millis> {
        self.keys.values().filter_map(|e| e.retire_at).min()
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(n: u32) -> Roster {
        (0..n)
            .map(|s| (s, ParticipantId::new(&[b'a' + s as u8], b"d").unwrap()))
            .collect()
    }

    #[test]
    fn certify_once_activate_late_retire_after_newer() {
        let mut held = HeldKeys::default();
        let (retired, ready) = held.insert(1, &[1; 32], Millis(1_000), 10_000, 2_000);
        assert!(retired.is_empty() && ready.is_none());
        // Certified at once: activation still waits the 2 s delay.
        let Certification::Ready(r) = held.certify(1, roster(2), Millis(1_500), 2_000) else {
            panic!("ready")
        };
        assert_eq!(
            (r.mk_seq, r.activate_at, r.roster.len()),
            (1, Millis(3_000), 2)
        );
        assert!(matches!(
            held.certify(1, roster(2), Millis(1_600), 2_000),
            Certification::Held
        ));
        // Certified late: activation is the certification time.
        held.check_new(2).unwrap();
        held.insert(2, &[2; 32], Millis(5_000), 10_000, 2_000);
        assert_eq!(held.next_timeout(), Some(Millis(15_000)));
        let Certification::Ready(r) = held.certify(2, roster(3), Millis(9_000), 2_000) else {
            panic!("ready")
        };
        assert_eq!(r.activate_at, Millis(9_000));
        held.expire(Millis(14_999));
        assert_eq!(held.len(), 2);
        held.expire(Millis(15_000));
        assert_eq!(held.keys.keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    /// A heartbeat may certify before the key arrives: the key is handed off on arrival
    /// with the roster certified for exactly its mkSeqNum, not the list held at arrival.
    #[test]
    fn a_key_certified_before_it_arrives_carries_the_certified_roster() {
        let mut held = HeldKeys::default();
        assert!(matches!(
            held.certify(3, roster(2), Millis(16_000), 2_000),
            Certification::Missing
        ));
        assert!(held.missing());
        let (_, ready) = held.insert(3, &[3; 32], Millis(16_100), 10_000, 2_000);
        let ready = ready.expect("handed off on arrival");
        assert_eq!(ready.roster, roster(2));
        assert!(!held.missing());
    }

    /// Finding 1 of the security review: `is_certified` compared with `>=`, so a late older
    /// key was handed off with the current roster. An older key is now refused.
    #[test]
    fn a_key_older_than_the_certified_one_is_superseded() {
        let mut held = HeldKeys::default();
        held.insert(1, &[1; 32], Millis(0), 10_000, 2_000);
        let _ = held.certify(1, roster(3), Millis(0), 2_000);
        // The kick's rotation (3) is certified, but only key 2 (still shared with the kicked
        // member) arrives.
        assert!(matches!(
            held.certify(3, roster(2), Millis(10), 2_000),
            Certification::Missing
        ));
        assert_eq!(
            held.check_new(2),
            Err(MeetingError::SupersededKey {
                mk_seq: 2,
                certified: 3
            })
        );
        assert_eq!(
            held.retire_older_than(3, Millis(2_010)),
            vec![(1, Millis(2_010))]
        );
        held.expire(Millis(2_010));
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn a_leader_change_forgets_uncertified_keys() {
        let mut held = HeldKeys::default();
        held.insert(1, &[1; 32], Millis(0), 10_000, 2_000);
        let _ = held.certify(1, roster(2), Millis(0), 2_000);
        held.insert(2, &[2; 32], Millis(5), 10_000, 2_000);
        held.drop_uncertified();
        assert_eq!((held.highest(), held.len()), (1, 1));
        assert_eq!(held.next_timeout(), None, "key 1 is current again");
        held.check_new(2).unwrap();
    }
}
