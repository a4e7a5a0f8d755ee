#!/usr/bin/env python3
"""Known answers for keyctl's v4.6 hybrid box (X25519 + ML-KEM-768), independently of the Rust code.

The whitepaper v4.6 (meetings.tex, "Authenticated Public-Key Encryption") Box.Enc, with the
parameters of issue 16 and docs/PROTOCOL.md ("Hybrid box (v4.6)"):

  K_box = crypto_box_beforenm(pk_R, sk_S)                       libsodium, via PyNaCl
  (K_kem, C_kem) = ML-KEM-768.Encaps_internal(ek_R, m)          kyber-py (FIPS 203 alg. 17)
  CAD = SHA3-256(lp(vk_S) || lp(pk_S) || lp(ek_S) || lp(vk_R) || lp(pk_R) || lp(ek_R))
  S = SHA3-256("Zoombase-1-ClientOnly-KDF-HybridCombiner" || K_kem || K_box || CAD)
  K = HKDF-SHA256(IKM = S, salt = meta, info = ctx_kdf, L = 32)  Python's hmac (RFC 5869)
  D = SHA256(ctx_cipher) || SHA256(meta)
  C = crypto_aead_xchacha20poly1305_ietf_encrypt(msg, D, nonce, K) || nonce || C_kem

lp(x) is a u16 big-endian length then x; vk is an Ed25519 public key (crypto_sign_seed_keypair),
pk an X25519 public key, ek an ML-KEM-768 encapsulation key (1,184 bytes) and dk its FIPS 203
expanded decapsulation key (2,400 bytes, dk_PKE || ek || H(ek) || z) from
ML-KEM.KeyGen_internal(d, z) (FIPS 203 alg. 16). The randomness (nonce, m, d, z) is fixed, so
the output is the same on every run; the Rust test replays nonce then m through its rng.

Writes JSON (stdout, or --out): "parties" (ed25519_seed, vk, x25519_sk, x25519_pk, mlkem_d,
mlkem_z, mlkem_ek, mlkem_dk) and "cases" (sender, receiver as party indices; ctx_kdf,
ctx_cipher, meta, msg, nonce, kem_m; the intermediates k_box, k_kem, c_kem, cad, s, k, d; and
the ciphertext c). Byte strings are lower-case hex.

Usage:  pip install pynacl kyber-py==1.2.0
        python3 tools/kat/gen_hybrid_kat.py --out keyctl/tests/data/hybrid-kat.json
"""

import argparse
import hashlib
import hmac
import sys
from importlib.metadata import version

import nacl
from nacl import bindings as b
from kyber_py.ml_kem import ML_KEM_768

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from gen_keyctl_kat import emit, fixed, lp, sha256  # noqa: E402, the same labels-to-bytes and lp

COMBINER_CONTEXT = b"Zoombase-1-ClientOnly-KDF-HybridCombiner"


def sha3_256(x: bytes) -> bytes:
    return hashlib.sha3_256(x).digest()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869; an empty salt is HMAC's key of 32 zeros."""
    prk = hmac.new(salt if salt else b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def party(name: str) -> dict:
    seed = fixed(f"hybrid/{name}/ed25519", 32)
    vk, _ = b.crypto_sign_seed_keypair(seed)
    sk = fixed(f"hybrid/{name}/x25519", 32)
    d, z = fixed(f"hybrid/{name}/mlkem-d", 32), fixed(f"hybrid/{name}/mlkem-z", 32)
    ek, dk = ML_KEM_768._keygen_internal(d, z)
    assert len(ek) == 1184 and len(dk) == 2400
    return {"ed25519_seed": seed, "vk": vk, "x25519_sk": sk,
            "x25519_pk": b.crypto_scalarmult_base(sk), "mlkem_d": d, "mlkem_z": z,
            "mlkem_ek": ek, "mlkem_dk": dk}


def case(parties, s, r, ctx_kdf, ctx_cipher, meta, msg, label) -> dict:
    snd, rcv = parties[s], parties[r]
    nonce, m = fixed(f"hybrid/{label}/nonce", 24), fixed(f"hybrid/{label}/m", 32)
    k_box = b.crypto_box_beforenm(rcv["x25519_pk"], snd["x25519_sk"])
    k_kem, c_kem = ML_KEM_768._encaps_internal(rcv["mlkem_ek"], m)
    assert ML_KEM_768.decaps(rcv["mlkem_dk"], c_kem) == k_kem
    cad = sha3_256(lp(snd["vk"]) + lp(snd["x25519_pk"]) + lp(snd["mlkem_ek"])
                   + lp(rcv["vk"]) + lp(rcv["x25519_pk"]) + lp(rcv["mlkem_ek"]))
    s_ = sha3_256(COMBINER_CONTEXT + k_kem + k_box + cad)
    k = hkdf_sha256(s_, meta, ctx_kdf, 32)
    d = sha256(ctx_cipher) + sha256(meta)
    c1 = b.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, d, nonce, k)
    out = {"sender": s, "receiver": r, "ctx_kdf": ctx_kdf, "ctx_cipher": ctx_cipher,
           "meta": meta, "msg": msg, "nonce": nonce, "kem_m": m, "k_box": k_box,
           "k_kem": k_kem, "c_kem": c_kem, "cad": cad, "s": s_, "k": k, "d": d,
           "c": c1 + nonce + c_kem}
    return {key: (v.hex() if isinstance(v, bytes) else v) for key, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write here instead of stdout")
    args = ap.parse_args()

    parties = [party("alice"), party("bob"), party("carol")]
    cases = [
        case(parties, 0, 1, b"Zoombase-1-ClientOnly-KDF-SecretKey",
             b"Zoombase-1-ClientOnly-Cipher-SecretKey", b"meeting-42/epoch-1",
             fixed("hybrid/meeting-key", 32), "a-to-b"),
        case(parties, 1, 0, b"Zoombase-1-ClientOnly-KDF-SecretKey",
             b"Zoombase-1-ClientOnly-Cipher-SecretKey", b"meeting-42/epoch-1",
             fixed("hybrid/meeting-key", 32), "b-to-a"),
        case(parties, 0, 2, b"", b"", b"", b"", "empty"),
        case(parties, 2, 1, b"kdf", b"cipher", fixed("hybrid/long-meta", 300),
             fixed("hybrid/long-msg", 1000), "long"),
    ]
    doc = {
        "generator": "tools/kat/gen_hybrid_kat.py",
        "pynacl": nacl.__version__,
        "kyber-py": version("kyber-py"),
        "parties": [{k: v.hex() for k, v in p.items()} for p in parties],
        "cases": cases,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
