//! The relay's routing, without sockets: which datagrams of a batch go to which address.
//!
//! Each datagram to forward carries its meeting's [`MeetingKey`]; the batch is grouped by it
//! (a sort of at most one batch of indices), and every member of each meeting present gets the
//! datagrams of that meeting it did not send, in arrival order. An address belongs to one
//! meeting, so no destination is visited twice and no "already served" set is needed: the work
//! per copy is one comparison and the copy itself (finding 19.1: the loop before compared whole
//! member lists and searched a served list per copy, so its cost grew with the meeting).

use dataplane::batch::Batch;

use super::table::{MeetingKey, Peer, Table};

/// Reused buffers of the routing step.
#[derive(Debug)]
pub struct Fanout {
    order: Vec<(MeetingKey, usize)>,
    out: Batch,
}

impl Default for Fanout {
    fn default() -> Self {
        Self::new()
    }
}

impl Fanout {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            order: Vec::new(),
            out: Batch::new(),
        }
    }

    /// Calls `send(destination, datagrams)` once per member of each meeting in `batch` that
    /// has something to receive. `media[i]` is the meeting and the sender of datagram `i` if
    /// it is to be forwarded, else `None`; the sender gets no copy of its own datagram.
    pub fn route<P: Peer>(
        &mut self,
        batch: &Batch,
        media: &[Option<(MeetingKey, P)>],
        table: &Table<P>,
        mut send: impl FnMut(P, &Batch),
    ) {
        self.order.clear();
        self.order.extend(
            media
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.map(|(k, _)| (k, i))),
        );
        // By meeting, then by arrival: each meeting's datagrams leave in the order they came.
        self.order.sort_unstable();
        let mut rest = self.order.as_slice();
        while let Some(&(key, _)) = rest.first() {
            let run = rest.iter().take_while(|(k, _)| *k == key).count();
            let (group, tail) = rest.split_at(run);
            rest = tail;
            for &dest in table.members_of(key) {
                self.out.clear();
                for &(_, j) in group {
                    let sender = media.get(j).copied().flatten().map(|(_, p)| p);
                    if sender != Some(dest) {
                        self.out.push_wire(batch.packet(j), None);
                    }
                }
                if !self.out.is_empty() {
                    send(dest, &self.out);
                }
            }
        }
    }
}
