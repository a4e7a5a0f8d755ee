#!/usr/bin/env python3
"""Prints the raw/veil speed ratios of the last `cargo bench -p veil-bench --bench sframe` (and `--bench batch`) run.

Reads criterion's estimates (target/criterion/<group>/<function>/new/estimates.json) and, for each
payload size, divides the baseline's time by Veil's: 1.00 means Veil runs at raw AEAD speed.
Usage: python3 bench/ratios.py [--target-dir DIR]
"""
import argparse
import json
import pathlib
import sys

TARGETS = {"seal": 0.90, "open": 0.85}
# Issue 18, target 2: the engine's per-packet crypto path (a batch of 64 through the keyring)
# costs at most 1.15x the raw AEAD at 1200 B.
BATCH_TARGET = 1.15


def point_estimate(root, group, function, stat):
    path = root / group / function / "new" / "estimates.json"
    with open(path) as f:
        return json.load(f)[stat]["point_estimate"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-dir", default="target")
    parser.add_argument("--stat", default="median", choices=["mean", "median"])
    args = parser.parse_args()
    root = pathlib.Path(args.target_dir) / "criterion"
    if not root.is_dir():
        sys.exit(f"no criterion results under {root}: run cargo bench -p veil-bench --bench sframe")
    print(f"| op | bytes | veil ns | aws-lc-rs ns | ring ns | veil/aws-lc-rs speed | target |")
    print(f"|---|---|---|---|---|---|---|")
    failed = False
    for op, target in TARGETS.items():
        for size in (64, 200, 1200, 9000):
            group = f"{op}_{size}"
            try:
                veil, aws, ring = (
                    point_estimate(root, group, fn, args.stat)
                    for fn in ("veil", "aws-lc-rs", "ring")
                )
            except FileNotFoundError:
                continue
            ratio = aws / veil
            checked = size == 1200
            verdict = ""
            if checked:
                ok = ratio >= target
                failed |= not ok
                verdict = f">= {target:.2f} {'met' if ok else 'MISSED'}"
            print(f"| {op} | {size} | {veil:.0f} | {aws:.0f} | {ring:.0f} | {ratio:.2f}x | {verdict} |")
    failed |= batch_table(root, args.stat)
    return 1 if failed else 0


def batch_table(root, stat):
    """The `batch` bench: veil's cost over raw aws-lc-rs, in place, with the copy, and (open
    only) in a GRO buffer, each packet a window onto its segment as the io_uring engine opens
    the network side's coalesced receives."""
    rows = []
    for op in ("seal", "open"):
        for size in (200, 1200):
            group = f"batch_{op}_{size}"
            try:
                raw, in_place, copied = (
                    point_estimate(root, group, fn, stat)
                    for fn in ("aws-lc-rs", "in_place", "copied")
                )
            except FileNotFoundError:
                continue
            try:
                in_gro = point_estimate(root, group, "in_gro_buffer", stat)
            except FileNotFoundError:
                in_gro = None
            rows.append((op, size, raw, in_place, copied, in_gro))
    if not rows:
        return False
    print()
    print("| batch of 64 | bytes | aws-lc-rs ns/pkt | in place ns/pkt | copied ns/pkt | in a GRO buffer ns/pkt "
          "| in place / raw cost | copied / raw cost | in a GRO buffer / raw cost | target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for op, size, raw, in_place, copied, in_gro in rows:
        verdict = ""
        if size == 1200:
            ok = in_place / raw <= BATCH_TARGET
            failed |= not ok
            verdict = f"<= {BATCH_TARGET:.2f} in place: {'met' if ok else 'MISSED'}"
        gro_ns = f"{in_gro / 64:.0f}" if in_gro is not None else "-"
        gro_ratio = f"{in_gro / raw:.2f}x" if in_gro is not None else "-"
        print(f"| {op} | {size} | {raw / 64:.0f} | {in_place / 64:.0f} | {copied / 64:.0f} | {gro_ns} | "
              f"{in_place / raw:.2f}x | {copied / raw:.2f}x | {gro_ratio} | {verdict} |")
    return failed


if __name__ == "__main__":
    sys.exit(main())
