//! Hybrid-signed board messages (revision 4, issue 16 part 2).
//!
//! A participant whose binding is of kind 0x0B (an Ed25519 + ML-DSA-65 identity) signs with
//! both keys. Each signed board message then travels under a kind of its own, whose bytes
//! are the classical message's body, its 64-byte signature field holding the Ed25519 half,
//! followed by the 3,309-byte ML-DSA-65 half ([`Hybrid`]). Both halves sign
//! `SHA256(ctx) || SHA256(msg)` under a hybrid context ([`Signed::HYBRID_CONTEXT`]) that no
//! classical signature uses, so a board that drops the ML-DSA half and reposts the rest
//! under the classical kind gets a message whose Ed25519 signature verifies for nothing a
//! classical verifier accepts (docs/PROTOCOL.md, "Hybrid signatures on the wire").

use super::binding::KeyAnnouncement;
use super::codec::{Reader, Writer};
use super::heartbeat::Heartbeat;
use super::keyreq::KeyRequest;
use super::liveness::NoncePost;
use super::lock::LockRequest;
use super::lpl::LinkPost;
use super::message::Message;
use super::{Kind, VERSION, WireError, parse_header};
use crate::crypto::hybrid_sig::{HybridSignature, ML_DSA_65_SIG_LEN};
use crate::crypto::{
    CTX_SIG_HYBRID_KEY_ANNOUNCEMENT, CTX_SIG_HYBRID_KEY_REQUEST, CTX_SIG_HYBRID_LIVENESS_NONCE,
    CTX_SIG_HYBRID_LOCK_REQUEST, CTX_SIG_HYBRID_LPL, CTX_SIG_KEY_ANNOUNCEMENT, CTX_SIG_KEY_REQUEST,
    CTX_SIG_LIVENESS_NONCE, CTX_SIG_LOCK_REQUEST, CTX_SIG_LPL,
};

mod sealed {
    use super::super::WireError;
    use crate::crypto::hybrid_sig::ML_DSA_65_SIG_LEN;

    /// The body encoding of a signed board message; only this crate's messages have one.
    pub trait Body: Sized {
        /// Writes the body (everything after version and kind).
        fn write_body(&self, w: &mut Vec<u8>);
        /// Parses a whole [`super::Hybrid`] encoding of the message.
        fn read_hybrid(bytes: &[u8]) -> Result<(Self, Box<[u8; ML_DSA_65_SIG_LEN]>), WireError>;
    }
}

/// A board message with one signature field: its classical kind and context, and the kind
/// and context of the same message hybrid-signed. Implemented by this crate's six signed
/// board messages only.
pub trait Signed: sealed::Body {
    /// The kind of the classically signed message.
    const CLASSICAL_KIND: Kind;
    /// The kind of the hybrid-signed message ([`Hybrid`]).
    const HYBRID_KIND: Kind;
    /// The context of the classical signature.
    const CONTEXT: &'static [u8];
    /// The context of both halves of the hybrid signature.
    const HYBRID_CONTEXT: &'static [u8];
    /// The signature field: the Ed25519 signature (the Ed25519 half, hybrid-signed).
    fn ed25519_sig(&self) -> &[u8; 64];
    /// Sets the signature field.
    fn set_ed25519_sig(&mut self, sig: [u8; 64]);
    /// The board message of the classical kind.
    fn into_message(self) -> Message;
    /// The board message of the hybrid kind.
    fn hybrid_message(h: Hybrid<Self>) -> Message;
}

macro_rules! signed {
    ($ty:ident, $hvariant:ident, $hybrid:expr, $ctx:expr, $hctx:expr) => {
        impl Signed for $ty {
            const CLASSICAL_KIND: Kind = <$ty>::KIND;
            const HYBRID_KIND: Kind = $hybrid;
            fn into_message(self) -> Message {
                Message::$ty(self)
            }
            fn hybrid_message(h: Hybrid<Self>) -> Message {
                Message::$hvariant(h)
            }
            const CONTEXT: &'static [u8] = $ctx;
            const HYBRID_CONTEXT: &'static [u8] = $hctx;
            fn ed25519_sig(&self) -> &[u8; 64] {
                &self.sig
            }
            fn set_ed25519_sig(&mut self, sig: [u8; 64]) {
                self.sig = sig;
            }
        }
        impl sealed::Body for $ty {
            fn write_body(&self, w: &mut Vec<u8>) {
                self.emit_body(w);
            }
            fn read_hybrid(
                bytes: &[u8],
            ) -> Result<(Self, Box<[u8; ML_DSA_65_SIG_LEN]>), WireError> {
                let mut r = Reader::new(bytes);
                parse_header(&mut r, $hybrid)?;
                let msg = Self::parse_body(&mut r)?;
                let ml_dsa = Box::new(r.array()?);
                r.finish()?;
                Ok((msg, ml_dsa))
            }
        }
    };
}

signed!(
    KeyAnnouncement,
    HybridKeyAnnouncement,
    Kind::HybridKeyAnnouncement,
    CTX_SIG_KEY_ANNOUNCEMENT,
    CTX_SIG_HYBRID_KEY_ANNOUNCEMENT
);
signed!(
    LinkPost,
    HybridLinkPost,
    Kind::HybridLinkPost,
    CTX_SIG_LPL,
    CTX_SIG_HYBRID_LPL
);
signed!(
    Heartbeat,
    HybridHeartbeat,
    Kind::HybridHeartbeat,
    CTX_SIG_LPL,
    CTX_SIG_HYBRID_LPL
);
signed!(
    NoncePost,
    HybridNoncePost,
    Kind::HybridNoncePost,
    CTX_SIG_LIVENESS_NONCE,
    CTX_SIG_HYBRID_LIVENESS_NONCE
);
signed!(
    LockRequest,
    HybridLockRequest,
    Kind::HybridLockRequest,
    CTX_SIG_LOCK_REQUEST,
    CTX_SIG_HYBRID_LOCK_REQUEST
);
signed!(
    KeyRequest,
    HybridKeyRequest,
    Kind::HybridKeyRequest,
    CTX_SIG_KEY_REQUEST,
    CTX_SIG_HYBRID_KEY_REQUEST
);

/// A hybrid-signed board message: `u8 version || u8 M::HYBRID_KIND || M's body (its
/// signature field the Ed25519 half) || [3309] the ML-DSA-65 half`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hybrid<M> {
    /// The message, its signature field holding the Ed25519 half.
    pub msg: M,
    /// The ML-DSA-65 half (FIPS 204 `sigEncode`).
    pub ml_dsa: Box<[u8; ML_DSA_65_SIG_LEN]>,
}

impl<M: Signed> Hybrid<M> {
    /// `msg` with its signature field set to `sig`'s Ed25519 half, and `sig`'s ML-DSA half.
    pub fn new(mut msg: M, sig: &HybridSignature) -> Self {
        msg.set_ed25519_sig(*sig.ed25519());
        let mut ml_dsa = Box::new([0u8; ML_DSA_65_SIG_LEN]);
        ml_dsa.copy_from_slice(sig.ml_dsa());
        Self { msg, ml_dsa }
    }

    /// Both halves as one [`HybridSignature`].
    pub fn signature(&self) -> HybridSignature {
        HybridSignature::from_parts(*self.msg.ed25519_sig(), self.ml_dsa.clone())
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = vec![VERSION, M::HYBRID_KIND as u8];
        self.msg.write_body(&mut w);
        w.bytes(&self.ml_dsa[..]);
        w
    }

    /// Parses the canonical encoding, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let (msg, ml_dsa) = M::read_hybrid(bytes)?;
        Ok(Self { msg, ml_dsa })
    }

    /// The classically signed message a board makes by dropping the ML-DSA half (for tests
    /// and the adversary harness: every verifier refuses it from a hybrid signer).
    pub fn strip(&self) -> M
    where
        M: Clone,
    {
        self.msg.clone()
    }
}
