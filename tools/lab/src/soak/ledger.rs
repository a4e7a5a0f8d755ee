//! The soak's accounting: which packets of which sender each receiver got, judged against the
//! fault windows. A packet is expected at every other participant unless it was sent inside a
//! window of a fault that affects the sender or the receiver.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::demo::traffic::Arrivals;

/// One fault's window: from the fault until media flowed again for the affected participants.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// What the fault was.
    pub(crate) fault: &'static str,
    /// The one participant it affects, or None for everyone.
    pub(crate) affected: Option<u8>,
    /// When the fault began.
    pub(crate) start: Instant,
    /// When the fault was over (the restart began, the link came back): recovery counts from here.
    pub(crate) cleared: Instant,
    /// When media flowed again on every affected pair, or None if it never did in time.
    pub(crate) recovered: Option<Instant>,
    /// The end of the window: `recovered`, or when the soak gave up waiting.
    pub(crate) end: Instant,
}

/// Packets sent this long before a fault may still be in flight (a socket buffer, the relay's
/// queue) when it strikes: they are the fault's losses, not the quiet period's.
pub(crate) const IN_FLIGHT: Duration = Duration::from_millis(200);

impl Window {
    fn covers(&self, at: Instant, receiver: u8, sender: u8) -> bool {
        at + IN_FLIGHT >= self.start
            && at <= self.end
            && self.affected.is_none_or(|p| p == receiver || p == sender)
    }
}

/// What the packets showed.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Deliveries expected outside every window (packet x receiver).
    pub(crate) expected: u64,
    /// Of those, how many never arrived.
    pub(crate) lost_outside: u64,
    /// Lost deliveries inside each window, in window order.
    pub(crate) lost_in_window: Vec<u64>,
    /// The pairs that lost packets outside the windows: (receiver, sender) -> (count, first
    /// loss in seconds since the soak started).
    pub(crate) lossy_pairs: BTreeMap<(u8, u8), (u64, f64)>,
}

/// Counts every packet sent after `from` by every sender at every other receiver.
pub(crate) fn tally(
    sent: &BTreeMap<u8, Vec<Instant>>,
    received: &BTreeMap<u8, Arrivals>,
    windows: &[Window],
    from: Instant,
    soak_start: Instant,
) -> Tally {
    let mut tally = Tally {
        lost_in_window: vec![0; windows.len()],
        ..Tally::default()
    };
    for (receiver, arrivals) in received {
        for (sender, times) in sent.iter().filter(|(s, _)| *s != receiver) {
            let got: HashSet<u64> = arrivals
                .get(sender)
                .map(|a| a.iter().map(|(c, _)| *c).collect())
                .unwrap_or_default();
            for (counter, at) in (0u64..).zip(times) {
                if *at < from {
                    continue;
                }
                let window = windows
                    .iter()
                    .position(|w| w.covers(*at, *receiver, *sender));
                let arrived = got.contains(&counter);
                match window {
                    Some(w) => {
                        if !arrived && let Some(n) = tally.lost_in_window.get_mut(w) {
                            *n += 1;
                        }
                    }
                    None => {
                        tally.expected += 1;
                        if !arrived {
                            tally.lost_outside += 1;
                            let offset = at.saturating_duration_since(soak_start).as_secs_f64();
                            let entry = tally
                                .lossy_pairs
                                .entry((*receiver, *sender))
                                .or_insert((0, offset));
                            entry.0 += 1;
                        }
                    }
                }
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_inside_a_window_are_excused_only_for_the_affected_pairs() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Two senders, packets at 0, 100, ..., 900 ms.
        let times: Vec<Instant> = (0..10).map(|i| at(i * 100)).collect();
        let sent = BTreeMap::from([(0u8, times.clone()), (1, times.clone()), (2, times)]);
        // Receiver 0 misses 1's packets 3..=5 (inside 1's window); receiver 2 misses 0's
        // packet 4 (outside any window that affects 0 or 2) and 1's packet 4 (inside).
        let all = |skip: &[u64]| -> Vec<(u64, Instant)> {
            (0..10)
                .filter(|c| !skip.contains(c))
                .map(|c| (c, at(c * 100 + 5)))
                .collect()
        };
        let received = BTreeMap::from([
            (0u8, BTreeMap::from([(1u8, all(&[3, 4, 5])), (2, all(&[]))])),
            (1, BTreeMap::from([(0u8, all(&[])), (2, all(&[]))])),
            (2, BTreeMap::from([(0u8, all(&[4])), (1, all(&[4]))])),
        ]);
        let window = Window {
            fault: "cut",
            affected: Some(1),
            start: at(250) + IN_FLIGHT,
            cleared: at(550),
            recovered: Some(at(550)),
            end: at(550),
        };
        let t = tally(&sent, &received, &[window], t0, t0);
        assert_eq!(t.lost_in_window, vec![4]);
        assert_eq!(t.lost_outside, 1);
        assert_eq!(t.lossy_pairs.get(&(2, 0)).map(|e| e.0), Some(1));
        // 6 pairs x 10 packets, minus the 3 packets of sender 1 inside the window at 4
        // receivers' pairs (0<-1, 2<-1) and receiver 1's pairs (1<-0, 1<-2).
        assert_eq!(t.expected, 60 - 4 * 3);
    }
}
