//! libsrtp2 (Debian's `libsrtp2-dev`) for Veil's benches: AES-256-GCM SRTP sessions (RFC 7714,
//! 16-byte tag) behind a safe wrapper, so that `veil-bench`'s `compare` harness can time
//! `srtp_protect` / `srtp_unprotect` beside Veil's packet seal and open in one run.
//!
//! The C side is a small shim (`src/shim.c`) that fills `srtp_policy_t` from libsrtp's own header,
//! so no struct layout is mirrored here. This crate is the only place outside the UDP engines and
//! the C ABI that calls foreign code; it is a bench instrument, never linked into Veil itself.
//! Without libsrtp2 at build time, [`Session::new`] returns [`Error::Unavailable`].
#![deny(unsafe_code)]

use core::ffi::c_void;
use core::fmt;

/// Bytes of an AES-256-GCM SRTP master key and salt (`SRTP_AES_GCM_256_KEY_LEN_WSALT`).
pub const KEY_LEN: usize = 44;

/// Room libsrtp may write after a packet it protects (`SRTP_MAX_TRAILER_LEN`: tag and MKI).
pub const TRAILER_ROOM: usize = 16 + 128;

/// What went wrong, with libsrtp's status code where it gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The crate was built without libsrtp2 (install `libsrtp2-dev` and rebuild).
    Unavailable,
    /// A buffer too short, too long for libsrtp's `int` lengths, or not 32-bit aligned.
    BadBuffer,
    /// libsrtp refused: its `srtp_err_status_t` (9 is `replay_fail`, 7 `auth_fail`).
    Status(i32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable => f.write_str("built without libsrtp2 (apt install libsrtp2-dev)"),
            Self::BadBuffer => f.write_str("buffer too short, too long or not 32-bit aligned"),
            Self::Status(s) => write!(f, "libsrtp status {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// Which way a session works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Protects packets of any SSRC (`ssrc_any_outbound`).
    Outbound,
    /// Unprotects packets of any SSRC (`ssrc_any_inbound`), with a 1,024-packet replay window.
    Inbound,
}

#[cfg(veil_libsrtp)]
mod ffi {
    use core::ffi::c_void;

    #[allow(unsafe_code)]
    unsafe extern "C" {
        pub(crate) fn veil_srtp_init() -> i32;
        pub(crate) fn veil_srtp_new(
            key: *const u8,
            key_len: usize,
            inbound: i32,
            out: *mut *mut c_void,
        ) -> i32;
        pub(crate) fn veil_srtp_protect(
            session: *mut c_void,
            buf: *mut u8,
            len: *mut i32,
            cap: usize,
        ) -> i32;
        pub(crate) fn veil_srtp_unprotect(session: *mut c_void, buf: *mut u8, len: *mut i32)
        -> i32;
        pub(crate) fn veil_srtp_free(session: *mut c_void);
    }
}

/// One libsrtp session. Not `Send`: libsrtp sessions are not thread-safe, and a bench uses each
/// on the thread that made it.
pub struct Session {
    // Without libsrtp no session is ever made, so nothing reads it.
    #[cfg_attr(not(veil_libsrtp), allow(dead_code))]
    raw: *mut c_void,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Session(<libsrtp>)")
    }
}

/// `len` as libsrtp's `int`, if the buffer is one libsrtp accepts.
fn c_len(buf: &[u8], len: usize) -> Result<i32, Error> {
    if len < 12 || len > buf.len() || !(buf.as_ptr() as usize).is_multiple_of(4) {
        return Err(Error::BadBuffer);
    }
    i32::try_from(len).map_err(|_| Error::BadBuffer)
}

#[cfg(veil_libsrtp)]
fn status(code: i32) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Status(code))
    }
}

impl Session {
    /// A session keyed with `key` (32 bytes of AES-256 key, then 12 of salt).
    #[cfg(veil_libsrtp)]
    pub fn new(key: &[u8; KEY_LEN], direction: Direction) -> Result<Self, Error> {
        use std::sync::OnceLock;
        static INIT: OnceLock<i32> = OnceLock::new();
        // SAFETY: srtp_init takes no arguments and is run once, before any session exists.
        #[allow(unsafe_code)]
        status(*INIT.get_or_init(|| unsafe { ffi::veil_srtp_init() }))?;
        let mut raw = core::ptr::null_mut();
        let inbound = i32::from(direction == Direction::Inbound);
        // SAFETY: `key` is KEY_LEN readable bytes, which the shim copies before returning; `raw`
        // is a valid place for the session pointer, written only on success.
        #[allow(unsafe_code)]
        status(unsafe { ffi::veil_srtp_new(key.as_ptr(), KEY_LEN, inbound, &mut raw) })?;
        Ok(Self { raw })
    }

    /// Without libsrtp2 at build time there is no session.
    #[cfg(not(veil_libsrtp))]
    pub fn new(_key: &[u8; KEY_LEN], _direction: Direction) -> Result<Self, Error> {
        Err(Error::Unavailable)
    }

    /// Protects the RTP packet `buf[..len]` in place; `buf` must be 32-bit aligned and have
    /// [`TRAILER_ROOM`] bytes after the packet. Returns the SRTP packet's length.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let mut c = c_len(buf, len)?;
        if buf.len() - len < TRAILER_ROOM {
            return Err(Error::BadBuffer);
        }
        self.call_protect(buf, &mut c)?;
        usize::try_from(c).map_err(|_| Error::BadBuffer)
    }

    /// Verifies and decrypts the SRTP packet `buf[..len]` in place; returns the RTP packet's
    /// length.
    pub fn unprotect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let mut c = c_len(buf, len)?;
        self.call_unprotect(buf, &mut c)?;
        usize::try_from(c).map_err(|_| Error::BadBuffer)
    }

    #[cfg(veil_libsrtp)]
    fn call_protect(&mut self, buf: &mut [u8], len: &mut i32) -> Result<(), Error> {
        // SAFETY: `self.raw` is a live session this wrapper owns; `buf` is writable for
        // `buf.len()` bytes, which the shim is told and checks against `*len` plus the trailer
        // libsrtp may write; the pointer is 32-bit aligned (checked by `c_len`).
        #[allow(unsafe_code)]
        status(unsafe { ffi::veil_srtp_protect(self.raw, buf.as_mut_ptr(), len, buf.len()) })
    }

    #[cfg(veil_libsrtp)]
    fn call_unprotect(&mut self, buf: &mut [u8], len: &mut i32) -> Result<(), Error> {
        // SAFETY: `self.raw` is a live session; libsrtp (2.3 or later, which build.rs requires)
        // checks the header's CSRC count and extension length against `*len`, and reads and
        // rewrites at most `*len` bytes of `buf` (checked by `c_len` to lie within it); the
        // pointer is aligned.
        #[allow(unsafe_code)]
        status(unsafe { ffi::veil_srtp_unprotect(self.raw, buf.as_mut_ptr(), len) })
    }

    #[cfg(not(veil_libsrtp))]
    fn call_protect(&mut self, _buf: &mut [u8], _len: &mut i32) -> Result<(), Error> {
        Err(Error::Unavailable)
    }

    #[cfg(not(veil_libsrtp))]
    fn call_unprotect(&mut self, _buf: &mut [u8], _len: &mut i32) -> Result<(), Error> {
        Err(Error::Unavailable)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        #[cfg(veil_libsrtp)]
        // SAFETY: `self.raw` came from veil_srtp_new and is freed once, here.
        #[allow(unsafe_code)]
        unsafe {
            ffi::veil_srtp_free(self.raw)
        };
    }
}

#[cfg(all(test, veil_libsrtp))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];

    /// A buffer with a 4-byte aligned RTP packet (version 2, PT 96, `seq`, SSRC 0x11223344) of
    /// `payload` bytes, room for the trailer, and the offset the packet starts at.
    fn rtp(seq: u16, payload: usize) -> (Vec<u8>, usize, usize) {
        let len = 12 + payload;
        let mut buf = vec![0u8; len + TRAILER_ROOM + 4];
        let at = (4 - buf.as_ptr() as usize % 4) % 4;
        let [hi, lo] = seq.to_be_bytes();
        buf[at..at + 12].copy_from_slice(&[0x80, 96, hi, lo, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44]);
        for (i, b) in buf[at + 12..at + len].iter_mut().enumerate() {
            *b = i as u8;
        }
        (buf, at, len)
    }

    #[test]
    fn a_protected_packet_carries_a_16_byte_tag_and_unprotects_to_the_original() {
        let mut tx = Session::new(&KEY, Direction::Outbound).unwrap();
        let mut rx = Session::new(&KEY, Direction::Inbound).unwrap();
        let (mut buf, at, len) = rtp(1, 200);
        let original = buf[at..at + len].to_vec();
        let sealed = tx.protect(&mut buf[at..], len).unwrap();
        assert_eq!(sealed, len + 16, "AES-256-GCM with a 16-byte tag");
        assert_eq!(buf[at..at + 12], original[..12], "the header stays clear");
        assert_ne!(
            buf[at + 12..at + len],
            original[12..],
            "the payload is encrypted"
        );
        let opened = rx.unprotect(&mut buf[at..], sealed).unwrap();
        assert_eq!(&buf[at..at + opened], &original[..]);
    }

    #[test]
    fn a_replayed_or_tampered_packet_is_refused() {
        let mut tx = Session::new(&KEY, Direction::Outbound).unwrap();
        let mut rx = Session::new(&KEY, Direction::Inbound).unwrap();
        let (mut buf, at, len) = rtp(2, 64);
        let sealed = tx.protect(&mut buf[at..], len).unwrap();
        let mut tampered = buf.clone();
        tampered[at + 20] ^= 1;
        assert_eq!(
            rx.unprotect(&mut tampered[at..], sealed),
            Err(Error::Status(7))
        );
        rx.unprotect(&mut buf[at..], sealed).unwrap();
        // The same sequence number again: libsrtp's replay window refuses it.
        let (mut again, at2, len2) = rtp(2, 64);
        let mut tx2 = Session::new(&KEY, Direction::Outbound).unwrap();
        let sealed2 = tx2.protect(&mut again[at2..], len2).unwrap();
        assert_eq!(
            rx.unprotect(&mut again[at2..], sealed2),
            Err(Error::Status(9))
        );
        // The sender refuses to protect a sequence number twice.
        let (mut twice, at3, len3) = rtp(2, 64);
        assert_eq!(tx.protect(&mut twice[at3..], len3), Err(Error::Status(9)));
    }

    #[test]
    fn buffers_libsrtp_would_overrun_or_misread_are_refused_before_the_call() {
        let mut tx = Session::new(&KEY, Direction::Outbound).unwrap();
        let (mut buf, at, len) = rtp(3, 100);
        assert_eq!(
            tx.protect(&mut buf[at..at + len + 10], len),
            Err(Error::BadBuffer)
        );
        assert_eq!(tx.protect(&mut buf[at + 1..], len), Err(Error::BadBuffer));
        assert_eq!(tx.protect(&mut buf[at..], 11), Err(Error::BadBuffer));
        assert_eq!(
            tx.protect(&mut buf[at..], len + TRAILER_ROOM),
            Err(Error::BadBuffer)
        );
    }
}
