#!/usr/bin/env python3
"""Known answers for keyctl's hybrid identities (Ed25519 + ML-DSA-65), independently of the Rust code.

keyctl::crypto::hybrid_sig (issue 16 part 2; docs/PROTOCOL.md, "Hybrid signatures"):

  m       = SHA256(context) || SHA256(msg)                   whitepaper 3.5.1, hashlib
  sig_ed  = crypto_sign_detached(m, ISK)                     libsodium, via PyNaCl
  M'      = 0x00 || 0x00 || m                                FIPS 204 alg. 2, ctx = "" (pure)
  sig_pq  = ML-DSA-65.Sign_internal(sk, M', rnd)             dilithium-py (FIPS 204 alg. 7)
  sig     = sig_ed || sig_pq                                 64 + 3,309 bytes

Keys: the Ed25519 pair from its 32-byte seed (crypto_sign_seed_keypair), the ML-DSA-65 pair
from its 32-byte seed xi (ML-DSA.KeyGen_internal, FIPS 204 alg. 6, dilithium-py key_derive);
pk is FIPS 204 pkEncode (1,952 bytes). rnd is fixed per case, one case has FIPS 204's
deterministic rnd = 0^32 and is checked against dilithium-py's own ML_DSA_65.sign(sk, m,
ctx=b"", deterministic=True), so the formatting of M' is dilithium-py's, not only ours.

Writes JSON (stdout, or --out): "parties" (ed25519_seed, ivk, mldsa_seed, mldsa_pk),
"sign" (party index, context, msg, m, m_prime, rnd, sig_ed, sig_pq, sig), "reject" (party,
context, msg, sig, and fails: "ed25519", "ml_dsa" or "both", the halves libsodium and
dilithium-py refuse: a bit flipped in either signature, a message or context changed by one
bit, another party's key), and "security_code_hybrid" (below). Byte strings are lower-case hex.

  security_code_hybrid: Digits(SHA256(SHA256("Veil-1-MAC-HybridSecurityCode") || SHA256(IVK)
                        || SHA256(pk_ML-DSA))), the hash read as a big-endian integer mod
                        10^39, 39 zero-padded digits (docs/PROTOCOL.md, "Hybrid signatures").
                        Fields: ivk, mldsa_pk, code; one case per party and one with a key
                        whose Ed25519 half is alice's and ML-DSA half bob's.

Usage:  pip install pynacl dilithium-py==1.5.1
        python3 tools/kat/gen_hybrid_sig_kat.py --out keyctl/tests/data/hybrid-sig-kat.json
"""

import argparse
import sys
from importlib.metadata import version

import nacl
from nacl import bindings as b
from nacl.exceptions import BadSignatureError
from dilithium_py.ml_dsa import ML_DSA_65

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from gen_keyctl_kat import emit, fixed, sha256  # noqa: E402, the same labels-to-bytes

CTX_BINDING = b"Zoombase-1-ClientOnly-Sig-EncryptionKeyAnnouncement"
CTX_LPL = b"Zoombase1-ClientOnly-Sig-LeaderParticipantList"
CTX_SECURITY_CODE_HYBRID = b"Veil-1-MAC-HybridSecurityCode"


def party(name: str) -> dict:
    seed = fixed(f"hybrid-sig/{name}/ed25519", 32)
    ivk, _ = b.crypto_sign_seed_keypair(seed)
    xi = fixed(f"hybrid-sig/{name}/mldsa-xi", 32)
    pk, sk = ML_DSA_65.key_derive(xi)
    assert len(pk) == 1952 and len(sk) == 4032
    return {"ed25519_seed": seed, "ivk": ivk, "mldsa_seed": xi, "mldsa_pk": pk, "_sk": sk}


def ed_ok(p: dict, sig_ed: bytes, m: bytes) -> bool:
    try:
        b.crypto_sign_open(sig_ed + m, p["ivk"])
        return True
    except BadSignatureError:
        return False


def pq_ok(p: dict, sig_pq: bytes, m: bytes) -> bool:
    return ML_DSA_65.verify(p["mldsa_pk"], m, sig_pq, ctx=b"")


def verdict(p: dict, context: bytes, msg: bytes, sig: bytes) -> str:
    m = sha256(context) + sha256(msg)
    ed, pq = ed_ok(p, sig[:64], m), pq_ok(p, sig[64:], m)
    return {(True, True): "ok", (False, True): "ed25519", (True, False): "ml_dsa",
            (False, False): "both"}[(ed, pq)]


def sign_case(parties, i: int, context: bytes, msg: bytes, rnd: bytes) -> dict:
    p = parties[i]
    _, isk = b.crypto_sign_seed_keypair(p["ed25519_seed"])
    m = sha256(context) + sha256(msg)
    sig_ed = b.crypto_sign(m, isk)[:64]  # combined mode: sig || m
    m_prime = bytes([0, 0]) + m  # domain 0 (pure ML-DSA), |ctx| = 0, ctx = ""
    sig_pq = ML_DSA_65._sign_internal(p["_sk"], m_prime, rnd)
    if rnd == bytes(32):
        assert sig_pq == ML_DSA_65.sign(p["_sk"], m, ctx=b"", deterministic=True)
    assert len(sig_pq) == 3309
    assert verdict(p, context, msg, sig_ed + sig_pq) == "ok"
    out = {"party": i, "context": context, "msg": msg, "m": m, "m_prime": m_prime,
           "rnd": rnd, "sig_ed": sig_ed, "sig_pq": sig_pq, "sig": sig_ed + sig_pq}
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in out.items()}


def flip(x: bytes, bit: int) -> bytes:
    y = bytearray(x)
    y[bit // 8] ^= 1 << (bit % 8)
    return bytes(y)


def reject_cases(parties, signed: dict) -> list:
    i = signed["party"]
    context, msg = bytes.fromhex(signed["context"]), bytes.fromhex(signed["msg"])
    sig = bytes.fromhex(signed["sig"])
    tries = [
        ("ed25519 R bit 0", i, context, msg, flip(sig, 0)),
        ("ed25519 S last bit", i, context, msg, flip(sig, 63 * 8 + 7)),
        ("ml-dsa c~ bit 0", i, context, msg, flip(sig, 64 * 8)),
        ("ml-dsa z middle", i, context, msg, flip(sig, (64 + 1500) * 8 + 3)),
        ("ml-dsa hint last bit", i, context, msg, flip(sig, len(sig) * 8 - 1)),
        ("message bit flipped", i, context, flip(msg, 0) if msg else b"\x01", sig),
        ("context bit flipped", i, flip(context, 5), msg, sig),
        ("another party's keys", (i + 1) % len(parties), context, msg, sig),
    ]
    out = []
    for what, j, c, mm, s in tries:
        fails = verdict(parties[j], c, mm, s)
        assert fails != "ok", what
        out.append({"what": what, "party": j, "context": c.hex(), "msg": mm.hex(),
                    "sig": s.hex(), "fails": fails})
    return out


def security_code_hybrid(ivk: bytes, pk: bytes) -> dict:
    h = sha256(sha256(CTX_SECURITY_CODE_HYBRID) + sha256(ivk) + sha256(pk))
    code = str(int.from_bytes(h, "big") % 10**39).zfill(39)
    return {"ivk": ivk.hex(), "mldsa_pk": pk.hex(), "code": code}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write here instead of stdout")
    args = ap.parse_args()

    parties = [party("alice"), party("bob")]
    signed = [
        sign_case(parties, 0, CTX_BINDING, fixed("hybrid-sig/binding", 87), bytes(32)),
        sign_case(parties, 1, CTX_LPL, fixed("hybrid-sig/heartbeat", 200),
                  fixed("hybrid-sig/rnd/1", 32)),
        sign_case(parties, 0, b"", b"", fixed("hybrid-sig/rnd/2", 32)),
    ]
    doc = {
        "generator": "tools/kat/gen_hybrid_sig_kat.py",
        "pynacl": nacl.__version__,
        "dilithium-py": version("dilithium-py"),
        "parties": [{k: v.hex() for k, v in p.items() if not k.startswith("_")}
                    for p in parties],
        "sign": signed,
        "reject": [r for s in signed[:2] for r in reject_cases(parties, s)],
        "security_code_hybrid": [
            security_code_hybrid(parties[0]["ivk"], parties[0]["mldsa_pk"]),
            security_code_hybrid(parties[1]["ivk"], parties[1]["mldsa_pk"]),
            security_code_hybrid(parties[0]["ivk"], parties[1]["mldsa_pk"]),
        ],
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
