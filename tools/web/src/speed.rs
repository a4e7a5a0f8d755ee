//! Seal and open speed, the same code natively and in the browser: the packet seal and open
//! of the data plane (SFrame AES-256-GCM, RFC 9605, behind the mkSeqNum; the replay window on
//! open) on one fixed key, in bursts the caller times. `examples/speed.rs` times it natively,
//! `tools/web/js/browser-speed` in headless Chromium through veil-web-js (`SpeedTest`), with
//! the page's `performance.now()` as the clock; the two give the wasm-to-native ratio
//! (docs/BENCHMARKS.md, "The browser participant").
//!
//! The key is a constant: nothing here is a secret or reaches the network.

use dataplane::packet::{self, HEADROOM, Mode, Protected};
use dataplane::replay::ReplayWindows;
use dataplane::sframe::{CipherSuite, Context};

use super::error::WebError;

const KID: u64 = 0x0100;
const MK_SEQ: u32 = 1;
const TAG: usize = 16;

/// One payload size's sealer and opener.
pub struct Speed {
    size: usize,
    tx: Context,
    rx: Context,
    windows: ReplayWindows,
    buf: Vec<u8>,
    sealed: Vec<Vec<u8>>,
}

impl core::fmt::Debug for Speed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Speed")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Speed {
    /// Seals and opens payloads of `size` bytes (at most [`crate::MAX_PAYLOAD`]).
    pub fn new(size: usize) -> Result<Self, WebError> {
        if size > crate::MAX_PAYLOAD {
            return Err(WebError::TooLarge(size));
        }
        let suite = CipherSuite::Aes256GcmSha512_128;
        let mut tx = Context::new(suite);
        let mut rx = Context::new(suite);
        let key = [7u8; 32];
        tx.add_send_key(KID, &key).map_err(packet::Error::from)?;
        rx.add_recv_key(KID, &key).map_err(packet::Error::from)?;
        Ok(Self {
            size,
            tx,
            rx,
            windows: ReplayWindows::new(),
            buf: vec![0x5a; HEADROOM + size + TAG],
            sealed: Vec::new(),
        })
    }

    /// Seals `n` packets (the timed part of a seal burst); returns the bytes sealed.
    pub fn seal(&mut self, n: u32) -> Result<u64, WebError> {
        let mut bytes = 0;
        for _ in 0..n {
            let range = packet::seal(
                Mode::Datagram,
                &mut self.tx,
                KID,
                MK_SEQ,
                &mut self.buf,
                HEADROOM,
                self.size,
            )?;
            bytes += range.len() as u64;
        }
        Ok(bytes)
    }

    /// Seals `n` fresh packets for [`Self::open`] (untimed: each open needs a counter the
    /// replay window has not seen).
    pub fn prepare_open(&mut self, n: u32) -> Result<(), WebError> {
        self.sealed.clear();
        for _ in 0..n {
            let mut buf = vec![0x5a; HEADROOM + self.size + TAG];
            let range = packet::seal(
                Mode::Datagram,
                &mut self.tx,
                KID,
                MK_SEQ,
                &mut buf,
                HEADROOM,
                self.size,
            )?;
            self.sealed.push(buf[range].to_vec());
        }
        Ok(())
    }

    /// Opens every prepared packet in place (the timed part of an open burst): parse, replay
    /// check, AEAD. Returns how many opened.
    pub fn open(&mut self) -> Result<u32, WebError> {
        let mut opened = 0;
        for packet in &mut self.sealed {
            let parsed = Protected::parse(Mode::Datagram, packet)?;
            packet::open(&self.rx, &mut self.windows, &parsed, packet)?;
            opened += 1;
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn what_is_sealed_opens_once_and_a_replay_does_not() {
        let mut speed = Speed::new(1200).unwrap();
        let sealed = speed.seal(3).unwrap();
        assert!(sealed > 3 * 1200 && sealed < 3 * (1200 + 30), "{sealed}");
        speed.prepare_open(5).unwrap();
        let again = speed.sealed.clone();
        assert_eq!(speed.open().unwrap(), 5);
        speed.sealed = again;
        assert!(speed.open().is_err(), "a replay");
        assert!(Speed::new(crate::MAX_PAYLOAD + 1).is_err());
    }
}
