//! `--identity PATH`: the device's long-term identity key (whitepaper 3.11), kept in a keyctl
//! identity file wrapped (CtE1) under a key-wrapping key (KWK).
//!
//! The KWK comes from the environment variable [`KWK_ENV`] (64 hex digits) if set, else from
//! the file `PATH.kwk` beside the identity (64 hex digits). If neither the identity nor the
//! KWK exists, both are created: a fresh identity and a random KWK in `PATH.kwk`. A KWK beside
//! the identity protects nothing against whoever reads the directory, so using one logs a
//! warning; keep the KWK elsewhere (the variable) where the disk is not trusted.
//!
//! Both files are created mode 0600 (at `open`, so they are never readable by others, whatever
//! the umask), and neither is used while the group or others can access it: the error names
//! the file and the fix (`chmod 600 PATH`). The mode is checked on the opened file, so a swap
//! between the check and the read cannot slip another file in.
//! Without `--identity` the sidecar uses a fresh identity for this run only.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use keyctl::crypto::SigningKey;
use keyctl::identity::{IdentityError, open_identity, seal_identity};
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
    /// The identity or KWK file is open to the group or others: whoever can read both holds
    /// the identity key (whitepaper 3.11 keeps it on the device, for its owner only).
    #[error(
        "{path} is accessible by group or others (mode {mode:04o}); refusing to use it: run `chmod 600 {path}`",
        path = path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Permission bits that let anyone but the owner near the file.
const NOT_OWNER: u32 = 0o077;

/// Longest identity file read (a real one is about 150 bytes).
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// Longest KWK file read (64 hex digits and a newline, with room for whitespace).
const MAX_KWK_FILE: u64 = 1024;

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

/// Opens `path` for reading, refusing it when the group or others may access it. The mode is
/// read from the open descriptor, the one the caller then reads.
fn open_private(path: &Path) -> Result<File, IdentityFileError> {
    let io = |error| IdentityFileError::Io {
        path: path.to_owned(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o7777;
    if mode & NOT_OWNER != 0 {
        return Err(IdentityFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(file)
}

/// Reads at most `max` bytes of an owner-only file into `buf`.
fn read_private(path: &Path, max: u64, buf: &mut Vec<u8>) -> Result<(), IdentityFileError> {
    open_private(path)?
        .take(max)
        .read_to_end(buf)
        .map(drop)
        .map_err(|error| IdentityFileError::Io {
            path: path.to_owned(),
            error,
        })
}

/// Creates `path` (it must not exist) with mode 0600 from the start and writes `bytes`.
fn create_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityFileError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|error| IdentityFileError::Io {
            path: path.to_owned(),
            error,
        })
}

/// The KWK from the environment or the file beside `identity`, if either exists.
fn find_kwk(identity: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, IdentityFileError> {
    if let Ok(text) = std::env::var(KWK_ENV) {
        let text = Zeroizing::new(text);
        return parse_kwk(&text, &format!("${KWK_ENV}")).map(Some);
    }
    let path = kwk_path(identity);
    // Capacity up front, so the secret is never copied into a reallocation left unzeroized.
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(MAX_KWK_FILE).unwrap_or(1024) + 1,
    ));
    match read_private(&path, MAX_KWK_FILE, &mut bytes) {
        Ok(()) => {}
        Err(IdentityFileError::Io { error, .. })
            if error.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    tracing::warn!(
        kwk = %path.display(),
        "the identity's key-wrapping key is read from the file beside it: anyone who can read \
         that directory can unwrap the identity; set ${KWK_ENV} (64 hex digits) and remove the \
         file to keep the KWK elsewhere"
    );
    let text = core::str::from_utf8(&bytes)
        .map_err(|_| IdentityFileError::BadKwk(path.display().to_string()))?;
    parse_kwk(text, &path.display().to_string()).map(Some)
}

/// Loads the identity at `path`, creating it (and its KWK file, unless the environment
/// provides the KWK) when it does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, IdentityFileError> {
    let identity_error = |error| IdentityFileError::Identity {
        path: path.to_owned(),
        error,
    };
    if path.exists() {
        // The identity's own mode first: a readable identity is refused even when the KWK
        // comes from the environment.
        let mut bytes = Vec::new();
        read_private(path, MAX_IDENTITY_FILE, &mut bytes)?;
        let kwk = find_kwk(path)?.ok_or_else(|| IdentityFileError::NoKwk {
            identity: path.to_owned(),
            kwk: kwk_path(path),
        })?;
        return open_identity(&kwk, &bytes).map_err(identity_error);
    }
    let mut rng = OsRng::new();
    let kwk = match find_kwk(path)? {
        Some(kwk) => kwk,
        None => {
            let mut kwk = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(kwk.as_mut()).map_err(|_| IdentityFileError::Rng)?;
            let kwk_file = kwk_path(path);
            let text = Zeroizing::new(hex::encode(kwk.as_ref()));
            create_private(&kwk_file, text.as_bytes())?;
            tracing::warn!(
                kwk = %kwk_file.display(),
                "created a key-wrapping key beside the identity: anyone who can read that \
                 directory can unwrap the identity; set ${KWK_ENV} to keep it elsewhere"
            );
            kwk
        }
    };
    let key = SigningKey::generate(&mut rng).map_err(|_| IdentityFileError::Rng)?;
    let bytes = seal_identity(&mut rng, &kwk, &key).map_err(identity_error)?;
    create_private(path, &bytes)?;
    tracing::info!(identity = %path.display(), "created a new identity");
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A fresh directory per test (tests run in parallel).
    fn dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "veil-identity-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn created_then_loaded_is_the_same_key_and_a_missing_kwk_is_named() {
        let path = dir("roundtrip").join("me.identity");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.verifying_key(), again.verifying_key());
        std::fs::remove_file(kwk_path(&path)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::NoKwk { .. })
        ));
        write_private(&kwk_path(&path), b"zz");
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::BadKwk(_))
        ));
        std::fs::remove_file(kwk_path(&path)).unwrap();
        write_private(&kwk_path(&path), hex::encode([7u8; 32]).as_bytes());
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityFileError::Identity { .. })
        ));
    }

    fn write_private(path: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(bytes))
            .unwrap();
    }

    #[test]
    fn the_identity_and_its_kwk_are_created_owner_only_whatever_the_umask() {
        // The default umask (022) would leave both 0644.
        let path = dir("mode").join("me.identity");
        load_or_create(&path).unwrap();
        assert_eq!(mode(&path), 0o600, "identity file mode");
        assert_eq!(mode(&kwk_path(&path)), 0o600, "KWK file mode");
    }

    #[test]
    fn a_group_or_world_readable_identity_is_refused_naming_the_file_and_the_fix() {
        for bad in [0o640, 0o604, 0o644, 0o660] {
            let path = dir("open-identity").join("me.identity");
            let key = load_or_create(&path).unwrap();
            chmod(&path, bad);
            let err = load_or_create(&path).map(|_| ()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&path.display().to_string())
                    && text.contains(&format!("chmod 600 {}", path.display())),
                "{bad:o}: {text}"
            );
            assert!(
                matches!(err, IdentityFileError::Permissions { .. }),
                "{err:?}"
            );
            chmod(&path, 0o600);
            let again = load_or_create(&path).unwrap();
            assert_eq!(key.verifying_key(), again.verifying_key());
        }
    }

    #[test]
    fn a_group_or_world_readable_kwk_file_is_refused_naming_the_file_and_the_fix() {
        let path = dir("open-kwk").join("me.identity");
        load_or_create(&path).unwrap();
        let kwk = kwk_path(&path);
        chmod(&kwk, 0o644);
        let err = load_or_create(&path).map(|_| ()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", kwk.display())),
            "{text}"
        );
        assert!(
            matches!(err, IdentityFileError::Permissions { .. }),
            "{err:?}"
        );
    }

    /// Collects what a test logs.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let log = Log::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(log.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_kwk_read_from_beside_the_identity_is_warned_about() {
        let path = dir("warn").join("me.identity");
        load_or_create(&path).unwrap();
        let log = logged(|| {
            load_or_create(&path).unwrap();
        });
        let line = log
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&kwk_path(&path).display().to_string()))
            .unwrap_or_else(|| panic!("no warning naming the KWK file:\n{log}"));
        assert!(
            line.contains(KWK_ENV),
            "the warning names the alternative: {line}"
        );
    }

    #[test]
    fn help_names_where_the_kwk_is_read_from() {
        use clap::Args as _;
        let mut cmd = super::super::SidecarArgs::augment_args(clap::Command::new("sidecar"));
        let help = cmd.render_long_help().to_string();
        for words in [KWK_ENV, "PATH.kwk BESIDE the identity", "chmod 600"] {
            assert!(help.contains(words), "--help lacks {words}:\n{help}");
        }
    }
}
