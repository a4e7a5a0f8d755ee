#!/usr/bin/env python3
"""Known answers for VP8 over RTP (RFC 7741) from ffmpeg, independently of veil-web.

ffmpeg encodes a few frames of its test pattern with libvpx once and writes them twice through
its tee muxer: as RTP (its own RFC 7741 packetizer, `-pkt_size` small enough that frames span
several packets) to a UDP port this script reads, and as IVF (the frames as the encoder made
them). The JSON holds every RTP packet as it arrived and every frame, so
`tools/web/tests/vp8_rtp.rs` checks that veil-web's depacketizer gives back exactly ffmpeg's
frames from ffmpeg's packets, and that its packetizer cuts each frame into the same packets
ffmpeg wrote (same payload descriptor and boundaries; sequence number, timestamp, SSRC and
PictureID are taken from ffmpeg's first packet).

    python3 tools/kat/gen_vp8_rtp_kat.py --out tools/web/tests/data/vp8-rtp-kat.json

Needs ffmpeg with libvpx (Debian: apt install ffmpeg). libvpx's output depends on its version,
so a regenerated file may differ in bytes; any ffmpeg's output must pass the same checks.
"""

import argparse
import json
import socket
import struct
import subprocess
import sys
import tempfile

PKT_SIZE = 300
PAYLOAD_TYPE = 96
FRAMES = 8


def ivf_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"DKIF":
        raise SystemExit("not an IVF file")
    header_len = struct.unpack_from("<H", data, 6)[0]
    pos, frames = header_len, []
    while pos < len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        frames.append(data[pos + 12 : pos + 12 + size])
        pos += 12 + size
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write here instead of stdout")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        ivf = f"{tmp}/frames.ivf"
        command = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
            "-frames:v", str(FRAMES), "-c:v", "libvpx", "-b:v", "300k", "-g", "4",
            "-threads", "1", "-map", "0:v", "-payload_type", str(PAYLOAD_TYPE),
            "-f", "tee",
            f"[f=rtp:pkt_size={PKT_SIZE}]rtp://127.0.0.1:{port}|[f=ivf]{ivf}",
        ]
        subprocess.run(command, check=True)
        sock.settimeout(0.5)
        packets = []
        try:
            while True:
                packets.append(sock.recv(65536))
        except socket.timeout:
            pass
        frames = ivf_frames(ivf)
    # RTCP sender reports go to port + 1; only RTP version 2 with our payload type is kept.
    packets = [p for p in packets if p[0] >> 6 == 2 and p[1] & 0x7F == PAYLOAD_TYPE]
    if len(frames) != FRAMES or len(packets) <= FRAMES:
        raise SystemExit(f"got {len(frames)} frames and {len(packets)} packets")
    out = {
        "generator": "tools/kat/gen_vp8_rtp_kat.py",
        "ffmpeg": subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "command": " ".join(command[:-1] + ["[f=rtp:pkt_size=300]rtp://...|[f=ivf]..."]),
        "pkt_size": PKT_SIZE,
        "payload_type": PAYLOAD_TYPE,
        "packets": [p.hex() for p in packets],
        "frames": [f.hex() for f in frames],
    }
    text = json.dumps(out, indent=1) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
