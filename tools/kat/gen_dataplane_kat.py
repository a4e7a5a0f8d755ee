#!/usr/bin/env python3
"""Known answers for the data plane's KID layout, stream key schedule and datagram framing,
computed independently of the Rust code (Python's hmac/hashlib for HKDF, the `cryptography`
package for AES-256-GCM).

Data-plane wire version 2 (docs/PROTOCOL.md, "Stream keys and KIDs"):

    KID             = sender_slot (16 bits) << 48 | sender_instance (40 bits) << 8 | stream_index
    stream_base_key = HKDF-SHA256(salt = "", ikm = MK,
                        info = "Zoombase-1-ClientOnly-KDF-StreamKey" || lp(meetingID)
                               || lp(meetingUUID) || lp(senderID) || u32be(stream_index), L = 32)
    sframe_key      = HKDF-Expand-SHA512(HKDF-Extract-SHA512("", base),
                        "SFrame 1.0 Secret key " || u64be(KID) || u16be(suite), 32)   (RFC 9605 4.4.2)
    sframe_salt     = ... "SFrame 1.0 Secret salt " ..., 12
    nonce           = sframe_salt XOR u96be(CTR)                                       (RFC 9605 4.4.3)
    datagram        = u32be(mkSeqNum) || SFrame header (RFC 9605 4.3, shortest form)
                      || AES-256-GCM(sframe_key, nonce, aad = mkSeqNum || header, plaintext)

Suite 0x0005 (AES_256_GCM_SHA512_128), Veil's default. Every input is fixed, so the output is
identical on every run; regenerating and diffing checks the committed file.

    pip install cryptography
    python3 tools/kat/gen_dataplane_kat.py --out dataplane/tests/data/stream-kat.json
"""

import argparse
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

STREAM_KEY_LABEL = b"Zoombase-1-ClientOnly-KDF-StreamKey"
SUITE = 0x0005
SLOT_BITS, INSTANCE_BITS = 16, 40


def hkdf_extract(hash_fn, salt, ikm):
    if not salt:
        salt = b"\0" * hash_fn().digest_size
    return hmac.new(salt, ikm, hash_fn).digest()


def hkdf_expand(hash_fn, prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_fn).digest()
        out += block
        counter += 1
    return out[:length]


def lp(value):
    return len(value).to_bytes(2, "big") + value


def kid(slot, instance, stream_index):
    assert 0 <= slot < 1 << SLOT_BITS
    assert 0 <= instance < 1 << INSTANCE_BITS
    assert 0 <= stream_index < 256
    return slot << (INSTANCE_BITS + 8) | instance << 8 | stream_index


def stream_base_key(mk, meeting_id, meeting_uuid, sender_id, stream_index):
    info = (STREAM_KEY_LABEL + lp(meeting_id) + lp(meeting_uuid) + lp(sender_id)
            + stream_index.to_bytes(4, "big"))
    return hkdf_expand(hashlib.sha256, hkdf_extract(hashlib.sha256, b"", mk), info, 32)


def sframe_secrets(base_key, kid_value):
    prk = hkdf_extract(hashlib.sha512, b"", base_key)
    tail = kid_value.to_bytes(8, "big") + SUITE.to_bytes(2, "big")
    key = hkdf_expand(hashlib.sha512, prk, b"SFrame 1.0 Secret key " + tail, 32)
    salt = hkdf_expand(hashlib.sha512, prk, b"SFrame 1.0 Secret salt " + tail, 12)
    return key, salt


def sframe_header(kid_value, ctr):
    """RFC 9605 4.3: config byte X|KKK|Y|CCC, then the KID and CTR bytes, shortest form."""
    def field(value):
        if value < 8:
            return False, value, b""
        length = (value.bit_length() + 7) // 8
        return True, length - 1, value.to_bytes(length, "big")

    kid_ext, kid_bits, kid_bytes = field(kid_value)
    ctr_ext, ctr_bits, ctr_bytes = field(ctr)
    config = (0x80 if kid_ext else 0) | kid_bits << 4 | (0x08 if ctr_ext else 0) | ctr_bits
    return bytes([config]) + kid_bytes + ctr_bytes


CASES = [
    # (name, MK byte, meeting ID, UUID, sender ID, slot, instance, stream, mkSeqNum, CTR, plaintext)
    ("first packet, slot 0, instance 0", 0x01, b"lab-1", b"9f0c6b0e2d1a4c57", b"sender-0",
     0, 0, 0, 1, 0, b"hello"),
    ("slot 1, a random-looking instance", 0x42, b"meeting-1", b"uuid-ab", b"alice",
     1, 0x8A_1B2C_3D4E, 0, 7, 7, b"counter 7: still inline"),
    ("a one-byte CTR", 0x42, b"meeting-1", b"uuid-ab", b"alice",
     1, 0x8A_1B2C_3D4E, 0, 7, 8, b"counter 8: one CTR byte"),
    ("a two-byte CTR, another instance", 0x42, b"meeting-1", b"uuid-ab", b"alice",
     1, 0x00_0000_0001, 0, 7, 300, b""),
    ("a large slot and CTR", 0x99, b"m", b"u", b"\x00\x03bob\x00\x02d1",
     40_000, 0x55_5555_5555, 0, 0xFFFF_FFFF, 1 << 40, bytes(range(64))),
    ("every field at its maximum (RTP-mode stream 255)", 0xFF, b"max", b"max-uuid", b"carol",
     (1 << SLOT_BITS) - 1, (1 << INSTANCE_BITS) - 1, 255, 2, 1, b"x"),
]


def vector(case):
    (name, mk_byte, meeting_id, meeting_uuid, sender_id, slot, instance, stream_index,
     mk_seq, ctr, plaintext) = case
    mk = bytes([mk_byte]) * 32
    kid_value = kid(slot, instance, stream_index)
    base = stream_base_key(mk, meeting_id, meeting_uuid, sender_id, stream_index)
    key, salt = sframe_secrets(base, kid_value)
    nonce = bytes(a ^ b for a, b in zip(salt, ctr.to_bytes(12, "big")))
    aad = mk_seq.to_bytes(4, "big") + sframe_header(kid_value, ctr)
    datagram = aad + AESGCM(key).encrypt(nonce, plaintext, aad)
    return {
        "name": name,
        "meeting_key": mk.hex(),
        "meeting_id": meeting_id.hex(),
        "meeting_uuid": meeting_uuid.hex(),
        "sender_id": sender_id.hex(),
        "sender_slot": slot,
        "sender_instance": instance,
        "stream_index": stream_index,
        "mk_seq": mk_seq,
        "ctr": ctr,
        "plaintext": plaintext.hex(),
        "kid": f"{kid_value:016x}",
        "stream_base_key": base.hex(),
        "sframe_key": key.hex(),
        "sframe_salt": salt.hex(),
        "nonce": nonce.hex(),
        "datagram": datagram.hex(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write here instead of stdout")
    args = parser.parse_args()
    text = json.dumps({
        "generator": "tools/kat/gen_dataplane_kat.py",
        "wire_version": 2,
        "suite": SUITE,
        "vectors": [vector(c) for c in CASES],
    }, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
