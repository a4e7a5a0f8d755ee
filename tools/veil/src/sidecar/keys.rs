//! The key file as the sidecar uses it: loaded at start, re-read on SIGHUP (a rotation).

use std::path::Path;

use dataplane::keyring::{Keyring, KeyringError, MeetingConfig, Millis};
use dataplane::psk::{PskError, PskFile};
use dataplane::sframe::CipherSuite;
use zeroize::Zeroizing;

/// How long after a reload the sidecar starts sending with the new key: the peers get this long
/// to reload theirs (whitepaper 3.7.6: senders switch about 2 s after a new key arrives).
pub(crate) const ACTIVATION_DELAY_MS: u64 = 2_000;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Unreadable.
    #[error("cannot read the key file: {0}")]
    Read(#[from] std::io::Error),
    /// Malformed.
    #[error("bad key file: {0}")]
    Parse(#[from] PskError),
    /// This sidecar's slot is not in the roster.
    #[error("--sender-slot {0} is not in the key file's roster")]
    NotInRoster(u32),
    /// A reload named another meeting.
    #[error("the key file now names another meeting; restart to change meetings")]
    OtherMeeting,
    /// The keyring refused the key (mkSeqNum did not grow).
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// Reads and validates a key file for slot `slot`.
pub(crate) fn read(path: &Path, slot: u32) -> Result<PskFile, KeyFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let file = PskFile::parse(&text)?;
    if !file.roster.contains_key(&slot) {
        return Err(KeyFileError::NotInRoster(slot));
    }
    Ok(file)
}

/// The keyring for the meeting of `file`, with its key installed to send at once.
pub(crate) fn keyring(file: &PskFile, slot: u32, now: Millis) -> Result<Keyring, KeyFileError> {
    let keyring = Keyring::new(MeetingConfig {
        meeting_id: file.meeting_id.clone(),
        meeting_uuid: file.meeting_uuid.clone(),
        own_slot: slot,
        suite: CipherSuite::Aes256GcmSha512_128,
    });
    keyring.install(file.epoch_key(now), now)?;
    Ok(keyring)
}

/// Re-reads the key file into `keyring` as a rotation: decrypts at once, sends after
/// [`ACTIVATION_DELAY_MS`]. Returns the new mkSeqNum.
pub(crate) fn reload(
    keyring: &Keyring,
    path: &Path,
    slot: u32,
    now: Millis,
) -> Result<u32, KeyFileError> {
    let file = read(path, slot)?;
    let snapshot = keyring.load();
    let config = snapshot.config();
    if file.meeting_id != config.meeting_id || file.meeting_uuid != config.meeting_uuid {
        return Err(KeyFileError::OtherMeeting);
    }
    keyring.install(file.epoch_key(now + ACTIVATION_DELAY_MS), now)?;
    Ok(file.mk_seq)
}
