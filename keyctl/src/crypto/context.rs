//! Context strings of the whitepaper, byte for byte.

/// Context of a participant's signed key binding (whitepaper 3.7.2 step 4).
pub const CTX_SIG_KEY_ANNOUNCEMENT: &[u8] = b"Zoombase-1-ClientOnly-Sig-EncryptionKeyAnnouncement";
/// `Context_KDF` of the meeting key box (whitepaper 3.7.4 step 8).
pub const CTX_KDF_MEETING_SEED: &[u8] = b"Zoombase-1-ClientOnly-KDF-KeyMeetingSeed";
/// `Context_cipher` of the meeting key box (whitepaper 3.7.4 step 9).
pub const CTX_CIPHER_MEETING_SEED: &[u8] = b"Zoombase-1-ClientOnly-Sig-EncryptionKeyMeetingSeed";
/// Context of leader participant list signatures and heartbeats (whitepaper 3.7.7; the
/// spec spells it without a dash after "Zoombase").
pub const CTX_SIG_LPL: &[u8] = b"Zoombase1-ClientOnly-Sig-LeaderParticipantList";
/// Context of the meeting leader security code (whitepaper 3.8).
pub const CTX_MAC_SECURITY_CODE: &[u8] = b"Zoombase-1-ClientOnly-MAC-SecurityCode";
/// Context of the security code of a hybrid (Ed25519 + ML-DSA-65) leader identity (Veil;
/// issue 16 part 2, docs/PROTOCOL.md "Hybrid signatures").
pub const CTX_MAC_HYBRID_SECURITY_CODE: &[u8] = b"Veil-1-MAC-HybridSecurityCode";
/// CtE1 associated data when wrapping a long-term secret key (whitepaper 3.11 step 2).
pub const CTX_KDF_SECRET_STORE: &[u8] = b"Zoombase-1-ClientOnly-KDF-SecretStore";
/// Context of a participant's signed liveness nonce post (Veil; v4.6 meetings: liveness).
pub const CTX_SIG_LIVENESS_NONCE: &[u8] = b"Veil-1-Sig-LivenessNonce";
/// Context of a co-host's signed lock or unlock request (Veil; v4.6 meetings: locked meetings).
pub const CTX_SIG_LOCK_REQUEST: &[u8] = b"Veil-1-Sig-LockRequest";
/// Context of the proof that a joiner holds its invite, bound to its binding (Veil;
/// ephemeral identities).
pub const CTX_MAC_INVITE_PROOF: &[u8] = b"Veil-1-MAC-InviteProof";
/// Context of a participant's signed request for a certified key it did not receive (Veil).
pub const CTX_SIG_KEY_REQUEST: &[u8] = b"Veil-1-Sig-KeyRequest";
/// Context of a hybrid (Ed25519 + ML-DSA-65) signature over a binding of kind 0x0B
/// (revision 4): the classical context with `Hybrid-` before its last word, so the Ed25519
/// half of a hybrid signature never verifies as a classical signature of the same bytes.
pub const CTX_SIG_HYBRID_KEY_ANNOUNCEMENT: &[u8] =
    b"Zoombase-1-ClientOnly-Sig-Hybrid-EncryptionKeyAnnouncement";
/// Context of a hybrid leader's signatures over LPL links and heartbeats (revision 4).
pub const CTX_SIG_HYBRID_LPL: &[u8] = b"Zoombase1-ClientOnly-Sig-Hybrid-LeaderParticipantList";
/// Context of a hybrid signature over a liveness nonce post (revision 4).
pub const CTX_SIG_HYBRID_LIVENESS_NONCE: &[u8] = b"Veil-1-Sig-Hybrid-LivenessNonce";
/// Context of a hybrid signature over a co-host's lock request (revision 4).
pub const CTX_SIG_HYBRID_LOCK_REQUEST: &[u8] = b"Veil-1-Sig-Hybrid-LockRequest";
/// Context of a hybrid signature over a key request (revision 4).
pub const CTX_SIG_HYBRID_KEY_REQUEST: &[u8] = b"Veil-1-Sig-Hybrid-KeyRequest";
