//! The fallback engine: epoll readiness through mio, UDP GRO on receive where the kernel has it
//! (recvmmsg otherwise), sendmmsg with UDP GSO on send.
//!
//! Sockets are edge-triggered, so a side stays "pending" until a receive comes back short or
//! reports WouldBlock; the loop takes one batch from each pending side in turn so neither
//! direction starves the other.
//!
//! With GRO the network side's datagrams, which are opened, stay where the receive put them:
//! its batch's slots are windows onto the segments of its GRO buffers (`GroRecv::lend`),
//! opened in place and sent from there, and the buffers are received into again only after
//! that batch was sent (sendmmsg returns once the kernel has the bytes). The local side's
//! segments, which sealing grows by header and tag, are copied into batch slots with room.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::gro::{GroRecv, enable_gro};
use crate::mmsg::{Mmsg, gso_supported};
use crate::{IoDrop, Pipeline, ReceiveReport, Side, WorkerSockets, now};
use dataplane::batch::{BATCH_SIZE, Batch};

/// How long a stopping worker keeps draining before it gives up on a sender that never pauses.
pub const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often an idle worker looks at its stop flag.
const IDLE_POLL: Duration = Duration::from_millis(50);

const SIDES: [Side; 2] = [Side::Local, Side::Network];

struct Io<'a> {
    sockets: &'a WorkerSockets,
    recv: Mmsg,
    /// GRO receive scratch per side, where the socket took GRO.
    gro: [Option<GroRecv>; 2],
    /// Send scratch per destination side, each with its socket's GSO support.
    send: [Mmsg; 2],
    /// The batch datagrams are received or copied into.
    batch: Batch,
    /// The network side's batch over its GRO buffers, where its datagrams are opened (with
    /// GRO on that side; `None` without).
    lent: Option<Batch>,
}

impl Io<'_> {
    /// What each side's receives did so far.
    fn report(&self) -> RunReport {
        let side = |side: Side| {
            self.gro[side as usize]
                .as_ref()
                .map(GroRecv::report)
                .unwrap_or_default()
        };
        RunReport {
            local: side(Side::Local),
            network: side(Side::Network),
        }
    }

    /// Receives one batch on `side`, runs the pipeline, sends the rest on. Returns whether the
    /// side may hold more.
    fn pump(&mut self, side: Side, pipeline: &mut impl Pipeline) -> io::Result<bool> {
        let (input, output, out_side, dest) = match side {
            Side::Local => (
                &self.sockets.local,
                &self.sockets.network,
                Side::Network,
                self.sockets.remote,
            ),
            Side::Network => (
                &self.sockets.network,
                &self.sockets.local,
                Side::Local,
                self.sockets.deliver,
            ),
        };
        let batch = match (side, self.lent.as_mut()) {
            (Side::Network, Some(lent)) => lent,
            _ => &mut self.batch,
        };
        let result = match self.gro[side as usize].as_mut() {
            Some(gro) => gro.recv(input.as_fd(), batch, side.recv_offset()),
            None => self.recv.recv(input.as_fd(), batch, side.recv_offset()),
        };
        let (received, truncated) = match result {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => {
                tracing::debug!(?side, error = %e, "receive failed");
                return Ok(false);
            }
        };
        if truncated > 0 {
            pipeline.io_drop(side, IoDrop::Truncated, truncated as u64);
        }
        pipeline.process(side, now(), batch);
        // Counted before it is sent, so nothing is delivered before it is counted.
        pipeline.publish();
        // Synchronous: when it returns the kernel holds what it sends, so the next receive may
        // write into the GRO buffers a lent batch's packets were sent from.
        let sent = self.send[out_side as usize].send(output.as_fd(), batch, dest)?;
        if sent.failed > 0 {
            pipeline.io_drop(side, IoDrop::SendFailed, sent.failed);
        }
        pipeline.sent(out_side, sent.packets);
        // A short read means the queue was empty when we read it (for GRO: fewer datagrams than
        // asked for, see GroRecv::drained); with edge-triggered epoll any datagram arriving
        // after that raises a new event, so no extra empty read is needed.
        Ok(match &self.gro[side as usize] {
            Some(gro) => !gro.drained(),
            None => received == BATCH_SIZE,
        })
    }
}

/// Runs one worker until `stop` is set, then drains what is queued (for up to
/// [`DRAIN_LIMIT`]) and returns.
pub fn run(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
) -> io::Result<()> {
    run_reporting(sockets, pipeline, stop).map(drop)
}

/// How a mio worker's run went ([`run_reporting`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The local side's receives (plaintext from the client, sealed).
    pub local: ReceiveReport,
    /// The network side's receives (protected packets from the relay or peer, opened).
    pub network: ReceiveReport,
}

/// [`run`], reporting per side the datagrams copied into a batch slot and the receives GRO
/// coalesced (a side without GRO reads with recvmmsg straight into the batch: no copy).
pub fn run_reporting(
    sockets: &WorkerSockets,
    pipeline: &mut impl Pipeline,
    stop: &AtomicBool,
) -> io::Result<RunReport> {
    let mut poll = Poll::new()?;
    for (side, socket) in [
        (Side::Local, &sockets.local),
        (Side::Network, &sockets.network),
    ] {
        let fd = socket.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(side as usize), Interest::READABLE)?;
    }
    let mut gro = [
        enable_gro(&sockets.local).then(GroRecv::new),
        enable_gro(&sockets.network).then(GroRecv::new),
    ];
    // The network side's packets are opened, which shrinks them: they stay in the GRO buffers.
    let lent = gro[Side::Network as usize].as_mut().and_then(GroRecv::lend);
    let mut io = Io {
        sockets,
        recv: Mmsg::new(false),
        gro,
        send: [
            Mmsg::new(gso_supported(&sockets.local)),
            Mmsg::new(gso_supported(&sockets.network)),
        ],
        batch: Batch::new(),
        lent,
    };
    tracing::debug!(
        gso = io.send[Side::Network as usize].gso(),
        "mio worker started"
    );
    let mut events = Events::with_capacity(8);
    let mut pending = [true, true];
    let mut drain_until: Option<Instant> = None;
    let mut next_tick = Instant::now();
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + DRAIN_LIMIT);
        }
        // At least every IDLE_POLL, busy or idle (an idle poll returns by then): retired keys
        // go within that bound even when no packet comes to sync the caches.
        let clock = Instant::now();
        if clock >= next_tick {
            pipeline.tick(now());
            next_tick = clock + IDLE_POLL;
        }
        let busy = pending.iter().any(|&p| p);
        let timeout = if busy || drain_until.is_some() {
            Duration::ZERO
        } else {
            // About to sleep: the last batch's send counts become visible now.
            pipeline.publish();
            IDLE_POLL
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        for event in &events {
            if let Some(flag) = pending.get_mut(event.token().0) {
                *flag = true;
            }
        }
        if let Some(deadline) = drain_until
            && (!pending.iter().any(|&p| p) || Instant::now() >= deadline)
        {
            pipeline.publish();
            return Ok(io.report());
        }
        for side in SIDES {
            if pending[side as usize] {
                pending[side as usize] = io.pump(side, pipeline)?;
            }
        }
    }
}
