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
use dataplane::packet::Mode;
use dataplane::sframe::CipherSuite;
use keyctl::crypto::SigningKey;
use keyctl::meeting::{Invite, InviteSecret, PqPolicy, Timings};
use keyctl::rng::OsRng;
use serde_json::json;
use signal_hook::consts::SIGHUP;

use super::identity::{IdentityFileError, load_or_create};
use super::registrar::Registrar;
use super::{Plumbing, SidecarArgs, SidecarError, spawn_admin};
use crate::meeting::{MeetingDriverError, ParticipantOptions, Rejoiner};
use admin::{Invites, PageLink, SharedStatus, admin};
use membership::{Membership, relay_meeting};
use veil_board::BoardError;
use veil_board::client::{ClientOptions, ClientTls, Join};
use veil_board::tls::parse_fingerprint;
use zeroize::Zeroizing;

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
    /// Invite-only meeting, with this host issuing the invites (needs --host). The sidecar
    /// draws a fresh invite secret from the OS's random source at start (never written
    /// anywhere, erased at exit); as leader it admits only joiners proving an invite made with
    /// it, and `POST /invite?user=NAME` on the admin address (with the admin token, as /kick)
    /// answers `{"user", "invite", "link"}`: hand the invite (or the link) to NAME out of band.
    /// An invite admits only its own user; a kick bans the kicked user's invite too, so
    /// invite someone again under another name. Every invite dies with this process. A
    /// sidecar invitee gives its invite in $VEIL_INVITE (64 hex digits) and joins with --name
    /// USER, the user the invite was made for.
    #[arg(long, requires = "host")]
    invites: bool,
    /// With --invites: the page browsers join from (`veil web --listen`), for example
    /// https://meet.example/ or http://127.0.0.1:8080/. /invite then adds a `link`: this URL
    /// with the meeting, the invite and the user in its fragment, which browsers never send
    /// to a server. Needs --board-ws.
    #[arg(long, value_name = "URL", requires_all = ["invites", "board_ws"])]
    web_url: Option<String>,
    /// With --web-url: the board's WebSocket listener (its --ws-listen) as browsers reach it,
    /// HOST:PORT. Browsers use wss:// to it, or ws:// on loopback.
    #[arg(long, value_name = "HOST:PORT", requires = "web_url")]
    board_ws: Option<String>,
    /// With --web-url: the relay's WebTransport listener (its --web-listen) as browsers reach
    /// it, HOST:PORT, so links carry media too. With its self-signed certificate, also give
    /// --web-relay-sha256; a relay with --web-cert from a CA browsers trust needs none.
    #[arg(long, value_name = "HOST:PORT", requires = "web_url")]
    web_relay: Option<String>,
    /// The relay's WebTransport certificate SHA-256, as `veil relay --web-listen` prints it
    /// (64 hex digits): browsers pin it (serverCertificateHashes).
    #[arg(long, value_name = "HEX", requires = "web_relay")]
    web_relay_sha256: Option<String>,
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
    /// --web-url is not an http(s) URL without a fragment.
    #[error("--web-url {0:?}: give an http:// or https:// URL without '#', spaces or quotes")]
    WebUrl(String),
    /// $VEIL_INVITE is not 64 hex digits.
    #[error(
        "${INVITE_ENV} must be the invite's 64 hex digits (as POST /invite on the host's sidecar answers)"
    )]
    Invite,
    /// --board-ws or --meeting cannot go into a meeting link.
    #[error("the meeting link cannot carry --board-ws or --meeting: {0}")]
    Link(veil_web::LinkError),
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

/// The page's part of every invite link, checked before anything joins: the URL is http(s)
/// without a fragment, and a link with `--board-ws` and `--meeting` parses back.
fn page_link(
    args: &MeetingArgs,
    meeting: &str,
    media: Mode,
) -> Result<Option<PageLink>, MeetingModeError> {
    let (Some(web_url), Some(board_ws)) = (&args.web_url, &args.board_ws) else {
        return Ok(None);
    };
    let url_ok = (web_url.starts_with("https://") || web_url.starts_with("http://"))
        && web_url.len() <= 2048
        && !web_url
            .chars()
            .any(|c| c == '#' || c == '"' || c.is_whitespace() || c.is_control());
    if !url_ok {
        return Err(MeetingModeError::WebUrl(web_url.clone()));
    }
    let mut probe = format!("veil1&board={board_ws}&meeting={meeting}");
    if let Some(relay) = &args.web_relay {
        probe.push_str(&format!("&relay={relay}"));
    }
    if let Some(sha) = &args.web_relay_sha256 {
        probe.push_str(&format!("&relay_sha256={sha}"));
    }
    let probe = veil_web::MeetingLink::parse(&probe).map_err(MeetingModeError::Link)?;
    Ok(Some(PageLink {
        web_url: web_url.clone(),
        board_ws: board_ws.clone(),
        relay: probe.relay,
        relay_sha256: probe.relay_sha256,
        media,
        pq: args.pq.into(),
    }))
}

/// Where a sidecar invitee's invite comes from (not a flag: the command line is visible to
/// every local user).
pub(super) const INVITE_ENV: &str = "VEIL_INVITE";

/// This sidecar's invite, from $VEIL_INVITE when set.
fn own_invite() -> Result<Option<Invite>, MeetingModeError> {
    let Some(text) = std::env::var_os(INVITE_ENV) else {
        return Ok(None);
    };
    let text = Zeroizing::new(text.into_string().map_err(|_| MeetingModeError::Invite)?);
    let mut bytes = Zeroizing::new([0u8; 32]);
    if text.trim().len() != 64 {
        return Err(MeetingModeError::Invite);
    }
    hex::decode_to_slice(text.trim(), &mut bytes[..]).map_err(|_| MeetingModeError::Invite)?;
    Ok(Some(Invite::new(*bytes)))
}

/// A fresh invite secret from the OS's random source (`--invites`).
fn invite_secret() -> Result<InviteSecret, MeetingModeError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| MeetingModeError::Rng)?;
    Ok(InviteSecret::new(*bytes))
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
    let media = if args.rtp { Mode::Rtp } else { Mode::Datagram };
    let page = page_link(margs, meeting, media)?;
    let host_secret = if margs.invites {
        Some(invite_secret()?)
    } else {
        None
    };
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
        host_secret: host_secret.clone(),
        invite: own_invite()?,
    });
    // The first join fails the start (a wrong address or trust is the user's to fix); only
    // a session that was running is rejoined.
    let participant = rejoiner.join().map_err(MeetingModeError::from)?;
    let first = participant.status();
    let invites = host_secret.map(|secret| Invites {
        secret,
        meeting: participant.meeting().clone(),
        page,
    });
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
        admin(
            request,
            &exposed,
            &admin_status,
            &commands_tx,
            invites.as_ref(),
        )
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
