//! Synthetic media: an RTP source in front of each sidecar and a sink behind it. Each source
//! numbers its packets (RTP sequence number and a 64-bit counter in the payload, its index in
//! the SSRC), so a sink can say exactly which packets of which sender it got.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::DemoError;

/// SSRC of source `i` is `SSRC_BASE | i`.
const SSRC_BASE: u32 = 0x5645_4c00;
/// Packets per second per source (a 20 ms audio frame cadence).
const RATE: u64 = 50;
/// RTP payload bytes (the counter, then filler).
const PAYLOAD: usize = 160;
/// RTP header bytes (no CSRC, no extension).
const RTP_HEADER: usize = 12;

/// One source: sends numbered RTP packets to a sidecar's `--local-listen` until stopped, from its
/// sink's socket (symmetric RTP), so the sidecar's default `--local-client` (`--local-deliver`'s
/// exact address) admits it (finding 19.4).
#[derive(Debug)]
pub(crate) struct Source {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    /// When each packet went out, by counter.
    sent_at: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

fn packet(index: u8, counter: u64) -> [u8; RTP_HEADER + PAYLOAD] {
    let mut p = [0xa5u8; RTP_HEADER + PAYLOAD];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&(counter as u16).to_be_bytes());
    p[4..8].copy_from_slice(&((counter as u32).wrapping_mul(960)).to_be_bytes());
    p[8..12].copy_from_slice(&(SSRC_BASE | u32::from(index)).to_be_bytes());
    p[12..20].copy_from_slice(&counter.to_be_bytes());
    p
}

impl Source {
    /// Starts sending as participant `index` to `dest`, from `sink`'s address.
    pub(crate) fn start(index: u8, sink: &Sink, dest: SocketAddr) -> Result<Self, DemoError> {
        let socket = sink.socket.try_clone().map_err(DemoError::Io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let sent_at = Arc::new(Mutex::new(Vec::new()));
        let (s, n, at) = (stop.clone(), sent.clone(), sent_at.clone());
        let thread = thread::Builder::new()
            .name(format!("demo-source-{index}"))
            .spawn(move || {
                let mut counter = 0u64;
                while !s.load(Ordering::Relaxed) {
                    if socket.send_to(&packet(index, counter), dest).is_ok() {
                        at.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Instant::now());
                        counter += 1;
                        n.store(counter, Ordering::Relaxed);
                    }
                    thread::sleep(Duration::from_millis(1000 / RATE));
                }
            })
            .map_err(DemoError::Io)?;
        Ok(Self {
            stop,
            sent,
            sent_at,
            thread: Some(thread),
        })
    }

    /// When each packet sent so far went out, indexed by its counter.
    pub(crate) fn send_times(&self) -> Vec<Instant> {
        self.sent_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Packets sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops sending; returns how many packets were sent.
    pub(crate) fn stop(mut self) -> u64 {
        self.halt();
        self.sent()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Which packets of one sender a sink got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The first counter received.
    pub(crate) first: u64,
    /// The last counter received.
    pub(crate) last: u64,
    /// How many distinct counters were received.
    pub(crate) received: u64,
    /// Counters between first and last that never arrived.
    pub(crate) missing: u64,
    /// Counters received more than once.
    pub(crate) duplicates: u64,
}

/// Counter and arrival time of every packet received, by sender index.
pub(crate) type Arrivals = BTreeMap<u8, Vec<(u64, Instant)>>;

/// One sink: receives what a sidecar delivers and files it by sender.
#[derive(Debug)]
pub(crate) struct Sink {
    addr: SocketAddr,
    /// The receiving socket, kept so a [`Source`] can send from the same address.
    socket: UdpSocket,
    /// Counter and arrival time of every packet, by sender.
    got: Arc<Mutex<Arrivals>>,
    malformed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Binds a loopback socket and starts receiving.
    pub(crate) fn start() -> Result<Self, DemoError> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(DemoError::Io)?;
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(DemoError::Io)?;
        let addr = socket.local_addr().map_err(DemoError::Io)?;
        let got = Arc::new(Mutex::new(Arrivals::new()));
        let malformed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, m, s) = (got.clone(), malformed.clone(), stop.clone());
        let receiving = socket.try_clone().map_err(DemoError::Io)?;
        let thread = thread::Builder::new()
            .name("demo-sink".into())
            .spawn(move || {
                let mut buf = [0u8; 2048];
                while !s.load(Ordering::Relaxed) {
                    let Ok(n) = receiving.recv(&mut buf) else {
                        continue;
                    };
                    match parse(&buf[..n]) {
                        Some((index, counter)) => g
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .entry(index)
                            .or_default()
                            .push((counter, Instant::now())),
                        None => {
                            m.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(DemoError::Io)?;
        Ok(Self {
            addr,
            socket,
            got,
            malformed,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the sidecar delivers (`--local-deliver`).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Packets that were not a demo packet, byte for byte.
    pub(crate) fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Stops receiving.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// What arrived from each sender.
    pub(crate) fn spans(&self) -> BTreeMap<u8, Span> {
        let got = self.got.lock().unwrap_or_else(PoisonError::into_inner);
        got.iter()
            .filter_map(|(index, arrivals)| {
                let counters: Vec<u64> = arrivals.iter().map(|(c, _)| *c).collect();
                Some((*index, span(&counters)?))
            })
            .collect()
    }

    /// Every packet received so far, with its arrival time.
    pub(crate) fn arrivals(&self) -> Arrivals {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the first packet from `sender` numbered `counter` or later arrived, if one has.
    pub(crate) fn first_arrival_from(&self, sender: u8, counter: u64) -> Option<Instant> {
        let got = self.got.lock().unwrap_or_else(PoisonError::into_inner);
        got.get(&sender)?
            .iter()
            .filter(|(c, _)| *c >= counter)
            .map(|(_, at)| *at)
            .min()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn span(counters: &[u64]) -> Option<Span> {
    let mut sorted = counters.to_vec();
    sorted.sort_unstable();
    let total = sorted.len() as u64;
    sorted.dedup();
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let received = sorted.len() as u64;
    Some(Span {
        first,
        last,
        received,
        missing: (last - first + 1) - received,
        duplicates: total - received,
    })
}

/// The sender and counter of a demo packet, if it is exactly one (header and filler intact).
fn parse(bytes: &[u8]) -> Option<(u8, u64)> {
    if bytes.len() != RTP_HEADER + PAYLOAD {
        return None;
    }
    let ssrc = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    if ssrc & !0xff != SSRC_BASE {
        return None;
    }
    let index = (ssrc & 0xff) as u8;
    let counter = u64::from_be_bytes(bytes.get(12..20)?.try_into().ok()?);
    (bytes == packet(index, counter).as_slice()).then_some((index, counter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_parse_back_and_spans_count_holes() {
        assert_eq!(parse(&packet(3, 77)), Some((3, 77)));
        let mut bad = packet(3, 77);
        bad[100] ^= 1;
        assert_eq!(parse(&bad), None);
        assert_eq!(
            span(&[5, 6, 8, 8, 9]),
            Some(Span {
                first: 5,
                last: 9,
                received: 4,
                missing: 1,
                duplicates: 1
            })
        );
        assert_eq!(span(&[]), None);
    }
}
