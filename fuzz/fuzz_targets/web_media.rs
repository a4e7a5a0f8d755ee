//! The browser participant's media parsers (veil-web): the VP8 RTP depacketizer (RFC 7741) fed
//! a sequence of arbitrary packets, and the meeting link parser fed an arbitrary fragment.
//! Nothing panics; a frame given is never larger than the bound; whatever the packetizer cuts
//! from a frame reassembles to that frame; a link that parses writes a fragment that parses
//! back to the same link.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use veil_web::MeetingLink;
use veil_web::vp8::{Depacketizer, MAX_FRAME, Packetizer};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        // Packets: each a u16 big-endian length, then that many bytes.
        0 => {
            let mut depacketizer = Depacketizer::new(96);
            let mut input = rest;
            while let [hi, lo, tail @ ..] = input {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                let (packet, next) = tail.split_at(len);
                if let Ok(Some(frame)) = depacketizer.push(packet) {
                    assert!(frame.data.len() <= MAX_FRAME);
                }
                input = next;
            }
        }
        // A frame: the packetizer's packets, in order, give it back.
        1 => {
            let Some((&size, frame)) = rest.split_first() else {
                return;
            };
            let max_packet = 17 + usize::from(size);
            let Ok(packets) = Packetizer::new(7, 96, 65_530).packetize(frame, 90, max_packet)
            else {
                assert!(frame.is_empty());
                return;
            };
            let mut depacketizer = Depacketizer::new(96);
            let mut got = None;
            for packet in &packets {
                assert!(packet.len() <= max_packet);
                got = depacketizer.push(packet).expect("the packetizer's own packets");
            }
            assert_eq!(got.expect("a whole frame").data, frame);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(link) = MeetingLink::parse(text) {
                let again = MeetingLink::parse(&link.to_fragment()).expect("a link's own fragment");
                assert_eq!(again, link);
            }
        }
    }
});
