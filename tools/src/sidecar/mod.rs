//! `veil sidecar`: a media proxy beside an existing client. Plain packets from the client are
//! sealed and sent to the relay; protected packets from the relay are opened and delivered.
//!
//! One worker per core, each with its own SO_REUSEPORT sockets and engine; the main thread only
//! handles signals (SIGHUP: re-read the key file; SIGINT/SIGTERM: drain and exit), retires old
//! epochs, and keeps the admin gauges current.

pub(crate) mod http;
pub mod keys;
pub(crate) use metrics::PROMETHEUS_TEXT;
mod metrics;
mod registrar;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dataplane::io::{
    Counters, CountersSnapshot, EngineKind, Forwarder, WorkerSockets, bind_reuseport, mio_engine,
    now, uring,
};
use dataplane::keyring::Keyring;
use dataplane::packet::Mode;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Flags of `veil sidecar`.
#[derive(Args, Debug)]
pub struct SidecarArgs {
    /// Where the local client sends its plain packets: the sidecar listens on this address and
    /// seals everything that arrives.
    #[arg(long, value_name = "ADDR")]
    local_listen: SocketAddr,
    /// Where opened packets are delivered: the local client's receiving address.
    #[arg(long, value_name = "ADDR")]
    local_deliver: SocketAddr,
    /// The sidecar's network socket: sealed packets leave from it and protected packets from the
    /// relay or peer arrive on it.
    #[arg(long, value_name = "ADDR")]
    bind: SocketAddr,
    /// The relay or peer that sealed packets are sent to.
    #[arg(long, value_name = "ADDR")]
    remote: SocketAddr,
    /// --remote is a `veil relay`: register --bind with it for the key file's meeting (token
    /// `slot-N`, from --sender-slot), refresh every 2 s, and leave on exit. Without it --remote
    /// is a peer sidecar (or anything that forwards without registration).
    #[arg(long)]
    relay: bool,
    /// The pre-shared key file (TOML, from `veil keygen --psk`). Re-read on SIGHUP: the new key
    /// (with a larger mk_seq) decrypts at once, is sent with 2 s later, and the old key stops
    /// decrypting 10 s later.
    #[arg(long, value_name = "PATH")]
    key_file: PathBuf,
    /// This sender's roster slot: the high bits of its KIDs. Must be in the key file's roster.
    #[arg(long, value_name = "N")]
    sender_slot: u32,
    /// RTP mode: the RTP header stays in the clear (authenticated) so a relay can route, the
    /// payload is protected, and the stream key is picked by the SSRC. Default: datagram mode,
    /// the whole UDP payload is protected.
    #[arg(long)]
    rtp: bool,
    /// The UDP engine: `auto` probes io_uring and falls back to mio; `uring` or `mio` forces one.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// Worker threads, each with its own SO_REUSEPORT sockets and engine. Default: one per core.
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
    /// Serve Prometheus metrics at http://ADDR/metrics: packets and bytes per direction, drops
    /// by reason, the current mkSeqNum, the engine.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
}

/// `--engine` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineArg {
    /// Probe io_uring; fall back to mio.
    Auto,
    /// io_uring; fail if it cannot run here.
    Uring,
    /// epoll via mio with recvmmsg/sendmmsg.
    Mio,
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// The key file.
    #[error(transparent)]
    Keys(#[from] keys::KeyFileError),
    /// A socket.
    #[error("{what}: {error}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// The error.
        error: io::Error,
    },
    /// io_uring was forced and cannot run.
    #[error("--engine uring: {0}")]
    NoUring(String),
    /// The relay registration cannot be built (meeting ID or token too long).
    #[error("relay registration: {0}")]
    Registration(#[from] crate::relay::registration::RegistrationError),
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> SidecarError {
    move |error| SidecarError::Io { what, error }
}

fn choose_engine(arg: EngineArg) -> Result<(EngineKind, String), SidecarError> {
    match arg {
        EngineArg::Auto => Ok(EngineKind::probe()),
        EngineArg::Mio => Ok((EngineKind::Mio, "forced by --engine mio".into())),
        EngineArg::Uring => match EngineKind::probe() {
            (EngineKind::Uring, _) => Ok((EngineKind::Uring, "forced by --engine uring".into())),
            (_, reason) => Err(SidecarError::NoUring(reason)),
        },
    }
}

/// Binds `count` SO_REUSEPORT sockets on `addr`; with port 0 the first one picks the port and
/// the others join it.
fn bind_all(
    addr: SocketAddr,
    count: usize,
    what: &'static str,
) -> Result<Vec<UdpSocket>, SidecarError> {
    let first = bind_reuseport(addr).map_err(io_error(what))?;
    let actual = first.local_addr().map_err(io_error(what))?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_reuseport(actual).map_err(io_error(what))?);
    }
    Ok(sockets)
}

/// Runs the sidecar until SIGINT or SIGTERM.
pub fn run(args: SidecarArgs) -> Result<(), SidecarError> {
    let file = keys::read(&args.key_file, args.sender_slot)?;
    let keyring = Arc::new(keys::keyring(&file, args.sender_slot, now())?);
    drop(file);
    let (engine, reason) = choose_engine(args.engine)?;
    let workers = args
        .workers
        .or_else(|| thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let mode = if args.rtp { Mode::Rtp } else { Mode::Datagram };
    let locals = bind_all(args.local_listen, workers, "--local-listen")?;
    let networks = bind_all(args.bind, workers, "--bind")?;
    let mut registrar = if args.relay {
        let socket = networks
            .first()
            .map(UdpSocket::try_clone)
            .transpose()
            .map_err(io_error("--bind"))?
            .ok_or(SidecarError::Io {
                what: "--bind",
                error: io::ErrorKind::NotFound.into(),
            })?;
        let meeting_id = keyring.load().config().meeting_id.clone();
        let token = format!("slot-{}", args.sender_slot);
        Some(registrar::Registrar::new(
            socket,
            args.remote,
            &meeting_id,
            &token,
        )?)
    } else {
        None
    };
    let signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(io_error("signals"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut counters = Vec::new();
    let mut handles = Vec::new();
    for (index, (local, network)) in locals.into_iter().zip(networks).enumerate() {
        let worker_counters = Arc::new(Counters::default());
        counters.push(worker_counters.clone());
        let sockets = WorkerSockets {
            local,
            network,
            deliver: args.local_deliver,
            remote: args.remote,
        };
        let mut forwarder = Forwarder::new(keyring.clone(), mode, worker_counters);
        let stop = stop.clone();
        let handle = thread::Builder::new()
            .name(format!("veil-worker-{index}"))
            .spawn(move || {
                let result = match engine {
                    EngineKind::Uring => uring::run(&sockets, &mut forwarder, &stop),
                    EngineKind::Mio => mio_engine::run(&sockets, &mut forwarder, &stop),
                };
                if let Err(error) = result {
                    tracing::error!(worker = index, %error, "worker stopped");
                }
                forwarder.totals().to_owned()
            })
            .map_err(io_error("spawning a worker"))?;
        handles.push(handle);
    }
    let send_mk_seq = Arc::new(AtomicU64::new(0));
    let newest_mk_seq = Arc::new(AtomicU64::new(0));
    if let Some(addr) = args.admin {
        let listener = metrics::bind(addr).map_err(io_error("--admin"))?;
        let exposed = metrics::Exposed {
            workers: counters,
            send_mk_seq: send_mk_seq.clone(),
            newest_mk_seq: newest_mk_seq.clone(),
            engine: engine.as_str(),
        };
        thread::Builder::new()
            .name("veil-admin".into())
            .spawn(move || metrics::serve(listener, exposed))
            .map_err(io_error("spawning the admin thread"))?;
    }
    tracing::info!(
        engine = engine.as_str(),
        why = %reason,
        workers,
        mode = ?mode,
        local_listen = %args.local_listen,
        bind = %args.bind,
        remote = %args.remote,
        "sidecar started"
    );
    supervise(
        &keyring,
        &args,
        signals,
        registrar.as_mut(),
        &send_mk_seq,
        &newest_mk_seq,
    );
    if let Some(registrar) = &registrar {
        registrar.leave();
    }
    stop.store(true, Ordering::SeqCst);
    let mut totals = CountersSnapshot::default();
    for handle in handles {
        if let Ok(worker) = handle.join() {
            totals.add(&worker);
        }
    }
    // The workers are gone; this is the last holder of the keys, which zeroize as it drops.
    drop(keyring);
    tracing::info!(
        outbound = totals.packets[0],
        inbound = totals.packets[1],
        dropped = totals.drops.total(),
        "sidecar stopped"
    );
    Ok(())
}

/// The main thread's loop: signals, epoch retirement, gauges. Returns on SIGINT or SIGTERM.
fn supervise(
    keyring: &Keyring,
    args: &SidecarArgs,
    mut signals: Signals,
    mut registrar: Option<&mut registrar::Registrar>,
    send_mk_seq: &AtomicU64,
    newest_mk_seq: &AtomicU64,
) {
    loop {
        for signal in signals.pending() {
            match signal {
                SIGHUP => match keys::reload(keyring, &args.key_file, args.sender_slot, now()) {
                    Ok(mk_seq) => tracing::info!(mk_seq, "key file reloaded: rotating"),
                    Err(error) => {
                        tracing::error!(%error, "key file reload refused; keeping the current keys")
                    }
                },
                _ => {
                    tracing::info!(signal, "stopping: draining the workers");
                    return;
                }
            }
        }
        if let Some(registrar) = registrar.as_deref_mut() {
            registrar.tick(std::time::Instant::now());
        }
        let now = now();
        keyring.prune(now);
        let snapshot = keyring.load();
        let send = snapshot.send_epoch(now).map_or(0, |e| e.mk_seq());
        let newest = snapshot.newest().map_or(0, |e| e.mk_seq());
        send_mk_seq.store(u64::from(send), Ordering::Relaxed);
        newest_mk_seq.store(u64::from(newest), Ordering::Relaxed);
        thread::sleep(Duration::from_millis(100));
    }
}
