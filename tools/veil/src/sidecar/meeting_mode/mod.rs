//! Meeting mode: keys from the meeting handshake. The sidecar runs a
//! [`crate::meeting::Participant`] against the board, installs every certified key it reports
//! into the keyring (the same keyring as in pre-shared key mode), retires epochs when told,
//! registers with the relay, and serves the participant's status as JSON.
//!
//! The workers start once, on the keyring of a `dataplane::keyring::Handoff`, and never
//! restart for keys: this device's sender slot, which the leader assigns on admission and each
//! key's roster names, reaches them with the key. Until the first key outgoing media is dropped
//! and counted (`send_drops{reason="no_key"}`), never sent in the clear. When the session ends
//! every key is erased (zeroized). After a lost board connection, a meeting
//! the board ended, or the leader's heartbeats stopping, the sidecar rejoins with the same
//! identity ([`membership`]); after a kick, a leave or a refusal (and always under
//! `--no-rejoin`) it stays up, dropping media, with the reason in `/status` until SIGTERM.

mod admin;
mod keys;
mod membership;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dataplane::keyring::Handoff;
use dataplane::sframe::CipherSuite;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{PqPolicy, Timings};
use keyctl::rng::OsRng;
use serde_json::json;
use signal_hook::consts::SIGHUP;

use super::identity::{IdentityFileError, load_or_create};
use super::registrar::Registrar;
use super::{Plumbing, SidecarArgs, SidecarError, spawn_admin};
use crate::meeting::{MeetingDriverError, ParticipantOptions, Rejoiner};
use admin::{SharedStatus, admin};
use membership::{Membership, relay_meeting};
use veil_board::BoardError;
use veil_board::client::{ClientOptions, ClientTls, Join};
use veil_board::tls::parse_fingerprint;

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
    /// The device identity (a keyctl identity file, mode 0600), created if missing. Its
    /// key-wrapping key (KWK) comes from $VEIL_IDENTITY_KWK (64 hex digits) if set, else from
    /// the file PATH.kwk BESIDE the identity (created 0600 with a fresh identity; a warning is
    /// logged whenever it is used, since whoever reads the directory can unwrap the identity).
    /// Either file open to group or others is refused (fix: chmod 600 FILE). The same identity
    /// rejoins as the same participant. Default: a fresh identity for this run only.
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
    /// Do not rejoin: when the session ends because the board connection was lost, the board
    /// ended the meeting or the leader's heartbeats stopped, stay up without keys (media
    /// dropped, the reason in /status) until SIGTERM, as after a kick. By default the sidecar
    /// rejoins with the same identity, backing off from 250 ms to 5 s between attempts.
    #[arg(long, requires = "board")]
    no_rejoin: bool,
    /// Post-quantum key delivery: whitepaper v4.6's hybrid box, X25519 + ML-KEM-768.
    ///
    /// Unless `off`, this device makes an ML-KEM-768 key and its signed binding carries it, so
    /// a meeting key boxed to it stays secret from an adversary who records the board today and
    /// breaks X25519 later. The leader's (host's) setting is the meeting's policy; /status shows
    /// it (`pq_policy`) and the members that got the key classically (`classical`,
    /// `roster[].key_delivery`).
    ///
    /// A device with an ML-KEM key refuses a classical box from a leader that has one too (a
    /// downgrade; an alert). Unless `off`, the identity is hybrid too (Ed25519 + ML-DSA-65,
    /// keyctl revision 4; its ML-DSA key derived from the Ed25519 seed): everything it signs
    /// carries both signatures, and a `required` leader admits only hybrid identities. Under
    /// `off` it is Ed25519 alone, as before revision 4.
    #[arg(
        long,
        value_enum,
        value_name = "POLICY",
        default_value = "preferred",
        requires = "board"
    )]
    pq: PqArg,
}

/// `--pq` values (keyctl `PqPolicy`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PqArg {
    /// A hybrid identity (every signature Ed25519 + ML-DSA-65). As leader, refuse joiners
    /// without an ML-KEM key or a hybrid identity (every key by the hybrid box, every
    /// signature hybrid); as participant, take keys only from a hybrid `required` leader:
    /// keyed by a weaker one, refuse the key and leave, without rejoining (the reason is in
    /// /status).
    Required,
    /// A hybrid identity; the hybrid box wherever both sides have an ML-KEM key, the classical
    /// box for the others, and classical identities admitted.
    Preferred,
    /// Classical X25519 box only, no ML-KEM key, an Ed25519 identity; refused by `required`
    /// meetings.
    Off,
}

impl From<PqArg> for PqPolicy {
    fn from(p: PqArg) -> Self {
        match p {
            PqArg::Required => Self::Required,
            PqArg::Preferred => Self::Preferred,
            PqArg::Off => Self::Off,
        }
    }
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
}

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
    let rejoiner = Rejoiner::new(ParticipantOptions {
        board: ClientOptions {
            addr: board,
            tls,
            connect_timeout: Duration::from_secs(10),
            websocket: false,
        },
        join: Join {
            meeting_id: meeting.clone(),
            name: name.clone(),
            host: margs.host,
            ivk: [0; 32],
        },
        identity: identity(margs)?,
        timings,
        pq: margs.pq.into(),
        clock: std::sync::Arc::new(crate::meeting::SystemClock),
    });
    // The first join fails the start (a wrong address or trust is the user's to fix); only
    // a session that was running is rejoined.
    let participant = rejoiner.join().map_err(MeetingModeError::from)?;
    let first = participant.status();
    let handoff = Handoff::new(
        participant.me().clone(),
        participant.meeting(),
        CipherSuite::Aes256GcmSha512_128,
    );
    let registrar = Registrar::new(
        plumbing.workers.network_socket()?,
        args.remote,
        &relay_meeting(&first),
        &veil_relay::ticket::relay_token(participant.me()),
        participant.relay_ticket(),
    )?;
    plumbing.workers.start(handoff.keyring())?;
    let mut membership =
        Membership::new(participant, rejoiner, !margs.no_rejoin, handoff, registrar);
    let status: SharedStatus = Arc::new(Mutex::new(json!({})));
    let (commands_tx, commands) = channel();
    let admin_status = status.clone();
    let exposed = plumbing.exposed();
    let _admin = spawn_admin(args, true, move |request| {
        admin(request, &exposed, &admin_status, &commands_tx)
    })?;
    plumbing.log_started(args, &reason);
    tracing::info!(meeting = %first.meeting, me = %first.me, "joined the meeting");
    let exposed = plumbing.exposed();
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
        membership.tick(&commands)?;
        plumbing.tend(membership.keyring());
        *status.lock().unwrap_or_else(PoisonError::into_inner) = membership.status(&exposed);
        thread::sleep(Duration::from_millis(50));
    }
    let handoff = membership.leave();
    plumbing.finish();
    // The workers are gone; the last keyring handle drops here and zeroizes its keys.
    drop(handoff);
    Ok(())
}
