//! Who is in which meeting: the relay's registrations, sans-IO (time comes in as an argument).
//!
//! A registration maps a source address (or, in the server, a WebTransport session: any
//! [`Peer`]) to a meeting; the relay forwards a datagram from a registered address to every
//! other address of its meeting. An entry lives for the TTL after
//! its last refresh. The same (meeting, token) from a new address replaces the old address (a
//! NAT rebinding or a restarted sidecar), and an address that registers for another meeting
//! moves there. Only verified registrations reach the table (ticket and cookie checked by the
//! caller).
//!
//! Every lookup the forwarding loop makes is O(1): an address maps to its meeting's slot, a
//! meeting holds its addresses in a vector (removal swaps the last one in) and its tokens in a
//! map. Three limits bound it: addresses in all (`--max-registrations`), addresses per meeting
//! (`--max-meeting-members`: one meeting cannot take the whole table, and one datagram in never
//! becomes more than that many out) and addresses per source IP (`--max-per-source`: one host
//! cannot fill a meeting with its own ports).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::registration::Kind;

/// What applying a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new address joined a meeting.
    Joined,
    /// A known address refreshed its entry.
    Refreshed,
    /// The address left.
    Left,
    /// A leave from an address that was not registered.
    NotRegistered,
    /// Refused by a limit; nothing changed.
    Refused(Limit),
}

/// The limit a refused registration hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The table holds `--max-registrations` addresses.
    Table,
    /// The meeting holds `--max-meeting-members` addresses.
    Meeting,
    /// The source IP holds `--max-per-source` addresses.
    Source,
}

/// The table's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Addresses in all meetings.
    pub total: usize,
    /// Addresses in one meeting.
    pub per_meeting: usize,
    /// Addresses with one source IP, across meetings.
    pub per_source: usize,
}

/// What the table registers: a UDP source address, or (in the server) a WebTransport session.
/// Its source IP is what `--max-per-source` counts.
pub trait Peer: Copy + Eq + Hash + fmt::Debug {
    /// The IP the per-source limit counts this peer under.
    fn source_ip(&self) -> IpAddr;
}

impl Peer for SocketAddr {
    fn source_ip(&self) -> IpAddr {
        self.ip()
    }
}

/// A meeting's slot: stable while the meeting has members, so the forwarding loop can group a
/// batch's datagrams by it.
pub type MeetingKey = u32;

#[derive(Debug)]
struct Member {
    meeting: MeetingKey,
    token: String,
    expires: Instant,
    /// Index in the meeting's `addrs`.
    position: usize,
}

#[derive(Debug)]
struct Meeting<P> {
    id: Vec<u8>,
    addrs: Vec<P>,
    tokens: HashMap<String, P>,
}

/// A registration the caller verified.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Register or leave.
    pub kind: Kind,
    /// The meeting.
    pub meeting_id: &'a [u8],
    /// The participant within it.
    pub token: &'a str,
}

/// Registrations by address, and each meeting's addresses.
#[derive(Debug)]
pub struct Table<P = SocketAddr> {
    ttl: Duration,
    limits: Limits,
    members: HashMap<P, Member>,
    slots: Vec<Option<Meeting<P>>>,
    free: Vec<MeetingKey>,
    by_id: HashMap<Vec<u8>, MeetingKey>,
    per_source: HashMap<IpAddr, usize>,
}

impl<P: Peer> Table<P> {
    /// An empty table whose entries live `ttl` after their last refresh, within `limits`.
    pub fn new(ttl: Duration, limits: Limits) -> Self {
        Self {
            ttl,
            limits,
            members: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            per_source: HashMap::new(),
        }
    }

    /// Applies a verified registration that came from `from`.
    pub fn apply(&mut self, request: Request<'_>, from: P, now: Instant) -> Applied {
        if request.kind == Kind::Leave {
            return if self.remove(from) {
                Applied::Left
            } else {
                Applied::NotRegistered
            };
        }
        let key = self.by_id.get(request.meeting_id).copied();
        if let Some(member) = self.members.get_mut(&from)
            && Some(member.meeting) == key
            && member.token == request.token
        {
            member.expires = now + self.ttl;
            return Applied::Refreshed;
        }
        // Another address with the same token in the same meeting: the participant moved.
        let moved = key
            .and_then(|k| self.meeting(k))
            .and_then(|m| m.tokens.get(request.token).copied())
            .filter(|old| *old != from);
        if let Some(limit) = self.refusal(request.meeting_id, from, moved) {
            return Applied::Refused(limit);
        }
        if let Some(old) = moved {
            self.remove(old);
        }
        self.remove(from);
        let key = match self.by_id.get(request.meeting_id) {
            Some(&key) => key,
            None => self.new_meeting(request.meeting_id),
        };
        let Some(meeting) = self.slots.get_mut(key as usize).and_then(Option::as_mut) else {
            return Applied::Refused(Limit::Table);
        };
        meeting.tokens.insert(request.token.to_owned(), from);
        meeting.addrs.push(from);
        let position = meeting.addrs.len() - 1;
        self.members.insert(
            from,
            Member {
                meeting: key,
                token: request.token.to_owned(),
                expires: now + self.ttl,
                position,
            },
        );
        *self.per_source.entry(from.source_ip()).or_default() += 1;
        Applied::Joined
    }

    /// Which limit joining `from` to `meeting_id` would break, counting the addresses the
    /// join removes first (`from` itself, and `moved`, the token's old address).
    fn refusal(&self, meeting_id: &[u8], from: P, moved: Option<P>) -> Option<Limit> {
        let current = self.members.get(&from);
        let leaving = usize::from(current.is_some()) + usize::from(moved.is_some());
        if self.members.len().saturating_sub(leaving) >= self.limits.total {
            return Some(Limit::Table);
        }
        let key = self.by_id.get(meeting_id).copied();
        let in_meeting = key
            .and_then(|k| self.meeting(k))
            .map_or(0, |m| m.addrs.len());
        let leaving_meeting = usize::from(current.is_some_and(|m| Some(m.meeting) == key))
            + usize::from(moved.is_some());
        if in_meeting.saturating_sub(leaving_meeting) >= self.limits.per_meeting {
            return Some(Limit::Meeting);
        }
        let ip = from.source_ip();
        let from_ip = self.per_source.get(&ip).copied().unwrap_or(0);
        let leaving_ip = usize::from(current.is_some())
            + usize::from(moved.is_some_and(|m| m.source_ip() == ip));
        if from_ip.saturating_sub(leaving_ip) >= self.limits.per_source {
            return Some(Limit::Source);
        }
        None
    }

    fn new_meeting(&mut self, id: &[u8]) -> MeetingKey {
        let meeting = Meeting {
            id: id.to_vec(),
            addrs: Vec::new(),
            tokens: HashMap::new(),
        };
        let key = match self.free.pop() {
            Some(key) => {
                if let Some(slot) = self.slots.get_mut(key as usize) {
                    *slot = Some(meeting);
                }
                key
            }
            None => {
                // At most `limits.total` meetings exist, and the flag is far below u32::MAX.
                let key = MeetingKey::try_from(self.slots.len()).unwrap_or(MeetingKey::MAX);
                self.slots.push(Some(meeting));
                key
            }
        };
        self.by_id.insert(id.to_vec(), key);
        key
    }

    fn meeting(&self, key: MeetingKey) -> Option<&Meeting<P>> {
        self.slots.get(key as usize).and_then(Option::as_ref)
    }

    /// The meeting of `from` and its addresses (including `from`), or `None` if `from` is not
    /// registered (or its entry expired).
    pub fn destinations(&self, from: P, now: Instant) -> Option<(MeetingKey, &[P])> {
        let member = self.members.get(&from)?;
        if member.expires <= now {
            return None;
        }
        self.meeting(member.meeting)
            .map(|m| (member.meeting, m.addrs.as_slice()))
    }

    /// The addresses of the meeting in slot `key`.
    pub fn members_of(&self, key: MeetingKey) -> &[P] {
        self.meeting(key).map_or(&[], |m| m.addrs.as_slice())
    }

    /// Whether `peer` is registered (expired or not).
    pub fn contains(&self, peer: &P) -> bool {
        self.members.contains_key(peer)
    }

    /// Forgets `peer`'s registration (its session ended); whether it had one.
    pub fn forget(&mut self, peer: P) -> bool {
        self.remove(peer)
    }

    /// Drops the entries whose TTL passed; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let stale: Vec<P> = self
            .members
            .iter()
            .filter(|(_, m)| m.expires <= now)
            .map(|(addr, _)| *addr)
            .collect();
        for addr in &stale {
            self.remove(*addr);
        }
        stale.len()
    }

    /// Registered addresses.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no address is registered.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Meetings with at least one registered address.
    pub fn meetings(&self) -> usize {
        self.by_id.len()
    }

    fn remove(&mut self, addr: P) -> bool {
        let Some(member) = self.members.remove(&addr) else {
            return false;
        };
        if let Some(count) = self.per_source.get_mut(&addr.source_ip()) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&addr.source_ip());
            }
        }
        let key = member.meeting;
        let Some(meeting) = self.slots.get_mut(key as usize).and_then(Option::as_mut) else {
            return true;
        };
        meeting.addrs.swap_remove(member.position);
        if let Some(&swapped) = meeting.addrs.get(member.position)
            && let Some(other) = self.members.get_mut(&swapped)
        {
            other.position = member.position;
        }
        if meeting.tokens.get(&member.token) == Some(&addr) {
            meeting.tokens.remove(&member.token);
        }
        if meeting.addrs.is_empty() {
            let id = std::mem::take(&mut meeting.id);
            self.by_id.remove(&id);
            if let Some(slot) = self.slots.get_mut(key as usize) {
                *slot = None;
            }
            self.free.push(key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn reg<'a>(meeting: &'a str, token: &'a str) -> Request<'a> {
        Request {
            kind: Kind::Register,
            meeting_id: meeting.as_bytes(),
            token,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn limits(total: usize) -> Limits {
        Limits {
            total,
            per_meeting: total,
            per_source: total,
        }
    }

    fn dests(table: &Table, from: SocketAddr, now: Instant) -> Option<Vec<SocketAddr>> {
        table.destinations(from, now).map(|(_, d)| {
            let mut d = d.to_vec();
            d.sort();
            d
        })
    }

    #[test]
    fn meetings_are_separate_and_members_see_each_other() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(100));
        assert_eq!(table.apply(reg("m1", "a"), addr(1), now), Applied::Joined);
        assert_eq!(table.apply(reg("m1", "b"), addr(2), now), Applied::Joined);
        assert_eq!(table.apply(reg("m2", "a"), addr(3), now), Applied::Joined);
        assert_eq!(dests(&table, addr(1), now).unwrap(), [addr(1), addr(2)]);
        assert_eq!(dests(&table, addr(3), now).unwrap(), [addr(3)]);
        assert!(table.destinations(addr(4), now).is_none());
        assert_eq!((table.len(), table.meetings()), (3, 2));
        let (k1, _) = table.destinations(addr(1), now).unwrap();
        let (k2, _) = table.destinations(addr(2), now).unwrap();
        let (k3, _) = table.destinations(addr(3), now).unwrap();
        assert_eq!(k1, k2);
        assert_ne!(k1, k3);
    }

    #[test]
    fn entries_expire_unless_refreshed() {
        let start = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(100));
        table.apply(reg("m", "a"), addr(1), start);
        table.apply(reg("m", "b"), addr(2), start);
        let later = start + Duration::from_secs(6);
        assert_eq!(
            table.apply(reg("m", "a"), addr(1), later),
            Applied::Refreshed
        );
        let expiry = start + Duration::from_secs(10);
        assert!(table.destinations(addr(2), expiry).is_none());
        assert_eq!(table.expire(expiry), 1);
        assert_eq!(dests(&table, addr(1), expiry).unwrap(), [addr(1)]);
        assert_eq!(table.expire(later + Duration::from_secs(10)), 1);
        assert!(table.is_empty());
        assert_eq!(table.meetings(), 0);
    }

    #[test]
    fn a_token_from_a_new_address_replaces_the_old_one() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(100));
        table.apply(reg("m", "a"), addr(1), now);
        table.apply(reg("m", "b"), addr(2), now);
        assert_eq!(table.apply(reg("m", "a"), addr(5), now), Applied::Joined);
        assert_eq!(dests(&table, addr(2), now).unwrap(), [addr(2), addr(5)]);
        assert!(table.destinations(addr(1), now).is_none());
    }

    #[test]
    fn an_address_moving_meetings_leaves_the_old_one() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(100));
        table.apply(reg("m1", "a"), addr(1), now);
        table.apply(reg("m1", "b"), addr(2), now);
        table.apply(reg("m2", "a"), addr(1), now);
        assert_eq!(dests(&table, addr(2), now).unwrap(), [addr(2)]);
        assert_eq!(dests(&table, addr(1), now).unwrap(), [addr(1)]);
    }

    #[test]
    fn leave_and_limit() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(2));
        table.apply(reg("m", "a"), addr(1), now);
        table.apply(reg("m", "b"), addr(2), now);
        assert_eq!(
            table.apply(reg("n", "c"), addr(3), now),
            Applied::Refused(Limit::Table)
        );
        let leave = Request {
            kind: Kind::Leave,
            ..reg("m", "a")
        };
        assert_eq!(table.apply(leave, addr(1), now), Applied::Left);
        assert_eq!(table.apply(leave, addr(1), now), Applied::NotRegistered);
        assert_eq!(table.apply(reg("m", "c"), addr(3), now), Applied::Joined);
    }

    /// Finding 19.1: one meeting could take the whole table, so one datagram in became
    /// thousands out. Fails on the table before the per-meeting limit (all 3 joined).
    #[test]
    fn a_meeting_holds_at_most_its_limit_and_a_refusal_changes_nothing() {
        let now = Instant::now();
        let mut table = Table::new(
            Duration::from_secs(10),
            Limits {
                total: 100,
                per_meeting: 2,
                per_source: 100,
            },
        );
        assert_eq!(table.apply(reg("m", "a"), addr(1), now), Applied::Joined);
        assert_eq!(table.apply(reg("m", "b"), addr(2), now), Applied::Joined);
        assert_eq!(
            table.apply(reg("m", "c"), addr(3), now),
            Applied::Refused(Limit::Meeting)
        );
        // Address 2 asking to be "c" is not a third member: allowed, replacing itself.
        assert_eq!(table.apply(reg("m", "c"), addr(2), now), Applied::Joined);
        // The token's holder moving to a new address is not a third member either.
        assert_eq!(table.apply(reg("m", "a"), addr(4), now), Applied::Joined);
        // A refused join from a member of another meeting leaves it where it was.
        assert_eq!(table.apply(reg("x", "z"), addr(9), now), Applied::Joined);
        assert_eq!(
            table.apply(reg("m", "d"), addr(9), now),
            Applied::Refused(Limit::Meeting)
        );
        assert_eq!(dests(&table, addr(9), now).unwrap(), [addr(9)]);
        assert_eq!(dests(&table, addr(2), now).unwrap(), [addr(2), addr(4)]);
        assert_eq!(table.len(), 3);
        // Another meeting still has room.
        assert_eq!(table.apply(reg("y", "a"), addr(5), now), Applied::Joined);
    }

    /// Finding 19.1: one host registered 3,000 of its own ports. Fails on the table before
    /// the per-source limit.
    #[test]
    fn a_source_ip_holds_at_most_its_limit_across_meetings() {
        let now = Instant::now();
        let mut table = Table::new(
            Duration::from_secs(10),
            Limits {
                total: 100,
                per_meeting: 100,
                per_source: 2,
            },
        );
        assert_eq!(table.apply(reg("m", "a"), addr(1), now), Applied::Joined);
        assert_eq!(table.apply(reg("n", "b"), addr(2), now), Applied::Joined);
        assert_eq!(
            table.apply(reg("m", "c"), addr(3), now),
            Applied::Refused(Limit::Source)
        );
        let elsewhere = SocketAddr::from(([127, 0, 0, 2], 3));
        assert_eq!(table.apply(reg("m", "c"), elsewhere, now), Applied::Joined);
        // Refreshes and moves of its own registrations still work at the limit.
        assert_eq!(table.apply(reg("m", "a"), addr(1), now), Applied::Refreshed);
        assert_eq!(table.apply(reg("n", "a2"), addr(1), now), Applied::Joined);
        // Leaving frees a place.
        let leave = Request {
            kind: Kind::Leave,
            ..reg("n", "b")
        };
        assert_eq!(table.apply(leave, addr(2), now), Applied::Left);
        assert_eq!(table.apply(reg("m", "c2"), addr(3), now), Applied::Joined);
    }

    #[test]
    fn removal_keeps_every_index_consistent() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), limits(1000));
        for port in 1..=50 {
            let meeting = if port % 2 == 0 { "even" } else { "odd" };
            let token = format!("t{port}");
            table.apply(reg(meeting, &token), addr(port), now);
        }
        for port in (1..=50).step_by(3) {
            let leave = Request {
                kind: Kind::Leave,
                ..reg("even", "x")
            };
            assert_eq!(table.apply(leave, addr(port), now), Applied::Left);
        }
        for port in 1..=50u16 {
            let left = (port - 1) % 3 == 0;
            match dests(&table, addr(port), now) {
                None => assert!(left, "{port} lost"),
                Some(d) => {
                    assert!(!left);
                    let expected: Vec<_> = (1..=50u16)
                        .filter(|p| p % 2 == port % 2 && (p - 1) % 3 != 0)
                        .map(addr)
                        .collect();
                    assert_eq!(d, expected);
                }
            }
        }
    }
}
