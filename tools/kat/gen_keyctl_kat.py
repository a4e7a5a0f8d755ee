#!/usr/bin/env python3
"""Known-answer vectors for keyctl's primitives, computed with libsodium (via PyNaCl).

Writes JSON (to stdout, or to the path given with --out) with four sections, each a list
of cases; every byte string is lower-case hex:

  sign          Sign.Sign (whitepaper 3.5.1): crypto_sign_detached over
                SHA256(context) || SHA256(msg). Fields: seed, ivk, context, msg, sig.
  box           Box.Enc (whitepaper 3.5.2): K' = crypto_box_beforenm(pk_R, sk_S),
                K = HKDF-SHA256(salt = "", ikm = K', info = ctx_kdf, L = 32),
                D = SHA256(ctx_cipher || SHA256(meta)),
                C = crypto_aead_xchacha20poly1305_ietf_encrypt(msg, D, nonce, K) || nonce.
                Fields: sender_sk, sender_pk, receiver_sk, receiver_pk, ctx_kdf,
                ctx_cipher, meta, msg, nonce, c. Each key pair is used in both directions.
  security_code Digits(SHA256(SHA256("Zoombase-1-ClientOnly-MAC-SecurityCode") ||
                SHA256(ivk))) (whitepaper 3.8): the hash as a big-endian integer mod 10^39,
                39 zero-padded digits. Fields: ivk, code.
  verify        Sign.Verify verdicts of libsodium (crypto_sign_verify_detached) on edge cases:
                valid signatures, S + L, small-order and non-canonical public keys and R.
                Fields: ivk, sig, context, msg, valid (bool).
  cte1          CtE1 (whitepaper 3.11, see keyctl/src/crypto/cte1.rs) with the opening and
                nonce fixed: C2 = HMAC-SHA256(opening, u64be(len h) || h || m),
                C1 = crypto_aead_chacha20poly1305_ietf_encrypt(m || opening, h, nonce, k),
                c = nonce || C2 || C1. Fields: k, h, m, opening, nonce, c.

All inputs are derived from fixed labels, so the output is the same on every run.

Usage:  pip install pynacl
        python3 tools/kat/gen_keyctl_kat.py --out keyctl/tests/data/keyctl-kat.json
"""

import argparse
import hashlib
import hmac
import json
import sys

import nacl
from nacl import bindings as b


def sha256(x: bytes) -> bytes:
    return hashlib.sha256(x).digest()


def fixed(label: str, n: int) -> bytes:
    """n deterministic bytes named by label."""
    out = b""
    i = 0
    while len(out) < n:
        out += sha256(f"veil-kat/{label}/{i}".encode())
        i += 1
    return out[:n]


def emit(doc: dict, out) -> None:
    """Writes doc as indented JSON to the path out, or to stdout when out is None."""
    text = json.dumps(doc, indent=1) + "\n"
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # empty salt = 32 zeros
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def sign_case(seed: bytes, context: bytes, msg: bytes) -> dict:
    pk, sk = b.crypto_sign_seed_keypair(seed)
    m = sha256(context) + sha256(msg)
    sig = b.crypto_sign(m, sk)[:64]  # combined mode: sig || m, i.e. the detached signature
    assert b.crypto_sign_open(sig + m, pk) == m
    return {"seed": seed.hex(), "ivk": pk.hex(), "context": context.hex(),
            "msg": msg.hex(), "sig": sig.hex()}


def box_case(s_sk, r_sk, ctx_kdf, ctx_cipher, meta, msg, nonce) -> dict:
    s_pk = b.crypto_scalarmult_base(s_sk)
    r_pk = b.crypto_scalarmult_base(r_sk)
    k_prime = b.crypto_box_beforenm(r_pk, s_sk)
    assert k_prime == b.crypto_box_beforenm(s_pk, r_sk)
    k = hkdf_sha256(k_prime, ctx_kdf, 32)
    d = sha256(ctx_cipher + sha256(meta))
    c = b.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, d, nonce, k) + nonce
    return {"sender_sk": s_sk.hex(), "sender_pk": s_pk.hex(), "receiver_sk": r_sk.hex(),
            "receiver_pk": r_pk.hex(), "ctx_kdf": ctx_kdf.hex(), "ctx_cipher": ctx_cipher.hex(),
            "meta": meta.hex(), "msg": msg.hex(), "nonce": nonce.hex(), "c": c.hex()}


L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19


def libsodium_verifies(ivk: bytes, sig: bytes, context: bytes, msg: bytes) -> bool:
    m = sha256(context) + sha256(msg)
    try:
        b.crypto_sign_open(sig + m, ivk)
        return True
    except Exception:
        return False


def verify_cases() -> list:
    cases = []

    def add(ivk, sig, ctx, msg):
        cases.append({"ivk": ivk.hex(), "sig": sig.hex(), "context": ctx.hex(), "msg": msg.hex(),
                      "valid": libsodium_verifies(ivk, sig, ctx, msg)})

    seed = fixed("verify-seed", 32)
    pk, sk = b.crypto_sign_seed_keypair(seed)
    ctx, msg = b"ctx", b"msg"
    sig = b.crypto_sign(sha256(ctx) + sha256(msg), sk)[:64]
    add(pk, sig, ctx, msg)                                   # valid
    s = int.from_bytes(sig[32:], "little") + L               # S + L: same scalar, non-canonical
    add(pk, sig[:32] + s.to_bytes(32, "little"), ctx, msg)
    identity = (1).to_bytes(32, "little")
    add(identity, identity + bytes(32), ctx, msg)            # small-order key, equation holds
    small = [bytes(32), identity, (P - 1).to_bytes(32, "little"), P.to_bytes(32, "little"),
             (P + 1).to_bytes(32, "little")]
    for enc in small:
        add(enc, sig, ctx, msg)
        hi = bytearray(enc)
        hi[31] |= 0x80
        add(bytes(hi), sig, ctx, msg)
        add(pk, enc + sig[32:], ctx, msg)                    # small-order R
    for k in range(2, 19):                                   # y = p + k, non-canonical
        add((P + k).to_bytes(32, "little"), sig, ctx, msg)
    return cases


def security_code(ivk: bytes) -> str:
    h = sha256(sha256(b"Zoombase-1-ClientOnly-MAC-SecurityCode") + sha256(ivk))
    return "%039d" % (int.from_bytes(h, "big") % 10**39)


def cte1_case(k, h, m, opening, nonce) -> dict:
    c2 = hmac.new(opening, len(h).to_bytes(8, "big") + h + m, hashlib.sha256).digest()
    c1 = b.crypto_aead_chacha20poly1305_ietf_encrypt(m + opening, h, nonce, k)
    return {"k": k.hex(), "h": h.hex(), "m": m.hex(), "opening": opening.hex(),
            "nonce": nonce.hex(), "c": (nonce + c2 + c1).hex()}


def lp(x: bytes) -> bytes:
    return len(x).to_bytes(2, "big") + x


def invite_case(secret, meeting_id, uuid, user, device, ivk, pk) -> dict:
    """An invite ID and the proof bound to a binding (keyctl::meeting::invite), with
    Python's hmac, independently of the Rust code."""
    invite = hmac.new(secret, lp(meeting_id) + lp(user), hashlib.sha256).digest()
    binding = b"\x01\x01" + lp(meeting_id) + lp(uuid) + lp(user) + lp(device) + ivk + pk
    proof = hmac.new(invite, lp(b"Veil-1-MAC-InviteProof") + binding, hashlib.sha256).digest()
    return {"secret": secret.hex(), "meeting_id": meeting_id.hex(), "uuid": uuid.hex(),
            "user": user.hex(), "device": device.hex(), "ivk": ivk.hex(), "pk": pk.hex(),
            "invite": invite.hex(), "proof": proof.hex()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write here instead of stdout")
    args = ap.parse_args()

    ann = b"Zoombase-1-ClientOnly-Sig-EncryptionKeyAnnouncement"
    lpl = b"Zoombase1-ClientOnly-Sig-LeaderParticipantList"
    sign = []
    for i, (ctx, msg) in enumerate([
        (b"", b""),
        (ann, b""),
        (b"", b"message"),
        (ann, fixed("binding", 150)),
        (lpl, fixed("heartbeat", 32)),
        (b"x" * 300, fixed("long", 1000)),
    ]):
        sign.append(sign_case(fixed(f"sign-seed-{i}", 32), ctx, msg))

    kdf = b"Zoombase-1-ClientOnly-KDF-KeyMeetingSeed"
    cipher = b"Zoombase-1-ClientOnly-Sig-EncryptionKeyMeetingSeed"
    alice, bob = fixed("box-sk-alice", 32), fixed("box-sk-bob", 32)
    boxes = []
    for i, (ctx_kdf, ctx_cipher, meta, msg) in enumerate([
        (kdf, cipher, fixed("meta-0", 40), fixed("mk-0", 32)),
        (kdf, cipher, b"", b""),
        (b"", b"", b"", fixed("msg-2", 5)),
        (kdf, cipher, fixed("meta-3", 200), fixed("msg-3", 300)),
        (b"ctx-a", b"ctx-b", b"meta", fixed("mk-4", 36)),
    ]):
        nonce = fixed(f"box-nonce-{i}", 24)
        boxes.append(box_case(alice, bob, ctx_kdf, ctx_cipher, meta, msg, nonce))
        nonce = fixed(f"box-nonce-rev-{i}", 24)
        boxes.append(box_case(bob, alice, ctx_kdf, ctx_cipher, meta, msg, nonce))

    codes = [{"ivk": ivk.hex(), "code": security_code(ivk)} for ivk in
             [bytes(32), b"\xff" * 32] + [b.crypto_sign_seed_keypair(fixed(f"sc-{i}", 32))[0]
                                          for i in range(6)]]

    store = b"Zoombase-1-ClientOnly-KDF-SecretStore"
    cte1 = [cte1_case(fixed(f"kwk-{i}", 32), h, m, fixed(f"opening-{i}", 32),
                      fixed(f"cte1-nonce-{i}", 12))
            for i, (h, m) in enumerate([(store, fixed("isk", 32)), (b"", b""),
                                        (store, fixed("long-secret", 100))])]

    invites = [invite_case(fixed(f"host-secret-{i}", 32), mid, fixed(f"uuid-{i}", 16), user,
                           dev, fixed(f"inv-ivk-{i}", 32), fixed(f"inv-pk-{i}", 32))
               for i, (mid, user, dev) in enumerate([
                   (b"meeting-1", b"alice", b"laptop"),
                   (b"m", b"", b"d"),
                   (fixed("long-meeting", 200), fixed("long-user", 256), fixed("dev", 64)),
               ])]

    doc = {
        "generator": "tools/kat/gen_keyctl_kat.py",
        "pynacl": nacl.__version__,
        "sign": sign, "verify": verify_cases(), "box": boxes, "security_code": codes,
        "cte1": cte1, "invite": invites,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
