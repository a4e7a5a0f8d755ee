//! The signed key binding (whitepaper 3.7.2) and the announcement that carries it.

use super::codec::{Reader, Writer};
use super::hybrid::Signed;
use super::ids::{Id, MAX_ID_LEN, MeetingRef, ParticipantId};
use super::{Field, Kind, VERSION, WireError, encoding, parse_version};
use crate::crypto::hybrid::{BoxPublic, ML_KEM_768_EK_LEN, check_encapsulation_key};
use crate::crypto::hybrid_sig::{HybridSignature, HybridVerifyingKey, ML_DSA_65_PK_LEN};
use crate::crypto::{self, CTX_SIG_KEY_ANNOUNCEMENT, SigningKey};

/// Whether a meeting delivers its key with the v4.6 hybrid box (issue 16). A participant's
/// own setting decides whether it has an ML-KEM-768 key at all; the leader's, which its signed
/// binding carries, is the meeting's policy (docs/PROTOCOL.md, "Post-quantum key delivery").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PqPolicy {
    /// No ML-KEM-768 key: a classical binding, classical boxes only.
    Off,
    /// An ML-KEM-768 key; as leader, the hybrid box for every participant whose binding
    /// carries one and the classical box for the others.
    #[default]
    Preferred,
    /// An ML-KEM-768 key; as leader, participants without one are refused; as participant,
    /// keys are taken only from a leader whose binding says `Required`.
    Required,
}

impl PqPolicy {
    /// The byte a hybrid binding carries: 1 preferred, 2 required (`Off` has no hybrid
    /// binding, so no byte).
    fn to_byte(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Preferred => 1,
            Self::Required => 2,
        }
    }

    fn from_byte(b: u8) -> Result<Self, WireError> {
        match b {
            1 => Ok(Self::Preferred),
            2 => Ok(Self::Required),
            other => Err(WireError::UnknownPqPolicy(other)),
        }
    }

    /// Every policy, weakest first.
    pub const ALL: [Self; 3] = [Self::Off, Self::Preferred, Self::Required];

    /// The policy named `name` as [`PqPolicy::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The name used on command lines and in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Preferred => "preferred",
            Self::Required => "required",
        }
    }
}

/// The post-quantum half of a binding (revision 3): the participant's ML-KEM-768
/// encapsulation key and its policy (never `Off`).
#[derive(Clone, PartialEq, Eq)]
pub struct PqKey {
    /// The signer's policy: [`PqPolicy::Preferred`] or [`PqPolicy::Required`]; the leader's
    /// is the meeting's.
    pub policy: PqPolicy,
    /// The ML-KEM-768 encapsulation key `ek` (FIPS 203), 1,184 bytes.
    pub mlkem: Box<[u8; ML_KEM_768_EK_LEN]>,
    /// The ML-DSA-65 public key (FIPS 204 `pkEncode`, 1,952 bytes) of a hybrid identity
    /// (revision 4, binding kind 0x0B): its holder signs with Ed25519 and ML-DSA-65, and
    /// the policy covers authentication too.
    pub ml_dsa: Option<Box<[u8; ML_DSA_65_PK_LEN]>>,
}

impl core::fmt::Debug for PqKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PqKey")
            .field("policy", &self.policy)
            .field("mlkem_head", &crypto::HexBytes(&self.mlkem[..8]))
            .field(
                "ml_dsa_head",
                &self.ml_dsa.as_ref().map(|k| crypto::HexBytes(&k[..8])),
            )
            .finish()
    }
}

/// `Binding_i = meetingID || meetingUUID || userID || deviceID || IVK_i || pk_i`
/// (whitepaper 3.7.2 step 3), canonically encoded; with an ML-KEM-768 key
/// (v4.6 `Box.KeyGen`'s `pk_kyber`), the hybrid binding of kind 0x0A, which appends the
/// policy byte and `ek`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The meeting instance.
    pub meeting: MeetingRef,
    /// The participant `i` and its device.
    pub participant: ParticipantId,
    /// The participant's long-term Ed25519 verification key `IVK_i`.
    pub ivk: [u8; 32],
    /// The participant's ephemeral X25519 box public key `pk_i` (with an ML-KEM key, the
    /// X25519 half of its hybrid key pair).
    pub pk: [u8; 32],
    /// The ML-KEM-768 half of the participant's hybrid key, when it has one (revision 3).
    pub pq: Option<PqKey>,
}

impl Binding {
    /// The kind byte: [`Kind::Binding`], [`Kind::HybridBinding`] with an ML-KEM key, or
    /// [`Kind::HybridAuthBinding`] with an ML-DSA key too.
    pub fn kind(&self) -> Kind {
        match &self.pq {
            None => Kind::Binding,
            Some(PqKey { ml_dsa: None, .. }) => Kind::HybridBinding,
            Some(PqKey {
                ml_dsa: Some(_), ..
            }) => Kind::HybridAuthBinding,
        }
    }

    /// The canonical encoding: version, kind, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = vec![VERSION, self.kind() as u8];
        self.meeting.emit(&mut w);
        self.participant.emit(&mut w);
        w.bytes(&self.ivk);
        w.bytes(&self.pk);
        if let Some(pq) = &self.pq {
            w.u8(pq.policy.to_byte());
            w.bytes(&pq.mlkem[..]);
            if let Some(ml_dsa) = &pq.ml_dsa {
                w.bytes(&ml_dsa[..]);
            }
        }
        w
    }

    /// Parses the canonical encoding of either kind, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let b = Self::parse_nested(&mut r)?;
        r.finish()?;
        Ok(b)
    }

    /// Parses a binding's full encoding, inline: kind 0x01, or 0x0A whose policy byte must
    /// be 1 or 2 (`UnknownPqPolicy`) and whose `ek` must pass FIPS 203 7.2's modulus check
    /// (`BadMlKemKey`), so a binding that decodes is one the hybrid box accepts.
    pub(crate) fn parse_nested(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let kind = parse_version(r)?;
        let (hybrid, auth) = match kind {
            k if k == Kind::Binding as u8 => (false, false),
            k if k == Kind::HybridBinding as u8 => (true, false),
            k if k == Kind::HybridAuthBinding as u8 => (true, true),
            other => return Err(WireError::UnexpectedKind(other)),
        };
        let meeting = MeetingRef::parse(r)?;
        let participant = ParticipantId::parse(r)?;
        let ivk = r.array()?;
        let pk = r.array()?;
        let pq = if hybrid {
            let policy = PqPolicy::from_byte(r.u8()?)?;
            let mlkem: [u8; ML_KEM_768_EK_LEN] = r.array()?;
            check_encapsulation_key(&mlkem).map_err(|_| WireError::BadMlKemKey)?;
            // Any 1,952 bytes decode as an ML-DSA-65 key (FIPS 204 algorithm 23).
            let ml_dsa = if auth {
                Some(Box::new(r.array()?))
            } else {
                None
            };
            Some(PqKey {
                policy,
                mlkem: Box::new(mlkem),
                ml_dsa,
            })
        } else {
            None
        };
        Ok(Self {
            meeting,
            participant,
            ivk,
            pk,
            pq,
        })
    }

    /// The policy the binding states: its [`PqKey`]'s, or [`PqPolicy::Off`] without one.
    pub fn pq_policy(&self) -> PqPolicy {
        self.pq.as_ref().map_or(PqPolicy::Off, |k| k.policy)
    }

    /// The hybrid public key `(pk, ek)` for v4.6's `Box.Enc`, when the binding has `ek`.
    pub fn box_public(&self) -> Option<BoxPublic> {
        self.pq.as_ref().map(|k| BoxPublic {
            x25519: self.pk,
            mlkem: k.mlkem.to_vec(),
        })
    }

    /// The hybrid identity key `(IVK, pk_ML-DSA)` of a kind 0x0B binding (revision 4).
    pub fn hybrid_key(&self) -> Option<HybridVerifyingKey> {
        let ml_dsa = self.pq.as_ref()?.ml_dsa.as_ref()?;
        HybridVerifyingKey::new(self.ivk, &ml_dsa[..]).ok()
    }

    /// `SHA256(pk_ML-DSA)` of a kind 0x0B binding: the hybrid identity's ML-DSA half as the
    /// list records it (revision 5, `AddHybrid`); none for a classical identity.
    pub fn ml_dsa_id(&self) -> Option<[u8; 32]> {
        let key = self.pq.as_ref()?.ml_dsa.as_ref()?;
        Some(crypto::sha256(&key[..]))
    }

    /// Whether the binding's holder signs hybrid (a kind 0x0B binding).
    pub fn hybrid_auth(&self) -> bool {
        self.pq.as_ref().is_some_and(|k| k.ml_dsa.is_some())
    }

    /// Checks a signature by this binding's holder over `msg`, as message type `M` carries
    /// it: `ed25519` its signature field and `ml_dsa` the ML-DSA-65 half when it came as
    /// [`super::Hybrid`]. A holder whose binding is hybrid (0x0B) must sign hybrid, under
    /// `M::HYBRID_CONTEXT`; any other holder classically, under `M::CONTEXT`.
    ///
    /// A message without its ML-DSA half from a hybrid holder is
    /// [`SigRefusal::ClassicalFromHybrid`] when its Ed25519 signature is the holder's (under
    /// either context: the ML-DSA half was stripped by the board, or the holder or whoever
    /// broke its Ed25519 key signed classically), [`SigRefusal::Forged`] otherwise, as is
    /// every signature that does not verify.
    pub fn check_signed<M: Signed>(
        &self,
        msg: &[u8],
        ed25519: &[u8; 64],
        ml_dsa: Option<&[u8]>,
    ) -> Result<(), SigRefusal> {
        match (self.hybrid_key(), ml_dsa) {
            (Some(key), Some(pq)) => {
                let sig = HybridSignature::new(*ed25519, pq).map_err(|_| SigRefusal::Forged)?;
                key.verify(&sig, M::HYBRID_CONTEXT, msg)
                    .map_err(|_| SigRefusal::Forged)
            }
            (Some(_), None) => {
                let holders = crypto::verify(&self.ivk, ed25519, M::HYBRID_CONTEXT, msg)
                    || crypto::verify(&self.ivk, ed25519, M::CONTEXT, msg);
                Err(if holders {
                    SigRefusal::ClassicalFromHybrid
                } else {
                    SigRefusal::Forged
                })
            }
            (None, Some(_)) => Err(SigRefusal::Forged),
            (None, None) => {
                if crypto::verify(&self.ivk, ed25519, M::CONTEXT, msg) {
                    Ok(())
                } else {
                    Err(SigRefusal::Forged)
                }
            }
        }
    }

    /// `Sig_i = Sign.Sign(ISK_i, "Zoombase-1-ClientOnly-Sig-EncryptionKeyAnnouncement",
    /// Binding_i)` (whitepaper 3.7.2 steps 4-5).
    pub fn sign(&self, isk: &SigningKey) -> [u8; 64] {
        isk.sign(CTX_SIG_KEY_ANNOUNCEMENT, &self.to_bytes())
    }

    /// Checks `Sig_i` against the binding's own IVK (whitepaper 3.7.4 step 5).
    pub fn verify(&self, sig: &[u8; 64]) -> bool {
        crypto::verify(&self.ivk, sig, CTX_SIG_KEY_ANNOUNCEMENT, &self.to_bytes())
    }

    /// `SHA256(Binding_i)`, which the LPL records for members (whitepaper 3.7.7).
    pub fn hash(&self) -> [u8; 32] {
        crypto::sha256(&self.to_bytes())
    }
}

/// Why [`Binding::check_signed`] refused a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigRefusal {
    /// The signature does not verify (anyone can post such bytes).
    Forged,
    /// A classical signature from a holder whose binding is hybrid: made by the holder's
    /// Ed25519 key, so either a board stripped the ML-DSA half or the holder (or whoever broke
    /// its Ed25519 key) signed classically. Refused: a downgrade.
    ClassicalFromHybrid,
}

/// A participant's post to the board on joining (whitepaper 3.7.2 step 7): its binding,
/// the signature over it, the display name the server shows, and an optional proof that the
/// poster holds an invite (ephemeral identities, `crate::meeting::invite`; revision 2: the
/// invite itself never crosses the board).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAnnouncement {
    /// The binding.
    pub binding: Binding,
    /// `Sig_i` over the binding.
    pub sig: [u8; 64],
    /// Display name (server-provided, untrusted, at most 256 bytes).
    pub display_name: Id,
    /// `HMAC-SHA256(invite, lp("Veil-1-MAC-InviteProof") || Binding)`, when the meeting
    /// requires invites.
    pub invite_proof: Option<[u8; 32]>,
}

impl KeyAnnouncement {
    pub(crate) fn emit_body(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.binding.to_bytes());
        w.bytes(&self.sig);
        self.display_name.emit(w);
        match &self.invite_proof {
            Some(inv) => w.lp(inv),
            None => w.lp(&[]),
        }
    }

    pub(crate) fn parse_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let binding = Binding::parse_nested(r)?;
        let sig = r.array()?;
        let display_name = Id::parse(r, Field::DisplayName)?;
        let inv = r.lp(Field::Invite, MAX_ID_LEN)?;
        let invite_proof = match inv.len() {
            0 => None,
            32 => {
                let mut a = [0u8; 32];
                a.copy_from_slice(inv);
                Some(a)
            }
            len => {
                return Err(WireError::BadLength {
                    field: Field::Invite,
                    len,
                });
            }
        };
        Ok(Self {
            binding,
            sig,
            display_name,
            invite_proof,
        })
    }
}
encoding!(KeyAnnouncement, Kind::KeyAnnouncement);
