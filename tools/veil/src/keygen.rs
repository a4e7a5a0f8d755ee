//! `veil keygen --psk`: a fresh pre-shared key file on stdout, as `wg genkey` does.

use std::collections::BTreeMap;

use dataplane::psk::PskFile;
use zeroize::Zeroizing;

/// Why no key file could be made.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The OS random source failed.
    #[error("the system random source failed")]
    Random,
    /// Zero slots, or a meeting ID the file cannot hold.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A key file for `meeting` with a random MK and UUID, mkSeqNum 1 and slots `0..slots`.
pub fn psk(meeting: &str, slots: u32) -> Result<PskFile, KeygenError> {
    if slots == 0 || slots > dataplane::stream_key::MAX_SENDER_SLOT + 1 {
        return Err(KeygenError::Invalid("--slots must be 1 to 65536"));
    }
    if meeting.is_empty() || meeting.len() > usize::from(u16::MAX) {
        return Err(KeygenError::Invalid("--meeting must be 1 to 65535 bytes"));
    }
    let mut meeting_key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(meeting_key.as_mut()).map_err(|_| KeygenError::Random)?;
    let mut uuid = [0u8; 16];
    aws_lc_rs::rand::fill(&mut uuid).map_err(|_| KeygenError::Random)?;
    Ok(PskFile {
        meeting_id: meeting.as_bytes().to_vec(),
        meeting_uuid: hex::encode(uuid).into_bytes(),
        mk_seq: 1,
        meeting_key,
        roster: (0..slots)
            .map(|slot| (slot, format!("sender-{slot}").into_bytes()))
            .collect::<BTreeMap<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_file_parses_and_keys_differ() {
        let a = psk("lab", 3).unwrap();
        let parsed = PskFile::parse(&a.to_toml()).unwrap();
        assert_eq!(parsed, a);
        assert_eq!((a.mk_seq, a.roster.len()), (1, 3));
        assert_eq!(a.roster[&2], b"sender-2");
        let b = psk("lab", 3).unwrap();
        assert_ne!(a.meeting_key, b.meeting_key);
        assert_ne!(a.meeting_uuid, b.meeting_uuid);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(psk("lab", 0).is_err());
        assert!(psk("", 2).is_err());
    }
}
