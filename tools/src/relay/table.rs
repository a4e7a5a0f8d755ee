//! Who is in which meeting: the relay's registrations, sans-IO (time comes in as an argument).
//!
//! A registration maps a source address to a meeting; the relay forwards a datagram from a
//! registered address to every other address of its meeting. An entry lives for the TTL after
//! its last refresh. The same (meeting, token) from a new address replaces the old address (a
//! NAT rebinding or a restarted sidecar), and an address that registers for another meeting
//! moves there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::registration::{Kind, Registration};

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
    /// Refused: the table holds its limit of addresses.
    Full,
}

#[derive(Debug)]
struct Member {
    meeting: Vec<u8>,
    token: String,
    expires: Instant,
}

/// Registrations by address, and each meeting's addresses in registration order.
#[derive(Debug)]
pub struct Table {
    ttl: Duration,
    limit: usize,
    members: HashMap<SocketAddr, Member>,
    meetings: HashMap<Vec<u8>, Vec<SocketAddr>>,
}

impl Table {
    /// An empty table whose entries live `ttl` after their last refresh, holding at most
    /// `limit` addresses.
    pub fn new(ttl: Duration, limit: usize) -> Self {
        Self {
            ttl,
            limit,
            members: HashMap::new(),
            meetings: HashMap::new(),
        }
    }

    /// Applies a registration datagram that came from `from`.
    pub fn apply(
        &mut self,
        registration: &Registration,
        from: SocketAddr,
        now: Instant,
    ) -> Applied {
        if registration.kind == Kind::Leave {
            return if self.remove(from) {
                Applied::Left
            } else {
                Applied::NotRegistered
            };
        }
        if let Some(member) = self.members.get_mut(&from)
            && member.meeting == registration.meeting_id
        {
            member.expires = now + self.ttl;
            member.token.clone_from(&registration.token);
            return Applied::Refreshed;
        }
        // Another address with the same token in the same meeting: the participant moved.
        let moved = self
            .meetings
            .get(&registration.meeting_id)
            .and_then(|addrs| {
                addrs.iter().copied().find(|addr| {
                    self.members
                        .get(addr)
                        .is_some_and(|m| m.token == registration.token)
                })
            });
        if let Some(old) = moved {
            self.remove(old);
        }
        self.remove(from);
        if self.members.len() >= self.limit {
            return Applied::Full;
        }
        self.members.insert(
            from,
            Member {
                meeting: registration.meeting_id.clone(),
                token: registration.token.clone(),
                expires: now + self.ttl,
            },
        );
        self.meetings
            .entry(registration.meeting_id.clone())
            .or_default()
            .push(from);
        Applied::Joined
    }

    /// The addresses a datagram from `from` goes to (its meeting's others), or `None` if
    /// `from` is not registered (or its entry expired).
    pub fn destinations(&self, from: SocketAddr, now: Instant) -> Option<&[SocketAddr]> {
        let member = self.members.get(&from)?;
        if member.expires <= now {
            return None;
        }
        self.meetings.get(&member.meeting).map(Vec::as_slice)
    }

    /// Drops the entries whose TTL passed; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let stale: Vec<SocketAddr> = self
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
        self.meetings.len()
    }

    fn remove(&mut self, addr: SocketAddr) -> bool {
        let Some(member) = self.members.remove(&addr) else {
            return false;
        };
        if let Some(addrs) = self.meetings.get_mut(&member.meeting) {
            addrs.retain(|a| *a != addr);
            if addrs.is_empty() {
                self.meetings.remove(&member.meeting);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn reg(meeting: &str, token: &str) -> Registration {
        Registration {
            kind: Kind::Register,
            meeting_id: meeting.as_bytes().to_vec(),
            token: token.into(),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn meetings_are_separate_and_members_see_each_other() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), 100);
        assert_eq!(table.apply(&reg("m1", "a"), addr(1), now), Applied::Joined);
        assert_eq!(table.apply(&reg("m1", "b"), addr(2), now), Applied::Joined);
        assert_eq!(table.apply(&reg("m2", "a"), addr(3), now), Applied::Joined);
        assert_eq!(
            table.destinations(addr(1), now).unwrap(),
            [addr(1), addr(2)]
        );
        assert_eq!(table.destinations(addr(3), now).unwrap(), [addr(3)]);
        assert!(table.destinations(addr(4), now).is_none());
        assert_eq!((table.len(), table.meetings()), (3, 2));
    }

    #[test]
    fn entries_expire_unless_refreshed() {
        let start = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), 100);
        table.apply(&reg("m", "a"), addr(1), start);
        table.apply(&reg("m", "b"), addr(2), start);
        let later = start + Duration::from_secs(6);
        assert_eq!(
            table.apply(&reg("m", "a"), addr(1), later),
            Applied::Refreshed
        );
        let expiry = start + Duration::from_secs(10);
        assert!(table.destinations(addr(2), expiry).is_none());
        assert_eq!(table.expire(expiry), 1);
        assert_eq!(table.destinations(addr(1), expiry).unwrap(), [addr(1)]);
        assert_eq!(table.expire(later + Duration::from_secs(10)), 1);
        assert!(table.is_empty());
        assert_eq!(table.meetings(), 0);
    }

    #[test]
    fn a_token_from_a_new_address_replaces_the_old_one() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), 100);
        table.apply(&reg("m", "a"), addr(1), now);
        table.apply(&reg("m", "b"), addr(2), now);
        assert_eq!(table.apply(&reg("m", "a"), addr(5), now), Applied::Joined);
        assert_eq!(
            table.destinations(addr(2), now).unwrap(),
            [addr(2), addr(5)]
        );
        assert!(table.destinations(addr(1), now).is_none());
    }

    #[test]
    fn an_address_moving_meetings_leaves_the_old_one() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), 100);
        table.apply(&reg("m1", "a"), addr(1), now);
        table.apply(&reg("m1", "b"), addr(2), now);
        table.apply(&reg("m2", "a"), addr(1), now);
        assert_eq!(table.destinations(addr(2), now).unwrap(), [addr(2)]);
        assert_eq!(table.destinations(addr(1), now).unwrap(), [addr(1)]);
    }

    #[test]
    fn leave_and_limit() {
        let now = Instant::now();
        let mut table = Table::new(Duration::from_secs(10), 2);
        table.apply(&reg("m", "a"), addr(1), now);
        table.apply(&reg("m", "b"), addr(2), now);
        assert_eq!(table.apply(&reg("m", "c"), addr(3), now), Applied::Full);
        let leave = Registration {
            kind: Kind::Leave,
            ..reg("m", "a")
        };
        assert_eq!(table.apply(&leave, addr(1), now), Applied::Left);
        assert_eq!(table.apply(&leave, addr(1), now), Applied::NotRegistered);
        assert_eq!(table.apply(&reg("m", "c"), addr(3), now), Applied::Joined);
    }
}
