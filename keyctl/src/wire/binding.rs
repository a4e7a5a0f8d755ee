//! The signed key binding (whitepaper 3.7.2) and the announcement that carries it.

use super::codec::{Reader, Writer};
use super::ids::{Id, MAX_ID_LEN, MeetingRef, ParticipantId};
use super::{Field, Kind, VERSION, WireError, encoding, parse_version};
use crate::crypto::hybrid::{BoxPublic, ML_KEM_768_EK_LEN, check_encapsulation_key};
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
}

impl core::fmt::Debug for PqKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PqKey")
            .field("policy", &self.policy)
            .field("mlkem_head", &crypto::HexBytes(&self.mlkem[..8]))
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
    /// The kind byte: [`Kind::Binding`], or [`Kind::HybridBinding`] with an ML-KEM key.
    pub fn kind(&self) -> Kind {
        if self.pq.is_some() {
            Kind::HybridBinding
        } else {
            Kind::Binding
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
        let hybrid = match kind {
            k if k == Kind::Binding as u8 => false,
            k if k == Kind::HybridBinding as u8 => true,
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
            Some(PqKey {
                policy,
                mlkem: Box::new(mlkem),
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
