//! Meeting-mode harness: a TLS `veil board` and a `veil relay` per test, and meeting-mode
//! sidecars with `--test-timings fast` whose clients send numbered packets.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Collector, Proc, Relay, free_tcp, free_udp, http, http_with_token, scratch_dir, veil};

/// How long any wait in these tests may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A board and a relay for one test.
pub struct Net {
    pub dir: PathBuf,
    pub board: Option<Proc>,
    pub board_addr: SocketAddr,
    pub fingerprint: String,
    pub relay: Relay,
    /// The board's certificate and key, when it was started with them (so a restart keeps
    /// the fingerprint the sidecars pinned).
    pem: Option<(PathBuf, PathBuf)>,
    tamper: Option<String>,
    /// A plaintext loopback board with a WebSocket listener (for browser participants):
    /// its `--ws-listen` address once started.
    pub ws_addr: Option<SocketAddr>,
    websocket: bool,
}

impl Net {
    /// A TLS board (its fingerprint pinned by the sidecars), optionally tampering.
    pub fn start(name: &str, tamper: Option<&str>) -> Self {
        Self::launch(scratch_dir(name), None, tamper)
    }

    /// A TLS board with a certificate written to files, so [`Net::restart_board`] brings it
    /// back on the same port with the same fingerprint.
    pub fn restartable(name: &str) -> Self {
        let dir = scratch_dir(name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = (dir.join("board.pem"), dir.join("board.key"));
        std::fs::write(&pem.0, cert.pem()).unwrap();
        std::fs::write(&pem.1, key.serialize_pem()).unwrap();
        Self::launch(dir, Some(pem), None)
    }

    /// What a browser participant needs beside the sidecars: a plaintext loopback board that
    /// also listens for WebSocket participants (`--ws-listen`, at [`Net::ws_addr`]; the sidecars
    /// talk plaintext to it), and a relay that also takes WebTransport sessions
    /// (`--web-listen`, at `relay.web`).
    pub fn with_websocket(name: &str) -> Self {
        Self::launch_as(scratch_dir(name), None, None, true)
    }

    fn launch(dir: PathBuf, pem: Option<(PathBuf, PathBuf)>, tamper: Option<&str>) -> Self {
        Self::launch_as(dir, pem, tamper, false)
    }

    fn launch_as(
        dir: PathBuf,
        pem: Option<(PathBuf, PathBuf)>,
        tamper: Option<&str>,
        websocket: bool,
    ) -> Self {
        let relay = if websocket {
            Relay::start(&dir, &["--web-listen", "127.0.0.1:0"])
        } else {
            Relay::start(&dir, &[])
        };
        let mut net = Self {
            dir,
            board: None,
            board_addr: "127.0.0.1:0".parse().unwrap(),
            fingerprint: String::new(),
            relay,
            pem,
            tamper: tamper.map(str::to_owned),
            ws_addr: None,
            websocket,
        };
        net.start_board();
        net
    }

    /// Starts the board on `board_addr` (an ephemeral port the first time).
    fn start_board(&mut self) {
        let mut cmd = veil();
        cmd.args(["board", "--listen", &self.board_addr.to_string()]);
        // The key the relay (started with the same directory) checks tickets with.
        cmd.arg("--ticket-key").arg(self.dir.join("ticket.key"));
        if let Some((cert, key)) = &self.pem {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some(scenario) = &self.tamper {
            cmd.args(["--tamper", scenario]);
        }
        if self.websocket {
            cmd.args(["--insecure-plaintext", "--ws-listen", "127.0.0.1:0"]);
        }
        let mut board = Proc::spawn(cmd, &self.dir, "board");
        let mut board_addr = None;
        let mut fingerprint = None;
        let mut ws_addr = None;
        while board_addr.is_none()
            || (fingerprint.is_none() && !self.websocket)
            || (self.websocket && ws_addr.is_none())
        {
            let line = board.line();
            assert!(!line.is_empty(), "the board exited: {}", board.log());
            if let Some(rest) = line.split_once("listening on ") {
                board_addr = rest.1.split_whitespace().next().map(|a| a.parse().unwrap());
            }
            if let Some(rest) = line.split_once("fingerprint: ") {
                fingerprint = Some(rest.1.trim().to_owned());
            }
            // "websocket on ws://ADDR/board"
            if let Some(rest) = line.split_once("websocket on ws://") {
                ws_addr = rest.1.split('/').next().map(|a| a.parse().unwrap());
            }
        }
        self.board_addr = board_addr.unwrap();
        self.fingerprint = fingerprint.unwrap_or_default();
        self.ws_addr = ws_addr;
        self.board = Some(board);
    }

    /// SIGTERMs the board (it must exit 0).
    pub fn stop_board(&mut self) {
        if let Some(board) = self.board.take() {
            board.stop(Duration::from_secs(10));
        }
    }

    /// SIGTERMs the board and starts it again on the same port with the same certificate:
    /// a new process, so every meeting starts a new instance.
    pub fn restart_board(&mut self) {
        assert!(self.pem.is_some(), "restart_board needs Net::restartable");
        let fingerprint = self.fingerprint.clone();
        self.stop_board();
        self.start_board();
        assert_eq!(
            self.fingerprint, fingerprint,
            "the restarted board's fingerprint"
        );
    }

    pub fn join(&self, meeting: &str, name: &str) -> Sidecar {
        self.join_with(meeting, name, &[])
    }

    pub fn join_with(&self, meeting: &str, name: &str, extra: &[&str]) -> Sidecar {
        self.join_to(meeting, name, None, extra)
    }

    /// Joins a sidecar that delivers to `deliver` (default: its own collector) and seals what
    /// its `client` socket sends (`--local-client`, unless `extra` names another client).
    pub fn join_to(
        &self,
        meeting: &str,
        name: &str,
        deliver: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sidecar {
        self.join_env(meeting, name, deliver, extra, &[])
    }

    /// [`Net::join_to`] with environment variables set for the sidecar.
    pub fn join_env(
        &self,
        meeting: &str,
        name: &str,
        deliver: Option<SocketAddr>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Sidecar {
        let sink = Collector::new();
        let deliver = deliver.unwrap_or(sink.addr());
        let listen = free_udp();
        let admin = free_tcp();
        let token_file = self.dir.join(format!("{name}.admin-token"));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut cmd = veil();
        cmd.arg("sidecar")
            .args(["--board", &self.board_addr.to_string()])
            .args(["--meeting", meeting, "--name", name])
            .args(["--test-timings", "fast"])
            .args(["--local-listen", &listen.to_string()])
            .args(["--local-deliver", &deliver.to_string()])
            .args(["--bind", &free_udp().to_string()])
            .args(["--remote", &self.relay.media.to_string()])
            .args(["--admin", &admin.to_string()])
            .arg("--admin-token-file")
            .arg(&token_file)
            .args(["--engine", "mio", "--workers", "1"])
            .args(extra)
            .envs(env.iter().copied());
        if self.websocket {
            cmd.arg("--board-insecure-plaintext");
        } else {
            cmd.args(["--board-fingerprint", &self.fingerprint]);
        }
        // Finding 19.4: the sidecar seals only its client's exact address.
        if !extra.contains(&"--local-client") {
            cmd.args(["--local-client", &client.local_addr().unwrap().to_string()]);
        }
        let proc = Proc::spawn(cmd, &self.dir, name);
        let sidecar = Sidecar {
            name: name.to_owned(),
            proc,
            admin,
            token_file,
            listen,
            sink,
            client,
            sent: 0,
        };
        sidecar.wait(LIMIT, "its admin endpoint", |_| true);
        sidecar
    }
}

pub struct Sidecar {
    pub name: String,
    pub proc: Proc,
    pub admin: SocketAddr,
    /// Where the sidecar wrote its admin token (`--admin-token-file`).
    pub token_file: PathBuf,
    pub listen: SocketAddr,
    pub sink: Collector,
    pub client: UdpSocket,
    pub sent: u32,
}

impl Sidecar {
    pub fn status(&self) -> Option<Value> {
        serde_json::from_str(&http(self.admin, "GET", "/status")?).ok()
    }

    /// Waits until `check` holds for this sidecar's status.
    pub fn wait(&self, limit: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.status()
                && check(&status)
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}; status {:?}\nlog:\n{}",
                self.name,
                self.status(),
                self.proc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn mk_seq(status: &Value) -> u64 {
        status["mk_seq"].as_u64().unwrap_or(0)
    }

    /// POSTs a command with this sidecar's admin token.
    pub fn post(&self, path: &str) {
        let token = std::fs::read_to_string(&self.token_file).unwrap();
        assert!(
            http_with_token(self.admin, "POST", path, Some(token.trim())).is_some(),
            "{}: POST {path} refused",
            self.name
        );
    }

    /// `POST /invite?user=USER` on a host (`--host --invites`): its JSON answer (`user`,
    /// `invite`, and `link` when the host knows the page).
    pub fn invite(&self, user: &str) -> Value {
        let token = std::fs::read_to_string(&self.token_file).unwrap();
        let body = http_with_token(
            self.admin,
            "POST",
            &format!("/invite?user={user}"),
            Some(token.trim()),
        )
        .unwrap_or_else(|| panic!("{}: POST /invite refused", self.name));
        serde_json::from_str(&body).unwrap()
    }

    /// Sends `n` numbered packets from this participant's client through its sidecar.
    pub fn send(&mut self, n: u32) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        for _ in 0..n {
            let mut p = format!("{}:{}:", self.name, self.sent).into_bytes();
            p.resize(200, b'.');
            self.client.send_to(&p, self.listen).unwrap();
            sent.push(p);
            self.sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    }
}

/// A string field of a status, "" if absent.
pub fn text(status: &Value, field: &str) -> String {
    status[field].as_str().unwrap_or_default().to_owned()
}

/// A counter of a status, 0 if absent.
pub fn count(status: &Value, field: &str) -> u64 {
    status[field].as_u64().unwrap_or(0)
}

/// `check` must hold for `sidecar`'s status for `how_long`, checked every 50 ms.
pub fn holds(sidecar: &Sidecar, how_long: Duration, check: impl Fn(&Value) -> bool) {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        let status = sidecar.status().unwrap();
        assert!(check(&status), "{}: {status}", sidecar.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn slot(status: &Value) -> Option<u64> {
    status["sender_slot"].as_u64()
}

pub fn has_key(status: &Value) -> bool {
    Sidecar::mk_seq(status) > 0 && slot(status).is_some()
}

pub fn roster_len(status: &Value) -> usize {
    status["roster"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|e| e["state"] == "present").count())
}

/// Waits until everyone holds the same mkSeqNum, at least `min`, and lists `present` members;
/// then waits past the activation delay so everyone sends with it. Returns that mkSeqNum.
pub fn converge(members: &[&Sidecar], present: usize, min: u64) -> u64 {
    let deadline = Instant::now() + LIMIT;
    loop {
        let statuses: Vec<Value> = members.iter().filter_map(|m| m.status()).collect();
        let seqs: Vec<u64> = statuses.iter().map(Sidecar::mk_seq).collect();
        if statuses.len() == members.len()
            && seqs.iter().all(|s| *s == seqs[0] && *s >= min)
            && statuses
                .iter()
                .all(|s| has_key(s) && roster_len(s) == present)
        {
            std::thread::sleep(Duration::from_millis(400));
            return seqs[0];
        }
        assert!(Instant::now() < deadline, "no convergence: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `from` sends 20 packets; each of `to` must deliver exactly those, in order.
pub fn media_flows(from: &mut Sidecar, to: &[&Sidecar]) {
    for t in to {
        t.sink.take(Duration::from_millis(50));
    }
    let sent = from.send(20);
    for t in to {
        let got = t.sink.take(Duration::from_millis(300));
        assert!(
            got == sent,
            "{} -> {}: {} of {} packets arrived",
            from.name,
            t.name,
            got.len(),
            sent.len()
        );
    }
}

/// `from` sends 20 packets; none of `to` may deliver any.
pub fn media_blocked(from: &mut Sidecar, to: &[&Sidecar]) {
    for t in to {
        t.sink.take(Duration::from_millis(50));
    }
    from.send(20);
    for t in to {
        let got = t.sink.take(Duration::from_millis(300));
        assert!(
            got.is_empty(),
            "{} -> {}: media got through",
            from.name,
            t.name
        );
    }
}
