//! `--identity PATH`: the device's long-term identity key (whitepaper 3.11), kept in a keyctl
//! identity file wrapped (CtE1) under a key-wrapping key (KWK).
//!
//! The KWK comes from the environment variable [`KWK_ENV`] (64 hex digits) if set, else from
//! the file `PATH.kwk` beside the identity (64 hex digits, mode 0600). If neither the identity
//! nor the KWK exists, both are created: a fresh identity and a random KWK in `PATH.kwk`. Keep
//! the KWK somewhere else than the identity file (the variable) where the disk is not trusted.
//! Without `--identity` the sidecar uses a fresh identity for this run only.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use keyctl::crypto::SigningKey;
use keyctl::identity::{IdentityError, load, save, seal_identity};
use keyctl::rng::OsRng;
use zeroize::Zeroizing;

/// The environment variable that holds the key-wrapping key, as 64 hex digits.
pub const KWK_ENV: &str = "VEIL_IDENTITY_KWK";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityFileError {
    /// The identity file exists, but no KWK was found.
    #[error("{identity} exists but neither ${KWK_ENV} nor {kwk} holds its key-wrapping key")]
    NoKwk {
        /// The identity file.
        identity: PathBuf,
        /// Where the KWK file was looked for.
        kwk: PathBuf,
    },
    /// The KWK is not 64 hex digits.
    #[error("the key-wrapping key (from {0}) is not 64 hex digits")]
    BadKwk(String),
    /// The identity file did not open, or could not be written.
    #[error("identity {path}: {error}")]
    Identity {
        /// The identity file.
        path: PathBuf,
        /// What went wrong.
        error: IdentityError,
    },
    /// Reading or writing the KWK file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// No randomness.
    #[error("the system random source failed")]
    Rng,
}

fn kwk_path(identity: &Path) -> PathBuf {
    let mut name = identity.as_os_str().to_owned();
    name.push(".kwk");
    PathBuf::from(name)
}

fn parse_kwk(text: &str, source: &str) -> Result<Zeroizing<[u8; 32]>, IdentityFileError> {
    let mut kwk = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), kwk.as_mut())
        .map_err(|_| IdentityFileError::BadKwk(source.to_owned()))?;
    Ok(kwk)
}

/// The KWK from the environment or the file beside `identity`, if either exists.
fn find_kwk(identity: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, IdentityFileError> {
    if let Ok(text) = std::env::var(KWK_ENV) {
        let text = Zeroizing::new(text);
        return parse_kwk(&text, &format!("${KWK_ENV}")).map(Some);
    }
    let path = kwk_path(identity);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            parse_kwk(&text, &path.display().to_string()).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(IdentityFileError::Io { path, error }),
    }
}

/// Loads the identity at `path`, creating it (and its KWK file, unless the environment
/// provides the KWK) when it does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, IdentityFileError> {
    let identity_error = |error| IdentityFileError::Identity {
        path: path.to_owned(),
        error,
    };
    if path.exists() {
        let kwk = find_kwk(path)?.ok_or_else(|| IdentityFileError::NoKwk {
            identity: path.to_owned(),
            kwk: kwk_path(path),
        })?;
        return load(path, &kwk).map_err(identity_error);
    }
    let mut rng = OsRng::new();
    let kwk = match find_kwk(path)? {
        Some(kwk) => kwk,
        None => {
            let mut kwk = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(kwk.as_mut()).map_err(|_| IdentityFileError::Rng)?;
            let kwk_file = kwk_path(path);
            let text = Zeroizing::new(hex::encode(kwk.as_ref()));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&kwk_file)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|error| IdentityFileError::Io {
                    path: kwk_file.clone(),
                    error,
                })?;
            tracing::info!(kwk = %kwk_file.display(), "created a key-wrapping key");
            kwk
        }
    };
    let key = SigningKey::generate(&mut rng).map_err(|_| IdentityFileError::Rng)?;
    let bytes = seal_identity(&mut rng, &kwk, &key).map_err(identity_error)?;
    save(path, &bytes).map_err(identity_error)?;
    tracing::info!(identity = %path.display(), "created a new identity");
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn created_then_loaded_is_the_same_key_and_a_missing_kwk_is_named() {
        let dir = std::env::temp_dir().join(format!("veil-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("me.identity");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(kwk_path(&path));
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.verifying_key(), again.verifying_key());
        std::fs::remove_file(kwk_path(&path)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::NoKwk { .. })
        ));
        std::fs::write(kwk_path(&path), "zz").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::BadKwk(_))
        ));
        std::fs::write(kwk_path(&path), hex::encode([7u8; 32])).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::Identity { .. })
        ));
    }
}
