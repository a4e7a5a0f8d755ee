//! Browser participants in a meeting through the real board core, on virtual time: each one's
//! messages go to `BoardCore` as the WebSocket listener hands them over (one frame per message),
//! and the board's frames come back the same way. They converge on one key, exchange media,
//! refuse forged or replayed datagrams and malformed board messages (state unchanged, counted),
//! and a participant that leaves erases its keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use keyctl::meeting::{LeftReason, Millis};
use keyctl::test_rng::TestRng;
use veil_board::{BoardCore, ConnId, Honest, Output};
use veil_web::{MeetingLink, WebError, WebEvent, WebParticipant};

struct World {
    now: Millis,
    board: BoardCore,
    people: BTreeMap<ConnId, WebParticipant>,
    events: BTreeMap<ConnId, Vec<WebEvent>>,
    /// Board messages a participant refused (normal under a policy or an adversary).
    refused: BTreeMap<ConnId, Vec<String>>,
    rng: TestRng,
    next: ConnId,
}

fn link(meeting: &str) -> MeetingLink {
    MeetingLink::parse(&format!("veil1&board=127.0.0.1:7701&meeting={meeting}")).unwrap()
}

fn link_pq(meeting: &str, pq: &str) -> MeetingLink {
    MeetingLink::parse(&format!(
        "veil1&board=127.0.0.1:7701&meeting={meeting}&pq={pq}"
    ))
    .unwrap()
}

impl World {
    fn new(seed: &str) -> Self {
        Self {
            now: Millis(1_700_000_000_000),
            board: BoardCore::new(Box::new(Honest), [7; 16]),
            people: BTreeMap::new(),
            events: BTreeMap::new(),
            refused: BTreeMap::new(),
            rng: TestRng::new(seed),
            next: 1,
        }
    }

    fn join(&mut self, meeting: &str, name: &str) -> ConnId {
        self.join_with(link(meeting), name)
    }

    fn join_with(&mut self, link: MeetingLink, name: &str) -> ConnId {
        let conn = self.next;
        self.next += 1;
        let p = WebParticipant::new(link, name, &mut self.rng).unwrap();
        self.board.connected(conn, self.now);
        self.people.insert(conn, p);
        self.pump();
        conn
    }

    /// Moves messages both ways until nothing is in flight.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for (&conn, p) in &mut self.people {
                while let Some(message) = p.poll_transmit() {
                    // The WebSocket listener hands the core the frame's body.
                    self.board.handle(conn, &message[4..], self.now);
                    moved = true;
                }
                while let Some(e) = p.poll_event() {
                    self.events.entry(conn).or_default().push(e);
                }
            }
            while let Some(out) = self.board.poll_output() {
                moved = true;
                match out {
                    Output::Send { to, frame } => {
                        if let Some(p) = self.people.get_mut(&to)
                            && let Err(e) = p.handle_board(&frame, self.now, &mut self.rng)
                        {
                            self.refused.entry(to).or_default().push(e.to_string());
                        }
                    }
                    Output::Close(conn) => {
                        self.board.disconnected(conn, self.now);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now.after(ms);
        while self.now < end {
            self.now = self.now.after(50).min(end);
            for p in self.people.values_mut() {
                if p.poll_timeout().is_some_and(|t| t <= self.now) {
                    p.handle_timeout(self.now, &mut self.rng).unwrap();
                }
            }
            self.board.tick(self.now);
            self.pump();
        }
    }

    fn p(&mut self, conn: ConnId) -> &mut WebParticipant {
        self.people.get_mut(&conn).unwrap()
    }

    fn keyed(&self, conn: ConnId) -> Vec<u32> {
        self.events
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                WebEvent::Keyed { mk_seq } => Some(*mk_seq),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn browser_participants_converge_and_exchange_media() {
    let mut w = World::new("web-converge");
    let a = w.join("m1", "alice");
    let b = w.join("m1", "bob");
    let c = w.join("m1", "carol");
    w.advance(5_000);
    assert!(w.refused.is_empty(), "{:?}", w.refused);
    let roster = |w: &World, conn| w.people[&conn].roster().unwrap().entries.len();
    assert_eq!((roster(&w, a), roster(&w, b), roster(&w, c)), (3, 3, 3));
    let code = w.people[&a].security_code().unwrap();
    assert_eq!(code.len(), 39, "the 39-digit security code");
    assert_eq!(w.people[&b].security_code().unwrap(), code);
    assert_eq!(w.people[&c].security_code().unwrap(), code);
    let latest = |w: &World, conn| *w.keyed(conn).last().unwrap();
    assert_eq!(latest(&w, a), latest(&w, b));
    assert_eq!(latest(&w, b), latest(&w, c));

    let now = w.now;
    let sealed = w.p(a).seal(now, b"a video packet").unwrap();
    assert_ne!(&sealed[sealed.len() - 14..], b"a video packet");
    assert_eq!(w.p(b).open(now, &sealed).unwrap(), b"a video packet");
    assert_eq!(w.p(c).open(now, &sealed).unwrap(), b"a video packet");
    // The same datagram again is a replay; a flipped bit is a forgery; the sender's own packet
    // reflected back is refused. Each counted, none opened.
    assert!(matches!(w.p(b).open(now, &sealed), Err(WebError::Open(_))));
    let mut forged = sealed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(w.p(c).open(now, &forged), Err(WebError::Open(_))));
    assert!(matches!(w.p(a).open(now, &sealed), Err(WebError::Open(_))));
    assert_eq!(w.people[&b].counters().media_refused, 1);
    assert_eq!(w.people[&c].counters().media_opened, 1);
    // Too large for a datagram: refused before anything is sealed.
    assert!(matches!(
        w.p(a).seal(now, &[0; veil_web::MAX_PAYLOAD + 1]),
        Err(WebError::TooLarge(_))
    ));
}

#[test]
fn a_participant_that_leaves_erases_its_keys_and_the_others_rekey() {
    let mut w = World::new("web-leave");
    let a = w.join("m2", "alice");
    let b = w.join("m2", "bob");
    let c = w.join("m2", "carol");
    w.advance(5_000);
    let before = *w.keyed(a).last().unwrap();
    let now = w.now;
    let from_carol = w.p(c).seal(now, b"before").unwrap();
    w.p(c).leave(now).unwrap();
    w.pump();
    assert!(
        w.events[&c].contains(&WebEvent::Left(LeftReason::Requested)),
        "{:?}",
        w.events[&c]
    );
    // Carol's keyring is empty: she neither seals nor opens anything any more.
    assert!(matches!(w.p(c).seal(now, b"x"), Err(WebError::NotJoined)));
    assert!(matches!(
        w.p(c).open(now, &from_carol),
        Err(WebError::NotJoined)
    ));
    // The others rotate to a key carol never held (whitepaper 3.7.6), and keep talking.
    w.advance(5_000);
    let after = *w.keyed(a).last().unwrap();
    assert!(
        after > before,
        "a rekey after the leave ({before} -> {after})"
    );
    assert!(!w.keyed(c).contains(&after));
    let now = w.now;
    let sealed = w.p(a).seal(now, b"after").unwrap();
    assert_eq!(w.p(b).open(now, &sealed).unwrap(), b"after");
}

#[test]
fn malformed_board_messages_are_refused_counted_and_change_nothing() {
    let mut w = World::new("web-bad-input");
    let a = w.join("m3", "alice");
    let b = w.join("m3", "bob");
    w.advance(5_000);
    let code = w.people[&b].security_code();
    let keys = w.keyed(b);
    let now = w.now;
    let mut rng = TestRng::new("bad");
    let p = w.p(b);
    // No frame at all, a prefix that disagrees with the message, an unknown frame type, and a
    // delivery whose keyctl message is not one.
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0, 0, 0, 9, 1, 2],
        vec![0, 0, 0, 2, 0xff, 0xff],
        {
            let mut m = vec![0, 0, 0, 3, 1, 0x82];
            m.push(0xee);
            m
        },
    ];
    for (i, message) in cases.iter().enumerate() {
        assert!(
            p.handle_board(message, now, &mut rng).is_err(),
            "case {i} accepted"
        );
    }
    assert_eq!(p.counters().board_refused, cases.len() as u64);
    assert_eq!(p.security_code(), code);
    w.advance(1_000);
    assert_eq!(w.keyed(b), keys, "no key came or went");
    let now = w.now;
    let sealed = w.p(a).seal(now, b"still here").unwrap();
    assert_eq!(w.p(b).open(now, &sealed).unwrap(), b"still here");
}

#[test]
fn nothing_seals_before_the_welcome_and_a_refused_join_ends_cleanly() {
    let mut rng = TestRng::new("web-early");
    let mut p = WebParticipant::new(link("m4"), "dave", &mut rng).unwrap();
    assert!(matches!(p.seal(Millis(0), b"x"), Err(WebError::NotJoined)));
    assert!(matches!(p.leave(Millis(0)), Err(WebError::NotJoined)));
    // A delivery before the welcome is refused; a refusal from the board ends the participant.
    let deliver = [0, 0, 0, 3, 1, 0x82, 0];
    assert!(matches!(
        p.handle_board(&deliver, Millis(0), &mut rng),
        Err(WebError::Unexpected(_))
    ));
    let mut refused = vec![0, 0, 0, 0, 1, 0x85, 0, 4];
    refused.extend_from_slice(b"full");
    let len = (refused.len() - 4) as u32;
    refused[..4].copy_from_slice(&len.to_be_bytes());
    p.handle_board(&refused, Millis(0), &mut rng).unwrap();
    // Skip the Hello.
    let _ = p.poll_transmit();
    assert_eq!(
        std::iter::from_fn(|| p.poll_event()).last(),
        Some(WebEvent::BoardEnded("full".into()))
    );
    assert!(matches!(
        p.handle_board(&deliver, Millis(0), &mut rng),
        Err(WebError::Ended)
    ));
    assert!(matches!(
        WebParticipant::new(link("m4"), "", &mut rng),
        Err(WebError::Name)
    ));
}

/// A link that names its `user` joins under it (the userID its invite was made for): an
/// empty name takes it, another name is refused before anything is sent.
#[test]
fn a_link_with_a_user_joins_under_that_user_only() {
    let mut rng = TestRng::new("web-user");
    let with_user =
        || MeetingLink::parse("veil1&board=127.0.0.1:7701&meeting=m7&user=alice").unwrap();
    let p = WebParticipant::new(with_user(), "", &mut rng).unwrap();
    assert_eq!(p.name(), "alice");
    assert_eq!(
        WebParticipant::new(with_user(), "alice", &mut rng)
            .unwrap()
            .name(),
        "alice"
    );
    assert!(matches!(
        WebParticipant::new(with_user(), "mallory", &mut rng),
        Err(WebError::NotLinkUser)
    ));
}

/// Issue 16 in the browser: a meeting whose links say `pq=required` keys everyone through the
/// hybrid box, and a browser whose link says `pq=off` is refused by that leader (it stays
/// unkeyed) while the others go on.
#[test]
fn a_required_meeting_keys_browsers_post_quantum_and_leaves_a_classical_one_out() {
    let mut w = World::new("web-pq");
    let a = w.join_with(link_pq("m5", "required"), "alice");
    let b = w.join_with(link_pq("m5", "required"), "bob");
    let c = w.join_with(link_pq("m5", "off"), "carol");
    w.advance(5_000);
    assert_eq!(w.people[&a].roster().unwrap().entries.len(), 2);
    assert!(!w.keyed(b).is_empty());
    assert!(
        w.keyed(c).is_empty(),
        "the classical browser got a key: {:?}",
        w.keyed(c)
    );
    let now = w.now;
    let sealed = w.p(a).seal(now, b"pq").unwrap();
    assert_eq!(w.p(b).open(now, &sealed).unwrap(), b"pq");
    assert!(w.p(c).seal(now, b"x").is_err());
}

/// A refusal keyctl raises an alert for, or ends the session with, reaches the page: a
/// `pq=required` browser keyed by a `preferred` leader gets the WeakPqPolicy alert and the
/// Left event, and seals nothing afterwards (its keys erased), though the board message that
/// ended it was itself a refusal.
#[test]
fn a_session_that_ends_on_a_refusal_reaches_the_page_and_erases_its_keys() {
    use keyctl::meeting::Alert;
    let mut w = World::new("web-weak-pq");
    let _a = w.join("m6", "alice");
    let b = w.join_with(link_pq("m6", "required"), "bob");
    w.advance(5_000);
    let events = &w.events[&b];
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WebEvent::Alert(Alert::WeakPqPolicy { .. }))),
        "{events:?}"
    );
    assert!(
        events.contains(&WebEvent::Left(LeftReason::WeakPqPolicy)),
        "{events:?}"
    );
    assert!(
        !w.refused[&b].is_empty(),
        "the refusal itself is reported too"
    );
    let now = w.now;
    assert!(matches!(w.p(b).seal(now, b"x"), Err(WebError::NotJoined)));
}

/// A page keeps its relay ticket fresh as a sidecar does: half way to the expiry it asks the
/// board for a new one, presents it from the next refresh on, and asks again every 30 s while
/// none comes (the board is untrusted: withholding the ticket only ends the page's media at the
/// expiry, as the relay would anyway).
#[test]
fn a_page_renews_its_relay_ticket_half_way_to_expiry() {
    use veil_relay::registration::Registration;
    use veil_relay::ticket::{KEY_LEN, TicketKey};
    let mut w = World::new("web-ticket");
    w.board.set_relay_tickets(veil_board::RelayTickets {
        key: TicketKey::from_bytes(&[9; KEY_LEN]),
        lifetime: std::time::Duration::from_secs(600),
    });
    let link =
        MeetingLink::parse("veil1&board=127.0.0.1:7701&meeting=m8&relay=127.0.0.1:4433").unwrap();
    let a = w.join_with(link, "alice");
    let issued_at = w.now.0 / 1000;
    let first = w.p(a).relay_ticket().unwrap();
    assert_eq!(first.expiry, issued_at + 600);
    let registered = Registration::parse(&w.p(a).poll_relay_transmit().unwrap()).unwrap();
    assert_eq!(registered.ticket, Some(first));
    // Not yet half way: the same ticket.
    w.advance(299_000);
    assert_eq!(w.p(a).relay_ticket(), Some(first));
    // Half way: a fresh one, issued now.
    w.advance(2_000);
    let renewed = w.p(a).relay_ticket().unwrap();
    assert_ne!(renewed, first);
    assert!(renewed.expiry >= issued_at + 900, "{renewed:?}");
    // The next refresh presents it.
    w.advance(2_000);
    let refresh = Registration::parse(&w.p(a).poll_relay_transmit().unwrap()).unwrap();
    assert_eq!(refresh.ticket, Some(renewed));
}

/// What the page shows (`window.veilStatus()`) comes from the verified session: one security
/// code, the signed list's names and states, the latest key, the packet counters, the end.
#[test]
fn the_status_shows_the_signed_list_the_code_the_key_and_the_end() {
    let mut w = World::new("web-status");
    let a = w.join("m8", "alice");
    let b = w.join("m8", "bob");
    let c = w.join("m8", "carol");
    w.advance(5_000);
    let status = w.people[&a].status();
    let code = status.security_code.clone().unwrap();
    assert!(code.len() == 39 && code.bytes().all(|d| d.is_ascii_digit()));
    assert_eq!(w.people[&b].status().security_code, Some(code));
    let names: Vec<(&str, &str)> = status
        .participants
        .iter()
        .map(|m| (m.name.as_str(), m.state))
        .collect();
    assert_eq!(
        names,
        [
            ("alice", "present"),
            ("bob", "present"),
            ("carol", "present")
        ]
    );
    assert_eq!(status.mk_seq, w.keyed(a).last().copied());
    assert_eq!(w.people[&b].status().mk_seq, status.mk_seq);
    let now = w.now;
    let sealed = w.p(a).seal(now, b"x").unwrap();
    w.p(b).open(now, &sealed).unwrap();
    assert!(w.p(b).open(now, &sealed).is_err(), "a replay");
    assert_eq!(w.people[&a].status().packets_sealed, 1);
    let bob = w.people[&b].status();
    assert_eq!((bob.packets_opened, bob.packets_refused), (1, 1));
    assert_eq!(bob.ended, None);
    w.p(c).leave(now).unwrap();
    w.advance(2_000);
    assert_eq!(w.people[&c].status().ended.as_deref(), Some("Requested"));
    assert!(
        w.people[&a]
            .status()
            .participants
            .iter()
            .any(|m| m.name == "carol" && m.state == "left")
    );
}
