//! The CtE1-wrapped identity store.

use keyctl::crypto::SigningKey;
use keyctl::identity::{IdentityError, load, open_identity, save, seal_identity};
use keyctl::rng::OsRng;

#[test]
fn identity_round_trips_and_detects_wrong_key_and_tampering() {
    let mut rng = OsRng::new();
    let key = SigningKey::generate(&mut rng).unwrap();
    let kwk = [7u8; 32];
    let file = seal_identity(&mut rng, &kwk, &key).unwrap();
    let back = open_identity(&kwk, &file).unwrap();
    assert_eq!(back.verifying_key(), key.verifying_key());

    assert!(matches!(
        open_identity(&[8u8; 32], &file),
        Err(IdentityError::WrongKeyOrTampered)
    ));

    let mut tampered = file.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        open_identity(&kwk, &tampered),
        Err(IdentityError::WrongKeyOrTampered)
    ));

    // The commitment sits after the 2-byte header, 32-byte IVK, 2-byte length, 12-byte nonce.
    let mut bad_commit = file.clone();
    bad_commit[2 + 32 + 2 + 12] ^= 1;
    assert!(matches!(
        open_identity(&kwk, &bad_commit),
        Err(IdentityError::CommitmentMismatch)
    ));

    let mut bad_ivk = file.clone();
    bad_ivk[2] ^= 1;
    assert!(matches!(
        open_identity(&kwk, &bad_ivk),
        Err(IdentityError::IvkMismatch)
    ));

    assert!(matches!(
        open_identity(&kwk, &file[..10]),
        Err(IdentityError::Malformed(_))
    ));
    let mut trailing = file.clone();
    trailing.push(0);
    assert!(matches!(
        open_identity(&kwk, &trailing),
        Err(IdentityError::Malformed(_))
    ));
}

#[test]
fn identity_file_helpers() {
    let mut rng = OsRng::new();
    let key = SigningKey::generate(&mut rng).unwrap();
    let kwk = [1u8; 32];
    let dir = std::env::temp_dir().join(format!("keyctl-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("identity.bin");
    save(&path, &seal_identity(&mut rng, &kwk, &key).unwrap()).unwrap();
    assert_eq!(
        load(&path, &kwk).unwrap().verifying_key(),
        key.verifying_key()
    );
    assert!(matches!(
        load(&dir.join("missing"), &kwk),
        Err(IdentityError::Io(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
