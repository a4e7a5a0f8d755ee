//! dataplane: the media hot path of Veil.
//!
//! It protects media with SFrame (RFC 9605) under per-stream keys derived from the meeting key,
//! frames every protected UDP payload behind the 4-byte `mkSeqNum`, and rejects replays with a
//! sliding window. It knows nothing of how a meeting key was agreed: that is keyctl's job, and the
//! two meet only at the key-update type.
//!
//! Module map:
//! - [`sframe`]: RFC 9605 exactly: header, key schedule, all registered cipher suites, and the
//!   Appendix A `Context` with in-place variants.
//! - [`stream_key`]: from a meeting key to per-stream SFrame base keys, and the KID layout.
//! - [`packet`]: the Veil datagram and RTP framings around SFrame.
//! - [`replay`]: the per-(mkSeqNum, KID) sliding replay window.
//! - [`keyring`]: the key epochs of a meeting, published lock-free, and each worker's derived keys.
//! - [`batch`]: a fixed slab of packet buffers, sealed or opened a batch at a time.
//! - [`psk`]: the pre-shared key file that stands in for the handshake in labs.
//! - [`io`]: the UDP engines (io_uring, and mio as the fallback). The only module allowed
//!   `unsafe`, each block with a `// SAFETY:` note; the crate denies it everywhere else.
#![deny(unsafe_code)]

pub mod batch;
#[allow(unsafe_code)]
#[cfg(not(target_arch = "wasm32"))]
pub mod io;
pub mod keyring;
pub mod packet;
pub mod psk;
pub mod replay;
pub mod sframe;
pub mod stream_key;
