//! The board's routing state machine (`veil_board::BoardCore`) and frame decoder, driven by
//! arbitrary clients: connects, disconnects, byte streams cut at arbitrary points, hellos for
//! two meetings, genuine keyctl posts (recorded from a real two-party meeting) and garbage, time
//! passing, under every `--tamper` mode. The board is untrusted by design but must survive any
//! client. Invariants: nothing panics; the board only sends to connections that are open; every
//! frame it sends is well formed (its length prefix is right and it parses as a server frame);
//! a frame body that parses as a client frame encodes back to the same bytes; and a post is
//! tied to its poster: what a connection's post makes the board deliver is never an
//! announcement, nonce or lock request about another participant, nor a LeaderChange naming
//! the poster (docs/PROTOCOL.md "Who may post what").
#![no_main]
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Config, Millis, Session, Timings};
use keyctl::wire::{Field, Id, MeetingRef, Message, ParticipantId};
use libfuzzer_sys::fuzz_target;
use veil_board::frame::{ClientFrame, FrameBuffer, Hello, ServerFrame};
use veil_board::{BoardCore, Output, Tamper, policy_for};

use keyctl::test_rng::TestRng;

const CONNS: usize = 6;

#[derive(Debug, Arbitrary)]
enum Op {
    Connect {
        conn: u8,
    },
    Disconnect {
        conn: u8,
    },
    Hello {
        conn: u8,
        meeting: bool,
        name: u8,
        host: bool,
        identity: u8,
    },
    /// A genuine keyctl message from the recorded meeting.
    PostGenuine {
        conn: u8,
        index: u8,
    },
    Post {
        conn: u8,
        bytes: Vec<u8>,
    },
    Bye {
        conn: u8,
    },
    /// Raw bytes on the stream, cut anywhere (they may complete or start a frame).
    Raw {
        conn: u8,
        bytes: Vec<u8>,
    },
    Advance {
        millis: u16,
    },
}

#[derive(Debug, Arbitrary)]
struct Script {
    tamper: u8,
    ops: Vec<Op>,
}

/// Messages a real leader and participant post: announcements, nonces, a rekey, list links
/// and heartbeats, so routing, backlogs and tampering see real traffic.
fn genuine() -> &'static [Vec<u8>] {
    static MESSAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    MESSAGES.get_or_init(|| {
        let mut rng = TestRng::from_u64(7);
        let meeting = MeetingRef::new(b"fuzz-a", b"uuid-a").expect("meeting");
        let ids: Vec<ParticipantId> = ["leader", "member"]
            .iter()
            .map(|n| ParticipantId::new(n.as_bytes(), b"dev").expect("id"))
            .collect();
        let mut now = Millis(1_000_000);
        let mut sessions: Vec<Session> = ids
            .iter()
            .map(|id| {
                let cfg = Config {
                    meeting: meeting.clone(),
                    me: id.clone(),
                    display_name: Id::new(Field::DisplayName, id.user.as_bytes()).expect("name"),
                    leader: ids[0].clone(),
                    invite: None,
                    host_secret: None,
                    timings: Timings::default(),
                    pq: keyctl::wire::PqPolicy::default(),
                };
                let key = SigningKey::generate(&mut rng).expect("key");
                Session::new(cfg, key, now, &mut rng).expect("session")
            })
            .collect();
        let mut out = Vec::new();
        for _ in 0..4 {
            let mut posted = Vec::new();
            for (i, s) in sessions.iter_mut().enumerate() {
                while let Some(m) = s.poll_transmit() {
                    posted.push((i, m.to_bytes()));
                }
            }
            for (from, bytes) in &posted {
                for (i, s) in sessions.iter_mut().enumerate() {
                    if i != *from {
                        let _ = s.handle(now, bytes, &mut rng);
                    }
                }
            }
            out.extend(posted.into_iter().map(|(_, b)| b));
            now = Millis(now.0 + 11_000);
            for s in &mut sessions {
                let _ = s.handle_timeout(now, &mut rng);
            }
        }
        out
    })
}

fn body(frame: &[u8]) -> &[u8] {
    frame.get(4..).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(script) = Script::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let tamper = match script.tamper % 6 {
        0 => None,
        1 => Some(Tamper::SwapKey),
        2 => Some(Tamper::ReplayInstance),
        3 => Some(Tamper::WithholdHeartbeats),
        4 => Some(Tamper::StripPq),
        _ => Some(Tamper::Partition),
    };
    let genuine = genuine();
    let mut core = BoardCore::new(policy_for(tamper), [9; 16]);
    let mut open: BTreeSet<usize> = BTreeSet::new();
    let mut streams: Vec<FrameBuffer> = (0..CONNS).map(|_| FrameBuffer::default()).collect();
    let mut now = Millis(5_000_000);
    // Who the board welcomed on each open connection.
    let mut welcomed: BTreeMap<usize, ParticipantId> = BTreeMap::new();
    for op in script.ops {
        // The connection whose bytes this op feeds, if any, and whether they are one post
        // (raw bytes may also hold a hello, whose backlog goes to the joiner itself).
        let (poster, one_post) = match &op {
            Op::PostGenuine { conn, .. } | Op::Post { conn, .. } => {
                (Some(usize::from(*conn) % CONNS), true)
            }
            Op::Raw { conn, .. } | Op::Bye { conn } => (Some(usize::from(*conn) % CONNS), false),
            _ => (None, false),
        };
        let mut feed = |conn: u8, bytes: Vec<u8>, core: &mut BoardCore, open: &BTreeSet<usize>| {
            let conn = usize::from(conn) % CONNS;
            if !open.contains(&conn) {
                return;
            }
            let stream = &mut streams[conn];
            stream.extend(&bytes);
            loop {
                match stream.next_frame() {
                    Ok(Some(frame)) => {
                        if let Ok(parsed) = ClientFrame::parse(frame) {
                            assert_eq!(
                                body(&parsed.encode()),
                                frame,
                                "client frames are canonical"
                            );
                        }
                        let frame = frame.to_vec();
                        core.handle(conn, &frame, now);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        core.refuse(conn, veil_board::ErrorReason::Oversize, now);
                        *stream = FrameBuffer::default();
                        break;
                    }
                }
            }
        };
        match op {
            Op::Connect { conn } => {
                let conn = usize::from(conn) % CONNS;
                if open.insert(conn) {
                    streams[conn] = FrameBuffer::default();
                    core.connected(conn, now);
                }
            }
            Op::Disconnect { conn } => {
                let conn = usize::from(conn) % CONNS;
                if open.remove(&conn) {
                    welcomed.remove(&conn);
                    core.disconnected(conn, now);
                }
            }
            Op::Hello {
                conn,
                meeting,
                name,
                host,
                identity,
            } => {
                let hello = ClientFrame::Hello(Hello {
                    meeting_id: if meeting { "fuzz-a" } else { "fuzz-b" },
                    name: ["ann", "bob", "cy", "dee"][usize::from(name) % 4],
                    host,
                    ivk: [identity % 4; 32],
                });
                feed(conn, hello.encode(), &mut core, &open);
            }
            Op::PostGenuine { conn, index } => {
                if !genuine.is_empty() {
                    let msg = &genuine[usize::from(index) % genuine.len()];
                    feed(conn, ClientFrame::Post(msg).encode(), &mut core, &open);
                }
            }
            Op::Post { conn, bytes } => {
                feed(conn, ClientFrame::Post(&bytes).encode(), &mut core, &open)
            }
            Op::Bye { conn } => feed(conn, ClientFrame::Bye.encode(), &mut core, &open),
            Op::Raw { conn, bytes } => feed(conn, bytes, &mut core, &open),
            Op::Advance { millis } => {
                now = Millis(now.0 + u64::from(millis) * 10);
                core.tick(now);
            }
        }
        while let Some(output) = core.poll_output() {
            match output {
                Output::Send { to, frame } => {
                    assert!(
                        open.contains(&to),
                        "sent to connection {to}, which is not open"
                    );
                    let len = u32::from_be_bytes(frame[..4].try_into().expect("a length prefix"));
                    assert_eq!(len as usize, frame.len() - 4, "length prefix");
                    let parsed = ServerFrame::parse(body(&frame));
                    assert!(parsed.is_ok(), "the board sent a malformed frame");
                    match parsed {
                        Ok(ServerFrame::Welcome(w)) => {
                            welcomed.insert(to, w.me);
                        }
                        Ok(ServerFrame::Deliver(msg)) => {
                            // To others than the poster: relayed posts and board notices.
                            let me = poster.filter(|p| *p != to).and_then(|p| welcomed.get(&p));
                            if let (Some(me), Ok(msg)) = (me, Message::from_bytes(msg)) {
                                let about = match &msg {
                                    Message::KeyAnnouncement(a) => Some(&a.binding.participant),
                                    Message::NoncePost(n) => Some(&n.body.participant),
                                    Message::LockRequest(l) => Some(&l.body.requester),
                                    _ => None,
                                };
                                assert!(
                                    about.is_none_or(|p| p == me),
                                    "a post about {about:?} relayed from {me:?}"
                                );
                                assert!(
                                    !(one_post
                                        && matches!(&msg, Message::LeaderChange(c) if c.leader == *me)),
                                    "a post made its poster {me:?} leader"
                                );
                            }
                        }
                        _ => {}
                    }
                }
                Output::Close(conn) => {
                    if open.remove(&conn) {
                        welcomed.remove(&conn);
                        core.disconnected(conn, now);
                    }
                }
            }
        }
    }
});
