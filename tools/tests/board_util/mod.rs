//! Shared by the board and meeting tests: an in-process board, participants with short
//! keyctl timings, and a collector of their events.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keyctl::crypto::SigningKey;
use keyctl::meeting::{Alert, KeyUpdate, LeftReason, Timings};
use keyctl::rng::OsRng;
use veil::board::client::{ClientOptions, ClientTls, Join};
use veil::board::{BoardConfig, BoardHandle, BoardServer, Tamper};
use veil::meeting::{Participant, ParticipantEvent, ParticipantOptions};

/// keyctl timings scaled down so a test takes seconds: heartbeats every 200 ms, leave
/// after 5 missed (1 s).
pub fn fast_timings() -> Timings {
    Timings {
        activation_delay_ms: 100,
        retire_after_ms: 1_000,
        heartbeat_interval_ms: 200,
        missed_heartbeats: 5,
        rotation_interval_ms: 60_000,
        join_batch_ms: 100,
        leave_rekey_ms: 100,
        nonce_interval_ms: 60_000,
        max_links: 20,
        leave_alert_threshold: 4,
    }
}

/// A plaintext board on a loopback ephemeral port, in this process.
pub fn plain_board(tamper: Option<Tamper>) -> BoardHandle {
    BoardServer::bind(BoardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        tamper,
    })
    .unwrap()
    .spawn()
    .unwrap()
}

pub fn options(addr: SocketAddr, tls: ClientTls) -> ClientOptions {
    ClientOptions {
        addr,
        tls,
        connect_timeout: Duration::from_secs(5),
    }
}

pub fn identity() -> SigningKey {
    SigningKey::generate(&mut OsRng::new()).unwrap()
}

/// A participant and everything it reported so far.
pub struct Member {
    pub p: Participant,
    pub keys: BTreeMap<u32, KeyUpdate>,
    pub alerts: Vec<Alert>,
    pub left: Option<LeftReason>,
    pub lost: Option<String>,
}

impl Member {
    pub fn join_with(
        addr: SocketAddr,
        tls: ClientTls,
        meeting: &str,
        name: &str,
        host: bool,
        key: SigningKey,
    ) -> Self {
        let p = spawn(addr, tls, meeting, name, host, key).unwrap();
        Self {
            p,
            keys: BTreeMap::new(),
            alerts: Vec::new(),
            left: None,
            lost: None,
        }
    }

    pub fn join(board: &BoardHandle, meeting: &str, name: &str) -> Self {
        Self::join_with(
            board.addr,
            ClientTls::Plaintext,
            meeting,
            name,
            false,
            identity(),
        )
    }

    /// Takes every event already reported.
    pub fn drain(&mut self) {
        while let Ok(ev) = self.p.events().try_recv() {
            match ev {
                ParticipantEvent::Key(u) => {
                    self.keys.insert(u.mk_seq, u);
                }
                ParticipantEvent::Alert(a) => self.alerts.push(a),
                ParticipantEvent::Left(r) => self.left = Some(r),
                ParticipantEvent::BoardLost(why) => self.lost = Some(why),
                _ => {}
            }
        }
    }

    pub fn latest(&self) -> Option<&KeyUpdate> {
        self.keys.values().next_back()
    }
}

/// Polls every member until `done` holds, or panics after `limit` naming `what`.
pub fn wait_until(
    members: &mut [&mut Member],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        for m in members.iter_mut() {
            m.drain();
        }
        if done(members) {
            return;
        }
        if Instant::now() > deadline {
            let report: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "{}: keys {:?} alerts {:?} left {:?} lost {:?} status {:?}",
                        m.p.status().me,
                        m.keys.keys().collect::<Vec<_>>(),
                        m.alerts,
                        m.left,
                        m.lost,
                        m.p.status()
                    )
                })
                .collect();
            panic!("timed out waiting for {what}:\n{}", report.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when every member holds the same latest key, certified for `n` participants.
pub fn converged(members: &[&mut Member], n: usize) -> bool {
    let Some(first) = members.first().and_then(|m| m.latest()) else {
        return false;
    };
    members.iter().all(|m| {
        m.latest().is_some_and(|u| {
            u.mk_seq == first.mk_seq
                && u.meeting_key == first.meeting_key
                && u.roster == first.roster
                && u.roster.len() == n
        })
    })
}

impl Member {
    /// Joins with a fresh identity and returns the error instead of panicking.
    pub fn try_join(
        addr: SocketAddr,
        tls: ClientTls,
        meeting: &str,
        name: &str,
    ) -> Result<Participant, veil::meeting::MeetingDriverError> {
        spawn(addr, tls, meeting, name, false, identity())
    }
}

/// Starts a participant with the short timings.
pub fn spawn(
    addr: SocketAddr,
    tls: ClientTls,
    meeting: &str,
    name: &str,
    host: bool,
    key: SigningKey,
) -> Result<Participant, veil::meeting::MeetingDriverError> {
    Participant::spawn(ParticipantOptions {
        board: options(addr, tls),
        join: Join {
            meeting_id: meeting.to_owned(),
            name: name.to_owned(),
            host,
            ivk: [0; 32],
        },
        identity: key,
        timings: fast_timings(),
    })
}
