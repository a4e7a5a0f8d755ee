//! The soak's participants: each a meeting-mode `veil sidecar` with fixed ports and a fixed
//! identity file (so a restart is the same device on the same addresses), with a numbered RTP
//! source in front and a sink behind that outlive any restart of the sidecar, and its network
//! behind two proxies the soak can cut: media to the relay (UDP, dropped while cut) and the
//! board connection (TCP, stalled while cut).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::demo::DemoError;
use crate::demo::procs::{Proc, free_tcp, free_udp, status};
use crate::demo::traffic::{Sink, Source};
use crate::soak::proxy::CutProxy;
use crate::soak::stall::StallProxy;

/// The meeting the soak runs.
pub(crate) const MEETING: &str = "veil-soak";

/// How the sidecars are started.
#[derive(Debug)]
pub(crate) struct Launch {
    /// The `veil` binary.
    pub(crate) veil: PathBuf,
    /// Logs and identity files.
    pub(crate) dir: PathBuf,
    /// `veil board` address.
    pub(crate) board: SocketAddr,
    /// The key rotation interval, seconds.
    pub(crate) rotation_s: u64,
}

/// Counters of earlier instances of a sidecar, carried over its restarts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Carried {
    /// Packets that failed authentication.
    pub(crate) auth_failure: u64,
    /// Replays refused.
    pub(crate) replay: u64,
    /// Packets of an unknown key (in flight across a rejoin or a session end).
    pub(crate) unknown_key: u64,
}

/// One participant.
#[derive(Debug)]
pub(crate) struct Member {
    /// Source index (SSRC low byte) and position.
    pub(crate) index: u8,
    /// Display name and log name.
    pub(crate) name: String,
    listen: SocketAddr,
    /// The sidecar's `--bind` (where the relay or the proxy sends to it).
    pub(crate) bind: SocketAddr,
    admin: SocketAddr,
    /// Its media path to the relay.
    media: CutProxy,
    /// Its board connection.
    board_link: StallProxy,
    identity: PathBuf,
    sidecar: Option<Proc>,
    /// How many times its sidecar was started.
    pub(crate) instance: u32,
    /// Its media source (outlives sidecar restarts).
    source: Option<Source>,
    /// Its sink (outlives sidecar restarts).
    pub(crate) sink: Sink,
    /// When each packet went out, kept when the source stops.
    sent_at: Vec<Instant>,
    /// The last `/status` of the running instance.
    pub(crate) last: Option<serde_json::Value>,
    /// Counters of the instances before this one.
    pub(crate) carried: Carried,
}

fn drop_count(status: Option<&serde_json::Value>, reason: &str) -> u64 {
    status
        .and_then(|s| s.get("packets"))
        .and_then(|p| p.get("drops"))
        .and_then(|d| d.get(reason))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

impl Member {
    /// Reserves the ports and starts the proxies to `relay` and `board`; the sidecar starts
    /// with [`Member::start`].
    pub(crate) fn new(
        index: u8,
        dir: &Path,
        relay: SocketAddr,
        board: SocketAddr,
    ) -> Result<Self, DemoError> {
        let name = format!("soak-{index}");
        let bind = free_udp()?;
        Ok(Self {
            index,
            identity: dir.join(format!("{name}.identity")),
            name,
            listen: free_udp()?,
            bind,
            admin: free_tcp()?,
            media: CutProxy::start(bind, relay)?,
            board_link: StallProxy::start(board)?,
            sidecar: None,
            instance: 0,
            source: None,
            sink: Sink::start()?,
            sent_at: Vec::new(),
            last: None,
            carried: Carried::default(),
        })
    }

    /// Cuts (true) or restores (false) its network: media and board connection.
    pub(crate) fn set_cut(&self, cut: bool) {
        self.media.set_cut(cut);
        self.board_link.set_cut(cut);
    }

    /// Media datagrams its proxy dropped while cut, both ways, over the whole run.
    pub(crate) fn dropped(&self) -> u64 {
        self.media.dropped()
    }

    /// Whether its last `/status` says it leads the meeting, and whom it names as leader.
    pub(crate) fn leader_view(&self) -> Option<(bool, String, String)> {
        let last = self.last.as_ref()?;
        Some((
            last.get("is_leader")?.as_bool()?,
            last.get("me")?.as_str()?.to_owned(),
            last.get("leader")?.as_str()?.to_owned(),
        ))
    }

    /// Sessions its running sidecar began by rejoining.
    pub(crate) fn rejoins(&self) -> u64 {
        self.last
            .as_ref()
            .and_then(|s| s.get("rejoins"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }

    /// Starts its sidecar and waits until it has joined (its admin endpoint answers); starts
    /// its source the first time.
    pub(crate) fn start(&mut self, launch: &Launch) -> Result<(), DemoError> {
        let mut args: Vec<String> = [
            "sidecar",
            "--board",
            &self.board_link.front().to_string(),
            "--board-insecure-plaintext",
            "--meeting",
            MEETING,
            "--name",
            &self.name,
            "--identity",
            &self.identity.display().to_string(),
            "--test-rotation-interval",
            &launch.rotation_s.to_string(),
            "--local-listen",
            &self.listen.to_string(),
            "--local-deliver",
            &self.sink.addr().to_string(),
            "--bind",
            &self.bind.to_string(),
            "--remote",
            &self.media.front().to_string(),
            "--admin",
            &self.admin.to_string(),
            // Beside the identity, not left in the temp dir by a killed sidecar.
            "--admin-token-file",
            &self
                .identity
                .with_extension("admin-token")
                .display()
                .to_string(),
            "--rtp",
            "--workers",
            "1",
        ]
        .map(str::to_owned)
        .to_vec();
        if self.index == 0 {
            args.push("--host".into());
        }
        let sidecar = Proc::spawn_program(&launch.veil, &launch.dir, &self.name, &args, false)?;
        self.instance += 1;
        self.sidecar = Some(sidecar);
        let deadline = Instant::now() + Duration::from_secs(20);
        while status(self.admin).is_none() {
            if Instant::now() > deadline {
                return Err(DemoError::Startup(self.name.clone()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.source.is_none() {
            self.source = Some(Source::start(self.index, &self.sink, self.listen)?);
        }
        Ok(())
    }

    /// Reads its `/status`.
    pub(crate) fn poll(&mut self) {
        if self.sidecar.is_some() {
            self.last = status(self.admin).or(self.last.take());
        }
    }

    /// Ends its sidecar: SIGKILL when `kill`, else SIGTERM (it posts its leave). Its last
    /// counters are carried over.
    pub(crate) fn end(&mut self, kill: bool) {
        self.poll();
        let last = self.last.take();
        let c = &mut self.carried;
        c.auth_failure += drop_count(last.as_ref(), "auth_failure");
        c.replay += drop_count(last.as_ref(), "replay");
        c.unknown_key += drop_count(last.as_ref(), "unknown_key");
        if let Some(sidecar) = self.sidecar.take() {
            if kill {
                // Dropping a Proc is SIGKILL and wait.
                drop(sidecar);
            } else {
                sidecar.stop(Duration::from_secs(5));
            }
        }
    }

    /// Counters over every instance, the running one included.
    pub(crate) fn totals(&self) -> Carried {
        let last = self.last.as_ref();
        Carried {
            auth_failure: self.carried.auth_failure + drop_count(last, "auth_failure"),
            replay: self.carried.replay + drop_count(last, "replay"),
            unknown_key: self.carried.unknown_key + drop_count(last, "unknown_key"),
        }
    }

    /// `(instance name, pid)` of its running sidecar.
    pub(crate) fn process(&self) -> Option<(String, u32)> {
        let sidecar = self.sidecar.as_ref()?;
        Some((format!("{}#{}", self.name, self.instance), sidecar.pid()))
    }

    /// Stops its source, keeping the send times.
    pub(crate) fn stop_source(&mut self) {
        if let Some(source) = self.source.take() {
            self.sent_at = source.send_times();
            source.stop();
        }
    }

    /// When each of its packets went out (so far, or all once stopped).
    pub(crate) fn send_times(&self) -> Vec<Instant> {
        self.source
            .as_ref()
            .map_or_else(|| self.sent_at.clone(), Source::send_times)
    }

    /// Packets its source has sent.
    pub(crate) fn sent(&self) -> u64 {
        self.source.as_ref().map_or(0, Source::sent)
    }
}
