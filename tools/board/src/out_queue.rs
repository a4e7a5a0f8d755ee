//! `OutQueue`: the frames queued for one connection, shared with every other recipient.
//!
//! A post the board fans out to a meeting is encoded once ([`crate::core::Output::Send`] holds
//! an `Arc<[u8]>`); each connection's queue keeps a reference to it, not a copy. In a join storm
//! of 1,000 hybrid members every member's two posts (10 kB) go to 999 others: copied into each
//! queue they held 4.9 GB at the peak, shared they hold one copy per post. Writing takes bytes
//! off the front without moving the rest (a `Vec` drained from the front moved the whole
//! remaining queue on every write). A write hands the socket or TLS several frames at once
//! ([`OutQueue::io_slices`]), so small frames still fill whole TLS records.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

/// Frames queued for a connection and not yet handed to its socket (or to TLS).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    frames: VecDeque<Arc<[u8]>>,
    /// Bytes of the front frame already written.
    written: usize,
    /// Bytes queued and not yet written, over all frames.
    len: usize,
}

impl OutQueue {
    /// Bytes queued and not yet written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `frame` after everything queued.
    pub(crate) fn push(&mut self, frame: Arc<[u8]>) {
        self.len += frame.len();
        if !frame.is_empty() {
            self.frames.push_back(frame);
        }
    }

    /// The unwritten bytes of the front frame (empty when nothing is queued).
    pub(crate) fn front(&self) -> &[u8] {
        self.frames
            .front()
            .and_then(|f| f.get(self.written..))
            .unwrap_or_default()
    }

    /// The unwritten bytes, front first, as up to `out.len()` slices for one vectored write;
    /// returns how many it filled.
    pub(crate) fn io_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let pieces = std::iter::once(self.front())
            .chain(self.frames.iter().skip(1).map(|f| &f[..]))
            .filter(|piece| !piece.is_empty());
        let mut filled = 0;
        for (slot, piece) in out.iter_mut().zip(pieces) {
            *slot = IoSlice::new(piece);
            filled += 1;
        }
        filled
    }

    /// Marks the first `n` unwritten bytes written (all of them, if `n` is more).
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0 && !self.is_empty() {
            let front = self.front().len();
            let step = n.min(front);
            self.len -= step;
            n -= step;
            if step == front {
                self.frames.pop_front();
                self.written = 0;
            } else {
                self.written += step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Arc<[u8]> {
        Arc::from(bytes)
    }

    #[test]
    fn bytes_come_out_in_order_across_frames_and_partial_writes() {
        let mut q = OutQueue::default();
        q.push(frame(b"abc"));
        q.push(frame(b""));
        q.push(frame(b"defg"));
        assert_eq!(q.len(), 7);
        let mut out = Vec::new();
        // Writes of 2 bytes at most, as a socket taking little at a time would.
        while !q.is_empty() {
            let take = q.front().len().min(2);
            out.extend_from_slice(&q.front()[..take]);
            q.consume(take);
        }
        assert_eq!(out, b"abcdefg");
        assert_eq!((q.len(), q.front()), (0, &b""[..]));
    }

    #[test]
    fn a_frame_shared_by_queues_is_one_allocation() {
        let shared = frame(&[7; 1000]);
        let mut queues: Vec<OutQueue> = (0..10).map(|_| OutQueue::default()).collect();
        for q in &mut queues {
            q.push(shared.clone());
        }
        assert_eq!(Arc::strong_count(&shared), 11);
        for q in &mut queues {
            assert_eq!(q.front().as_ptr(), shared.as_ptr());
            q.consume(1000);
        }
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn a_vectored_write_takes_bytes_across_frames() {
        let mut q = OutQueue::default();
        for f in [&b"ab"[..], b"", b"cde", b"f"] {
            q.push(frame(f));
        }
        q.consume(1);
        let mut slices = [IoSlice::new(&[]); 2];
        let n = q.io_slices(&mut slices);
        let got: Vec<&[u8]> = slices[..n].iter().map(|s| &s[..]).collect();
        // At most as many slices as asked for, the front's unwritten part first.
        assert_eq!(got, [&b"b"[..], b"cde"]);
        // A write that took part of the second slice.
        q.consume(3);
        assert_eq!((q.len(), q.front()), (2, &b"e"[..]));
        q.consume(10);
        assert!(q.is_empty());
        assert_eq!(q.io_slices(&mut [IoSlice::new(&[]); 2]), 0);
    }
}
