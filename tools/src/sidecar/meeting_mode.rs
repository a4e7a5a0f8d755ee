//! Meeting mode: keys from the meeting handshake. The sidecar runs a [`Participant`] against the
//! board, installs every certified key it reports into the keyring (the same keyring as in
//! pre-shared key mode), retires epochs when told, registers with the relay, and serves the
//! participant's status as JSON.
//!
//! The keyring is fixed to this device's sender slot, which the leader assigns on admission and
//! the first key's roster names; until then the workers run on an empty keyring, so outgoing
//! media is dropped and counted (`send_drops{reason="no_key"}`), never sent in the clear. When
//! the session ends (left, kicked, refused, heartbeat loss, board lost) every key is dropped
//! (zeroized) and the sidecar stays up, dropping media, with the reason in `/status` until
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use dataplane::io::now;
use dataplane::keyring::{EpochKey, Keyring, MeetingConfig};
use dataplane::sframe::CipherSuite;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{KeyUpdate, Timings};
use keyctl::rng::OsRng;
use keyctl::wire::ParticipantId;
use serde_json::json;
use signal_hook::consts::SIGHUP;

use super::http::{Request, Response};
use super::identity::{IdentityFileError, load_or_create};
use super::metrics::{self, Exposed};
use super::registrar::Registrar;
use super::{Plumbing, SidecarArgs, SidecarError, spawn_admin};
use crate::board::BoardError;
use crate::board::client::{ClientOptions, ClientTls, Join};
use crate::board::tls::parse_fingerprint;
use crate::meeting::{MeetingDriverError, Participant, ParticipantEvent, ParticipantOptions};

/// Flags of meeting mode.
#[derive(Args, Debug)]
#[command(next_help_heading = "Meeting mode")]
pub(crate) struct MeetingArgs {
    /// Meeting mode: run the meeting handshake against this board (`veil board`) instead of
    /// reading a key file. Needs --meeting, --name and one of --board-fingerprint, --board-ca,
    /// --board-insecure-plaintext. --remote must be a `veil relay`.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["key_file", "sender_slot"], requires_all = ["meeting", "name"])]
    pub(crate) board: Option<SocketAddr>,
    /// The meeting to join.
    #[arg(long, value_name = "ID", requires = "board")]
    meeting: Option<String>,
    /// This participant's name (the board's userID and the display name others see).
    #[arg(long, value_name = "NAME", requires = "board")]
    name: Option<String>,
    /// Claim the host role: the board makes the host the leader when present.
    #[arg(long, requires = "board")]
    host: bool,
    /// The device identity (a keyctl identity file), created if missing. Its key-wrapping key
    /// comes from $VEIL_IDENTITY_KWK (64 hex digits) or PATH.kwk beside it (created with a
    /// fresh identity). The same identity rejoins as the same participant. Default: a fresh
    /// identity for this run only.
    #[arg(long, value_name = "PATH", requires = "board")]
    identity: Option<PathBuf>,
    /// Trust the board's TLS certificate with this SHA-256 fingerprint (as `veil board`
    /// prints it; colons allowed).
    #[arg(long, value_name = "HEX", requires = "board", conflicts_with_all = ["board_ca", "board_insecure_plaintext"])]
    board_fingerprint: Option<String>,
    /// Trust the board's TLS certificate if the CA certificates in this PEM file sign it.
    #[arg(
        long,
        value_name = "PATH",
        requires = "board",
        conflicts_with = "board_insecure_plaintext"
    )]
    board_ca: Option<PathBuf>,
    /// Talk to the board without TLS (it runs --insecure-plaintext; loopback only). The board
    /// is untrusted either way; TLS only hides the metadata.
    #[arg(long, requires = "board")]
    board_insecure_plaintext: bool,
    /// For tests only: keyctl timings scaled down (heartbeats every 200 ms, keys active after
    /// 100 ms, leave after 1 s without heartbeats). Never in a real meeting.
    #[arg(long, value_enum, requires = "board", hide = true)]
    test_timings: Option<TestTimings>,
    /// For soak runs and tests only: the leader rotates the meeting key every SECONDS (1 to
    /// 300) instead of every 5 minutes (whitepaper 3.7.6 periodic rotation), with either
    /// timings. `tools/soak` uses 15. Never in a real meeting.
    #[arg(long, value_name = "SECONDS", requires = "board", hide = true,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    test_rotation_interval: Option<u64>,
}

/// `--test-timings` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestTimings {
    /// Seconds-long meetings for tests.
    Fast,
}

/// keyctl timings for `--test-timings fast`.
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
        ..Timings::default()
    }
}

/// Why meeting mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeetingModeError {
    /// No way to trust the board was given.
    #[error(
        "--board needs one of --board-fingerprint HEX, --board-ca PATH or --board-insecure-plaintext"
    )]
    NoBoardTrust,
    /// The fingerprint is not 64 hex digits.
    #[error("--board-fingerprint: {0}")]
    Fingerprint(BoardError),
    /// The identity file.
    #[error(transparent)]
    Identity(#[from] IdentityFileError),
    /// No randomness for a fresh identity.
    #[error("the system random source failed")]
    Rng,
    /// Joining failed.
    #[error("joining the meeting: {0}")]
    Join(#[from] MeetingDriverError),
    /// The driver's meeting reference could not be read back.
    #[error("the participant reported no meeting instance")]
    NoMeeting,
}

/// A leader command from the admin endpoint to the main loop.
#[derive(Debug)]
enum AdminCommand {
    Kick(u32),
    Lock,
    Unlock,
}

/// What the admin thread reads: the last status JSON, kept current by the main loop.
type SharedStatus = Arc<Mutex<serde_json::Value>>;

fn client_tls(args: &MeetingArgs) -> Result<ClientTls, MeetingModeError> {
    if let Some(hex) = &args.board_fingerprint {
        return parse_fingerprint(hex)
            .map(ClientTls::PinnedSha256)
            .map_err(MeetingModeError::Fingerprint);
    }
    if let Some(path) = &args.board_ca {
        return Ok(ClientTls::CaFile(path.clone()));
    }
    if args.board_insecure_plaintext {
        return Ok(ClientTls::Plaintext);
    }
    Err(MeetingModeError::NoBoardTrust)
}

fn identity(args: &MeetingArgs) -> Result<SigningKey, MeetingModeError> {
    match &args.identity {
        Some(path) => Ok(load_or_create(path)?),
        None => SigningKey::generate(&mut OsRng::new()).map_err(|_| MeetingModeError::Rng),
    }
}

/// The meeting and instance from the status's `meetingID/meetingUUID` (the board's UUIDs are
/// text without a slash).
fn meeting_ref(status_meeting: &str) -> Result<(Vec<u8>, Vec<u8>), MeetingModeError> {
    let (id, uuid) = status_meeting
        .rsplit_once('/')
        .ok_or(MeetingModeError::NoMeeting)?;
    Ok((id.as_bytes().to_vec(), uuid.as_bytes().to_vec()))
}

/// The keys of a session: the keyring once the slot is known, and the slot.
struct Keys {
    meeting_id: Vec<u8>,
    meeting_uuid: Vec<u8>,
    keyring: Arc<Keyring>,
    slot: Option<u32>,
}

impl Keys {
    fn empty(meeting_id: &[u8], meeting_uuid: &[u8], slot: u32) -> Arc<Keyring> {
        Arc::new(Keyring::new(MeetingConfig {
            meeting_id: meeting_id.to_vec(),
            meeting_uuid: meeting_uuid.to_vec(),
            own_slot: slot,
            suite: CipherSuite::Aes256GcmSha512_128,
        }))
    }

    /// Installs a certified key; restarts the workers on a new keyring when the key names a
    /// slot for this device other than the keyring's.
    fn install(
        &mut self,
        update: &KeyUpdate,
        me: &ParticipantId,
        plumbing: &mut Plumbing,
    ) -> Result<(), SidecarError> {
        // whitepaper 3.7.4: the leader's roster gives each admitted participant its slot.
        let slot = update
            .roster
            .iter()
            .find_map(|(slot, who)| (who == me).then_some(*slot));
        let Some(slot) = slot else {
            tracing::warn!(
                mk_seq = update.mk_seq,
                "a key whose roster does not list this device: installed to receive only"
            );
            return self.install_key(update);
        };
        if self.slot != Some(slot) {
            tracing::info!(
                slot,
                "sender slot assigned; workers move to the meeting's keyring"
            );
            let keyring = Self::empty(&self.meeting_id, &self.meeting_uuid, slot);
            keyring
                .install(EpochKey::from(update), now())
                .map_err(|e| SidecarError::Keys(e.into()))?;
            plumbing.workers.stop();
            // The old keyring (and every key in it) drops here, zeroized.
            self.keyring = keyring;
            self.slot = Some(slot);
            plumbing.workers.start(&self.keyring)?;
            return Ok(());
        }
        self.install_key(update)
    }

    fn install_key(&self, update: &KeyUpdate) -> Result<(), SidecarError> {
        match self.keyring.install(EpochKey::from(update), now()) {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(mk_seq = update.mk_seq, %error, "key refused by the keyring");
                Ok(())
            }
        }
    }

    /// Drops every key (the session is over): the workers move to an empty keyring.
    fn drop_all(&mut self, plumbing: &mut Plumbing) -> Result<(), SidecarError> {
        plumbing.workers.stop();
        self.keyring = Self::empty(&self.meeting_id, &self.meeting_uuid, u32::MAX);
        self.slot = None;
        plumbing.workers.start(&self.keyring)
    }
}

/// Runs meeting mode until SIGINT or SIGTERM.
pub(super) fn run(args: &SidecarArgs) -> Result<(), SidecarError> {
    let margs = &args.meeting;
    let (Some(board), Some(meeting), Some(name)) = (margs.board, &margs.meeting, &margs.name)
    else {
        return Err(SidecarError::Mode);
    };
    let tls = client_tls(margs)?;
    let mut timings = match margs.test_timings {
        Some(TestTimings::Fast) => fast_timings(),
        None => Timings::default(),
    };
    if let Some(seconds) = margs.test_rotation_interval {
        timings.rotation_interval_ms = seconds * 1_000;
    }
    let (mut plumbing, reason) = Plumbing::bind(args)?;
    let participant = Participant::spawn(ParticipantOptions {
        board: ClientOptions {
            addr: board,
            tls,
            connect_timeout: Duration::from_secs(10),
        },
        join: Join {
            meeting_id: meeting.clone(),
            name: name.clone(),
            host: margs.host,
            ivk: [0; 32],
        },
        identity: identity(margs)?,
        timings,
    })
    .map_err(MeetingModeError::from)?;
    let me = participant.me().clone();
    let first = participant.status();
    let (meeting_id, meeting_uuid) = meeting_ref(&first.meeting)?;
    let mut keys = Keys {
        keyring: Keys::empty(&meeting_id, &meeting_uuid, u32::MAX),
        meeting_id,
        meeting_uuid,
        slot: None,
    };
    let mut relay_meeting = first.meeting.clone().into_bytes();
    relay_meeting.truncate(crate::relay::registration::MAX_MEETING_ID);
    let mut registrar = Registrar::new(
        plumbing.workers.network_socket()?,
        args.remote,
        &relay_meeting,
        &hex::encode(me.device.as_bytes()),
    )?;
    plumbing.workers.start(&keys.keyring)?;
    let status: SharedStatus = Arc::new(Mutex::new(json!({})));
    let (commands_tx, commands) = channel();
    if let Some(addr) = args.admin {
        let exposed = plumbing.exposed();
        let status = status.clone();
        spawn_admin(addr, move |request| {
            admin(request, &exposed, &status, &commands_tx)
        })?;
    }
    plumbing.log_started(args, &reason);
    tracing::info!(meeting = %first.meeting, me = %first.me, "joined the meeting");
    let exposed = plumbing.exposed();
    let mut code_shown: Option<String> = None;
    let mut ended: Option<String> = None;
    let mut roster: Vec<(u32, ParticipantId)> = Vec::new();
    loop {
        let mut stop = false;
        for signal in plumbing.signals.pending() {
            if signal == SIGHUP {
                tracing::info!("SIGHUP ignored in meeting mode: keys come from the meeting");
            } else {
                tracing::info!(signal, "stopping: leaving the meeting");
                stop = true;
            }
        }
        if stop {
            break;
        }
        loop {
            let event = match participant.events().try_recv() {
                Ok(event) => event,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            };
            match event {
                ParticipantEvent::Key(update) => {
                    roster = update.roster.iter().map(|(s, p)| (*s, p.clone())).collect();
                    keys.install(&update, &me, &mut plumbing)?;
                    tracing::info!(mk_seq = update.mk_seq, "meeting key installed");
                }
                ParticipantEvent::Retire { mk_seq, at } => keys.keyring.retire(mk_seq, at),
                ParticipantEvent::Alert(alert) => tracing::warn!(?alert, "meeting alert"),
                ParticipantEvent::Left(reason) => {
                    tracing::error!(?reason, "the meeting session ended; every key dropped");
                    ended = Some(format!("{reason:?}"));
                    keys.drop_all(&mut plumbing)?;
                }
                ParticipantEvent::BoardLost(why) => {
                    tracing::error!(%why, "board connection lost; every key dropped");
                    ended = Some(format!("board lost: {why}"));
                    keys.drop_all(&mut plumbing)?;
                }
            }
        }
        apply_commands(&commands, &participant, &roster);
        let snapshot = participant.status();
        if snapshot.security_code != code_shown
            && let Some(code) = &snapshot.security_code
        {
            // Printed for the user to compare out of band (whitepaper 3.8).
            println!("meeting leader security code: {code}");
            code_shown = Some(code.clone());
        }
        if ended.is_none() {
            registrar.tick(Instant::now());
        }
        plumbing.tend(&keys.keyring);
        *status.lock().unwrap_or_else(PoisonError::into_inner) =
            status_json(&snapshot, keys.slot, ended.as_deref(), &exposed);
        thread::sleep(Duration::from_millis(50));
    }
    registrar.leave();
    if let Err(error) = participant.leave() {
        tracing::warn!(%error, "leaving the meeting");
    }
    plumbing.finish();
    // The workers are gone; the last keyring handle drops here and zeroizes its keys.
    drop(keys);
    Ok(())
}

fn apply_commands(
    commands: &Receiver<AdminCommand>,
    participant: &Participant,
    roster: &[(u32, ParticipantId)],
) {
    while let Ok(command) = commands.try_recv() {
        match command {
            AdminCommand::Kick(slot) => match roster.iter().find(|(s, _)| *s == slot) {
                Some((_, who)) => participant.kick(who),
                None => tracing::warn!(slot, "kick: no participant in that slot"),
            },
            AdminCommand::Lock => participant.lock(),
            AdminCommand::Unlock => participant.unlock(),
        }
    }
}

/// `/status`: the participant's status, this device's slot, and the packet counters.
fn status_json(
    status: &crate::meeting::ParticipantStatus,
    slot: Option<u32>,
    ended: Option<&str>,
    exposed: &Exposed,
) -> serde_json::Value {
    let totals = exposed.totals();
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(map) = value.as_object_mut() {
        map.insert("sender_slot".into(), json!(slot));
        if let Some(ended) = ended {
            map.insert("ended".into(), json!(ended));
        }
        map.insert(
            "packets".into(),
            json!({
                "sealed": totals.packets[0],
                "opened": totals.packets[1],
                "sent": totals.sent,
                "drops": dataplane::packet::DropReason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), json!(totals.drops.get(*r))))
                    .collect::<serde_json::Map<_, _>>(),
                "send_drops": dataplane::batch::SendDrop::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), json!(totals.send_drops[*r as usize])))
                    .collect::<serde_json::Map<_, _>>(),
            }),
        );
    }
    value
}

fn admin(
    request: &Request,
    exposed: &Exposed,
    status: &SharedStatus,
    commands: &std::sync::mpsc::Sender<AdminCommand>,
) -> Response {
    let path = request.path.as_str();
    let command = match (request.method.as_str(), path) {
        ("GET", "/metrics") => return metrics::metrics_response(exposed),
        ("GET", "/status") => {
            let body = status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_string();
            return Response::ok("application/json", body);
        }
        ("POST", "/lock") => AdminCommand::Lock,
        ("POST", "/unlock") => AdminCommand::Unlock,
        ("POST", p) if p.starts_with("/kick/") => {
            match p.trim_start_matches("/kick/").parse::<u32>() {
                Ok(slot) => AdminCommand::Kick(slot),
                Err(_) => return Response::text("400 Bad Request", "POST /kick/SLOT\n"),
            }
        }
        _ => {
            return Response::text(
                "404 Not Found",
                "GET /status, GET /metrics, POST /kick/SLOT, POST /lock, POST /unlock\n",
            );
        }
    };
    match commands.send(command) {
        Ok(()) => Response::text(
            "200 OK",
            "sent to the meeting (only the leader can do this)\n",
        ),
        Err(_) => Response::text("503 Service Unavailable", "the sidecar is stopping\n"),
    }
}
