#!/usr/bin/env python3
"""Known answers for keyctl revisions 4 and 5 (hybrid signatures on the wire, the list's hybrid entries), independently of the Rust code.

docs/PROTOCOL.md, "Hybrid signatures on the wire": a hybrid identity's binding (kind 0x0B),
its hybrid-signed announcement (0x1A), a hybrid leader's list link (0x1B) and heartbeat
(0x1C), each encoded here byte by byte from the spec, signed with libsodium (PyNaCl) and
dilithium-py's ML-DSA-65 with a fixed rnd, under the hybrid contexts:

  m       = SHA256(ctx) || SHA256(msg)                       whitepaper 3.5.1, hashlib
  sig_ed  = crypto_sign_detached(m, ISK)                     libsodium
  sig_pq  = ML-DSA-65.Sign_internal(sk, 0x00 || 0x00 || m, rnd)   FIPS 204 alg. 7, ctx = ""
  Hybrid message = 0x01 || hybrid kind || classical body (signature field = sig_ed) || sig_pq

The identity is the one `HybridSigningKey::from_ed25519_seed` makes: the Ed25519 pair of
the seed, and the ML-DSA-65 pair of xi = SHA256("Veil-1-KDF-HybridIdentity" || seed)
(ML-DSA.KeyGen_internal, dilithium-py key_derive). Also written: the announcement stripped of
its ML-DSA half (kind 0x10, the same body), which a verifier must refuse as a classical
signature from a hybrid identity, and the leader's hybrid security code.

Revision 5 (docs/PROTOCOL.md, "LPL operations"): the leader's list records a hybrid member's
ML-DSA identity, SHA256(pk_ML-DSA). Written: a hybrid link post of an `AddHybrid` (tag 0x09:
the `Add` fields, then the 32-byte id) and of the `SnapshotHybrid` (tag 0x0A: each roster
entry followed by a presence byte and, when 1, the id) that follows it in the same chain.

Writes JSON (stdout, or --out), byte strings in lower-case hex.

Usage:  pip install pynacl dilithium-py==1.5.1
        python3 tools/kat/gen_pq_auth_kat.py --out keyctl/tests/data/pq-auth-kat.json
"""

import argparse
import struct
import sys

from nacl import bindings as b
from dilithium_py.ml_dsa import ML_DSA_65

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from gen_keyctl_kat import emit, fixed, sha256  # noqa: E402, the same labels-to-bytes

CTX_HYBRID_BINDING = b"Zoombase-1-ClientOnly-Sig-Hybrid-EncryptionKeyAnnouncement"
CTX_HYBRID_LPL = b"Zoombase1-ClientOnly-Sig-Hybrid-LeaderParticipantList"
CTX_SECURITY_CODE_HYBRID = b"Veil-1-MAC-HybridSecurityCode"
KDF_HYBRID_IDENTITY = b"Veil-1-KDF-HybridIdentity"


def lp(x: bytes) -> bytes:
    return struct.pack(">H", len(x)) + x


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def u64(v: int) -> bytes:
    return struct.pack(">Q", v)


def sign(keys: tuple, ctx: bytes, msg: bytes, rnd: bytes):
    """Both halves by keys = (ivk, isk, pk, sk) over (ctx, msg), each checked to verify."""
    ivk, isk, pk, sk = keys
    m = sha256(ctx) + sha256(msg)
    sig_ed = b.crypto_sign(m, isk)[:64]  # combined mode: sig || m
    assert b.crypto_sign_open(sig_ed + m, ivk) == m
    sig_pq = ML_DSA_65._sign_internal(sk, bytes([0, 0]) + m, rnd)
    assert len(sig_pq) == 3309
    assert ML_DSA_65.verify(pk, m, sig_pq, ctx=b"")
    return sig_ed, sig_pq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write here instead of stdout")
    args = ap.parse_args()

    seed = fixed("pq-auth/ed25519", 32)
    ivk, isk = b.crypto_sign_seed_keypair(seed)
    xi = sha256(KDF_HYBRID_IDENTITY + seed)
    pk_mldsa, sk_mldsa = ML_DSA_65.key_derive(xi)
    assert len(pk_mldsa) == 1952
    keys = (ivk, isk, pk_mldsa, sk_mldsa)

    meeting = lp(b"m") + lp(b"u")
    participant = lp(b"alice") + lp(b"laptop")
    pk_x25519 = fixed("pq-auth/x25519", 32)
    # ek = ByteEncode_12(t) || rho with every coefficient of t below q = 3329 (FIPS 203 7.2):
    # 384 groups of 3 bytes, each two 12-bit coefficients.
    coeffs = [int.from_bytes(fixed(f"pq-auth/ek/{i}", 2), "big") % 3329 for i in range(768)]
    t = b"".join(
        bytes([a & 0xFF, (a >> 8) | ((c & 0x0F) << 4), c >> 4])
        for a, c in zip(coeffs[0::2], coeffs[1::2])
    )
    ek = t + fixed("pq-auth/ek/rho", 32)
    assert len(ek) == 1184
    policy = 2
    binding = (bytes([0x01, 0x0B]) + meeting + participant + ivk + pk_x25519 + bytes([policy])
               + ek + pk_mldsa)
    assert len(binding) == 2 + 6 + 15 + 32 + 32 + 1 + 1184 + 1952 == 3224

    rnd_ann = fixed("pq-auth/rnd/announcement", 32)
    ed, pq = sign(keys, CTX_HYBRID_BINDING, binding, rnd_ann)
    name = lp(b"Alice")
    body = binding + ed + name + lp(b"")
    announcement = bytes([0x01, 0x1A]) + body + pq
    stripped = bytes([0x01, 0x10]) + body

    def link_post(v: int, prev: bytes, op: bytes, label: str) -> dict:
        """The LplLink (0x04) of op at v after prev, hybrid-signed by the leader (0x1B)."""
        link = bytes([0x01, 0x04]) + meeting + u64(v) + prev + op
        rnd = fixed(f"pq-auth/rnd/{label}", 32)
        ed_l, pq_l = sign(keys, CTX_HYBRID_LPL, link, rnd)
        return {"link": link.hex(), "rnd": rnd.hex(),
                "bytes": (bytes([0x01, 0x1B]) + link + ed_l + pq_l).hex()}

    add = (bytes([0x01]) + u32(0) + participant + ivk + sha256(binding) + name)
    classical_add = link_post(1, bytes(32), add, "link")
    link = bytes.fromhex(classical_add["link"])

    # Revision 5: the same Add as the list records a hybrid member (tag 0x09), then a locked
    # SnapshotHybrid (tag 0x0A) of alice (present, hybrid) and bob (left once, classical).
    ml_dsa_id = sha256(pk_mldsa)
    add_hybrid = link_post(1, bytes(32), bytes([0x09]) + add[1:] + ml_dsa_id, "add-hybrid")
    bob = lp(b"bob") + lp(b"phone")
    entries = [
        (u32(0) + participant + ivk + sha256(binding) + name + bytes([1]) + struct.pack(">H", 0)
         + bytes([1]) + ml_dsa_id),
        (u32(1) + bob + fixed("pq-auth/bob-ivk", 32) + bytes(32) + lp(b"Bob") + bytes([2])
         + struct.pack(">H", 1) + bytes([0])),
    ]
    snapshot = (bytes([0x0A, 0x01]) + u32(2) + struct.pack(">H", len(entries))
                + b"".join(entries))
    snapshot_hybrid = link_post(2, sha256(bytes.fromhex(add_hybrid["link"])), snapshot,
                                "snapshot-hybrid")

    fields = sha256(link) + u64(1) + u64(1) + u32(1) + bytes(32) + u64(1_700_000_000_000)
    heartbeat_input = bytes([0x01, 0x05]) + binding + fields
    h = sha256(heartbeat_input)
    rnd_hb = fixed("pq-auth/rnd/heartbeat", 32)
    ed_h, pq_h = sign(keys, CTX_HYBRID_LPL, h, rnd_hb)
    heartbeat = bytes([0x01, 0x1C]) + fields + ed_h + pq_h

    code_hash = sha256(sha256(CTX_SECURITY_CODE_HYBRID) + sha256(ivk) + sha256(pk_mldsa))
    code = str(int.from_bytes(code_hash, "big") % 10**39).zfill(39)

    doc = {
        "generator": "tools/kat/gen_pq_auth_kat.py",
        "identity": {"ed25519_seed": seed.hex(), "ivk": ivk.hex(), "mldsa_seed": xi.hex(),
                     "mldsa_pk": pk_mldsa.hex(), "security_code": code},
        "binding": binding.hex(),
        "announcement": {"rnd": rnd_ann.hex(), "bytes": announcement.hex(),
                         "stripped": stripped.hex()},
        "link_post": classical_add,
        "heartbeat": {"input": heartbeat_input.hex(), "h": h.hex(), "rnd": rnd_hb.hex(),
                      "bytes": heartbeat.hex()},
        "add_hybrid": add_hybrid,
        "snapshot_hybrid": snapshot_hybrid,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
