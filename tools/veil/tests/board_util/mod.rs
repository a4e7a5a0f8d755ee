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
use veil_board::client::{ClientOptions, ClientTls, Join};
use veil_board::{BoardConfig, BoardHandle, BoardServer, Tamper};
use veil_cli::meeting::{Participant, ParticipantEvent, ParticipantOptions};

/// keyctl timings scaled down so a test takes seconds: heartbeats every 200 ms, leave
/// after 8 missed (1.6 s: long enough for a loaded CI machine).
pub fn fast_timings() -> Timings {
    Timings {
        activation_delay_ms: 100,
        retire_after_ms: 1_000,
        heartbeat_interval_ms: 200,
        missed_heartbeats: 8,
        rotation_interval_ms: 60_000,
        join_batch_ms: 100,
        leave_rekey_ms: 100,
        nonce_interval_ms: 60_000,
        max_links: 20,
        leave_alert_threshold: 4,
        ..Timings::default()
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
        websocket: false,
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
    pub lost: Option<veil_cli::meeting::BoardLost>,
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
        Self::join_over(options(addr, tls), meeting, name, host, key)
    }

    /// Joins through `board` as given (a WebSocket address and `websocket: true`, say).
    pub fn join_over(
        board: ClientOptions,
        meeting: &str,
        name: &str,
        host: bool,
        key: SigningKey,
    ) -> Self {
        let p = spawn_over(board, meeting, name, host, key).unwrap();
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
    ) -> Result<Participant, veil_cli::meeting::MeetingDriverError> {
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
) -> Result<Participant, veil_cli::meeting::MeetingDriverError> {
    spawn_over(options(addr, tls), meeting, name, host, key)
}

/// [`spawn`] through `board` as given.
pub fn spawn_over(
    board: ClientOptions,
    meeting: &str,
    name: &str,
    host: bool,
    key: SigningKey,
) -> Result<Participant, veil_cli::meeting::MeetingDriverError> {
    Participant::spawn(ParticipantOptions {
        board,
        join: Join {
            meeting_id: meeting.to_owned(),
            name: name.to_owned(),
            host,
            ivk: [0; 32],
        },
        identity: key,
        timings: fast_timings(),
        pq: keyctl::wire::PqPolicy::default(),
        clock: std::sync::Arc::new(veil_cli::meeting::SystemClock),
        host_secret: None,
        invite: None,
    })
}

/// `veil board` as a child process on an ephemeral loopback port; killed on drop.
pub struct BoardProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub fingerprint: Option<[u8; 32]>,
    pub admin: Option<SocketAddr>,
    _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "veil-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl BoardProcess {
    /// Starts `veil board` with TLS (self-signed, fingerprint file), an admin endpoint and
    /// `extra` arguments; returns once it listens.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_from(std::path::Path::new(env!("CARGO_BIN_EXE_veil")), extra)
    }

    /// [`Self::start`] with another build of `veil` (a baseline to compare against).
    pub fn start_from(veil: &std::path::Path, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let dir = TempDir::new("board");
        let fp_file = dir.0.join("fingerprint");
        let mut child = std::process::Command::new(veil)
            .args(["board", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .arg("--fingerprint-file")
            .arg(&fp_file)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() {
            let line = lines
                .next()
                .expect("veil board exited before listening")
                .unwrap();
            let word = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|r| r.split_whitespace().next())
                    .map(|a| a.parse::<SocketAddr>().unwrap())
            };
            admin = admin.or_else(|| word("admin on "));
            addr = word("veil board listening on ");
        }
        // Keep reading stdout so the board never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let fingerprint = std::fs::read_to_string(&fp_file)
            .ok()
            .map(|t| veil_board::tls::parse_fingerprint(&t).unwrap());
        Self {
            child,
            addr: addr.unwrap(),
            fingerprint,
            admin,
            _dir: dir,
        }
    }

    pub fn tls(&self) -> ClientTls {
        self.fingerprint
            .map_or(ClientTls::Plaintext, ClientTls::PinnedSha256)
    }

    pub fn join(&self, meeting: &str, name: &str) -> Member {
        Member::join_with(self.addr, self.tls(), meeting, name, false, identity())
    }

    /// GETs `path` from the admin endpoint.
    pub fn admin_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let admin = self.admin.unwrap();
        let mut s = std::net::TcpStream::connect(admin).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for BoardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's user + system CPU time so far (/proc/PID/stat fields 14 and 15, in
/// USER_HZ = 100 ticks per second on Linux).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: fields start after its closing parenthesis.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}
