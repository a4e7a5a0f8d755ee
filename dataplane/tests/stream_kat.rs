//! Known answers for the KID layout, the stream key schedule and the datagram framing of
//! data-plane wire version 2, computed by an independent implementation
//! (`tools/kat/gen_dataplane_kat.py`: Python's hmac/hashlib and the `cryptography` package) and
//! committed as `tests/data/stream-kat.json`. Each vector is checked step by step, then the
//! datagram is opened by a keyring receiver that knows only the key file's fields; both under
//! every built-in crypto provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dataplane::keyring::{EpochKey, Keyring, MeetingConfig, Millis, WorkerKeys};
use dataplane::packet::{self, HEADROOM, Mode};
use dataplane::sframe::{self, CipherSuite, KeyMaterial, derive_secrets_with_provider};
use dataplane::stream_key::{StreamId, stream_base_key_with_provider};
use serde::Deserialize;
use zeroize::Zeroizing;

#[path = "common/providers.rs"]
mod common;
use common::providers;

#[derive(Deserialize)]
struct File {
    wire_version: u32,
    suite: u16,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    meeting_key: String,
    meeting_id: String,
    meeting_uuid: String,
    sender_id: String,
    sender_slot: u32,
    sender_instance: u64,
    stream_index: u8,
    mk_seq: u32,
    ctr: u64,
    plaintext: String,
    kid: String,
    stream_base_key: String,
    sframe_key: String,
    sframe_salt: String,
    nonce: String,
    datagram: String,
}

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

fn load() -> File {
    let text = include_str!("data/stream-kat.json");
    let file: File = serde_json::from_str(text).unwrap();
    assert_eq!(file.wire_version, 2);
    assert_eq!(file.suite, CipherSuite::Aes256GcmSha512_128.id());
    assert!(file.vectors.len() >= 6);
    file
}

#[test]
fn every_vector_matches_step_by_step() {
    let suite = CipherSuite::Aes256GcmSha512_128;
    let vectors = load().vectors;
    for (provider, v) in providers()
        .iter()
        .flat_map(|p| vectors.iter().map(move |v| (p, v)))
    {
        let name = &format!("{}: {}", provider.name, v.name);
        let stream = StreamId {
            sender_slot: v.sender_slot,
            sender_instance: v.sender_instance,
            stream_index: v.stream_index,
        };
        let kid = u64::from_str_radix(&v.kid, 16).unwrap();
        assert_eq!(stream.kid(), Ok(kid), "{name}: KID");
        assert_eq!(StreamId::from_kid(kid), stream, "{name}: KID split");

        let mk: [u8; 32] = bytes(&v.meeting_key).try_into().unwrap();
        let base = stream_base_key_with_provider(
            provider,
            &mk,
            &bytes(&v.meeting_id),
            &bytes(&v.meeting_uuid),
            &bytes(&v.sender_id),
            v.stream_index,
        )
        .unwrap();
        assert_eq!(base.to_vec(), bytes(&v.stream_base_key), "{name}: base key");

        let secrets = derive_secrets_with_provider(provider, suite, kid, base.as_ref()).unwrap();
        assert_eq!(secrets.key, bytes(&v.sframe_key), "{name}: sframe_key");
        assert_eq!(
            secrets.salt.to_vec(),
            bytes(&v.sframe_salt),
            "{name}: sframe_salt"
        );
        let material =
            KeyMaterial::derive_with_provider(provider, suite, kid, base.as_ref()).unwrap();
        assert_eq!(
            material.nonce(v.ctr).to_vec(),
            bytes(&v.nonce),
            "{name}: nonce"
        );

        let plaintext = bytes(&v.plaintext);
        let mut buf = vec![0u8; HEADROOM + plaintext.len() + 16];
        buf[HEADROOM..HEADROOM + plaintext.len()].copy_from_slice(&plaintext);
        let sealed = packet::seal_with_counter(
            Mode::Datagram,
            &material,
            kid,
            v.ctr,
            v.mk_seq,
            &mut buf,
            HEADROOM,
            plaintext.len(),
        )
        .unwrap();
        assert_eq!(buf[sealed].to_vec(), bytes(&v.datagram), "{name}: datagram");
    }
}

#[test]
fn a_receiver_opens_every_datagram_from_the_key_file_alone() {
    let vectors = load().vectors;
    for (provider, v) in providers()
        .iter()
        .flat_map(|p| vectors.iter().map(move |v| (p, v)))
    {
        let name = &format!("{}: {}", provider.name, v.name);
        let mk: [u8; 32] = bytes(&v.meeting_key).try_into().unwrap();
        let config = MeetingConfig {
            meeting_id: bytes(&v.meeting_id),
            meeting_uuid: bytes(&v.meeting_uuid),
            // A receive-only peer: its own slot has no room in a KID.
            own_slot: u32::MAX,
            suite: CipherSuite::Aes256GcmSha512_128,
        };
        let ring = Keyring::with_provider(config, provider);
        ring.install(
            EpochKey {
                mk_seq: v.mk_seq,
                meeting_key: Zeroizing::new(mk),
                roster: BTreeMap::from([(v.sender_slot, bytes(&v.sender_id))]),
                activate_at: Millis(0),
            },
            Millis(0),
        )
        .unwrap();
        let mut wire = bytes(&v.datagram);
        let opened = WorkerKeys::new(Mode::Datagram).open(&ring.load(), Millis(0), &mut wire);
        if v.stream_index == 0 {
            let range = opened.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(wire[range].to_vec(), bytes(&v.plaintext), "{name}");
        } else {
            // Datagram mode has only stream 0: any other is refused before any derivation.
            let kid = u64::from_str_radix(&v.kid, 16).unwrap();
            assert_eq!(opened, Err(sframe::Error::UnknownKid(kid).into()), "{name}");
        }
    }
}
