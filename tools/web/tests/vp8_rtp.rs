//! VP8 over RTP against ffmpeg's (tools/kat/gen_vp8_rtp_kat.py): ffmpeg encoded frames with
//! libvpx and wrote them both as RTP packets (its own RFC 7741 packetizer) and as IVF. From
//! ffmpeg's packets the depacketizer must give back exactly ffmpeg's frames, and from ffmpeg's
//! frames the packetizer must write exactly ffmpeg's packets (same RTP fields, descriptor and
//! boundaries), so a browser and ffmpeg behind a sidecar understand each other's video.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use veil_web::vp8::{Depacketizer, Packetizer, Vp8Error};

struct Kat {
    pkt_size: usize,
    payload_type: u8,
    packets: Vec<Vec<u8>>,
    frames: Vec<Vec<u8>>,
}

fn kat() -> Kat {
    let text = include_str!("data/vp8-rtp-kat.json");
    let json: Value = serde_json::from_str(text).unwrap();
    let list = |key: &str| -> Vec<Vec<u8>> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
            .collect()
    };
    Kat {
        pkt_size: json["pkt_size"].as_u64().unwrap() as usize,
        payload_type: json["payload_type"].as_u64().unwrap() as u8,
        packets: list("packets"),
        frames: list("frames"),
    }
}

#[test]
fn ffmpegs_packets_give_back_ffmpegs_frames() {
    let kat = kat();
    let mut depacketizer = Depacketizer::new(kat.payload_type);
    let mut frames = Vec::new();
    for packet in &kat.packets {
        if let Some(frame) = depacketizer.push(packet).unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(frames.len(), kat.frames.len());
    for (got, want) in frames.iter().zip(&kat.frames) {
        assert_eq!(&got.data, want);
    }
    // libvpx with -g 4 over 8 frames: keyframes at 0 and 4.
    let keyframes: Vec<usize> = (0..frames.len()).filter(|i| frames[*i].keyframe).collect();
    assert_eq!(keyframes, [0, 4]);
}

#[test]
fn ffmpegs_frames_packetize_into_ffmpegs_packets() {
    let kat = kat();
    let first = &kat.packets[0];
    let sequence = u16::from_be_bytes([first[2], first[3]]);
    let ssrc = u32::from_be_bytes(first[8..12].try_into().unwrap());
    let mut packetizer = Packetizer::new(ssrc, kat.payload_type, sequence);
    let mut ours = Vec::new();
    let mut theirs = kat.packets.iter().peekable();
    for frame in &kat.frames {
        let timestamp = u32::from_be_bytes(theirs.peek().unwrap()[4..8].try_into().unwrap());
        ours.extend(
            packetizer
                .packetize(frame, timestamp, kat.pkt_size)
                .unwrap(),
        );
        while theirs
            .peek()
            .is_some_and(|p| p[4..8] == timestamp.to_be_bytes())
        {
            theirs.next();
        }
    }
    assert_eq!(ours.len(), kat.packets.len());
    for (i, (ours, theirs)) in ours.iter().zip(&kat.packets).enumerate() {
        assert_eq!(hex::encode(ours), hex::encode(theirs), "packet {i}");
    }
}

#[test]
fn a_lost_ffmpeg_packet_costs_its_frame_only() {
    let kat = kat();
    let mut depacketizer = Depacketizer::new(kat.payload_type);
    let mut frames = Vec::new();
    let mut gaps = 0;
    for (i, packet) in kat.packets.iter().enumerate() {
        if i == 2 {
            continue; // inside the first frame
        }
        match depacketizer.push(packet) {
            Ok(Some(frame)) => frames.push(frame.data),
            Ok(None) => {}
            Err(Vp8Error::Gap) => gaps += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(gaps > 0);
    assert_eq!(frames, kat.frames[1..]);
}
