//! Mutations of a genuine protected packet, shared by the unprotect targets: the fuzzer picks
//! them, [`apply`] performs them on a copy.

use arbitrary::Arbitrary;

#[derive(Debug, Arbitrary)]
pub enum Mutation {
    FlipBit(u16),
    SetByte(u16, u8),
    Truncate(u16),
    Extend(Vec<u8>),
}

/// `genuine` with every mutation applied in order.
pub fn apply(genuine: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut mutated = genuine.to_vec();
    for mutation in mutations {
        match *mutation {
            Mutation::FlipBit(at) if !mutated.is_empty() => {
                let bit = usize::from(at) % (mutated.len() * 8);
                mutated[bit / 8] ^= 1 << (bit % 8);
            }
            Mutation::SetByte(at, value) if !mutated.is_empty() => {
                let len = mutated.len();
                mutated[usize::from(at) % len] = value;
            }
            Mutation::Truncate(to) => mutated.truncate(usize::from(to)),
            Mutation::Extend(ref tail) => mutated.extend_from_slice(tail),
            _ => {}
        }
    }
    mutated
}

/// An RTP header (version 2, payload type 96, SSRC `ssrc_low` in its last byte) in front of
/// `payload`, so RTP-mode cases start from a well-formed packet.
pub fn with_rtp_header(ssrc_low: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, ssrc_low];
    packet.extend_from_slice(payload);
    packet
}
