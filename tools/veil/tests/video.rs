//! Real video between native participants: ffmpeg encodes VP8, packetizes it as RTP (RFC 7741)
//! and sends it through a meeting-mode sidecar in RTP mode; the relay forwards it; the other
//! sidecar opens it and ffmpeg behind it receives exactly the frames that were encoded. This is
//! the native half of a browser call (tests/web_media.rs has the other).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use std::time::Duration;

use media_support::ffmpeg::{self, Receiver, ivf_frames};
use media_support::meeting::{Net, converge};

#[test]
fn ffmpeg_video_crosses_two_sidecars_in_rtp_mode_frame_for_frame() {
    if !ffmpeg::available() {
        eprintln!("ffmpeg with libvpx is not installed: skipped (CI installs it)");
        return;
    }
    const FRAMES: u32 = 45;
    let net = Net::start("video", None);
    let sender_port = ffmpeg::rtp_port();
    let receiver_port = ffmpeg::rtp_port();
    let client = format!("127.0.0.1:{sender_port}");
    let alice = net.join_to(
        "video",
        "alice",
        None,
        &["--rtp", "--local-client", &client],
    );
    let deliver = format!("127.0.0.1:{receiver_port}").parse().unwrap();
    let bob = net.join_to("video", "bob", Some(deliver), &["--rtp"]);
    converge(&[&alice, &bob], 2, 1);

    let receiver = Receiver::start(&net.dir, receiver_port, FRAMES);
    let sent_ivf = net.dir.join("sent.ivf");
    ffmpeg::send_vp8(alice.listen, sender_port, FRAMES, 1_000, &sent_ivf);
    let sent = ivf_frames(&sent_ivf);
    let received = receiver.finish(Duration::from_secs(10));
    assert_eq!(sent.len(), FRAMES as usize);
    assert_eq!(received.len(), sent.len(), "every frame arrived");
    assert!(
        received == sent,
        "the frames bob's ffmpeg got are the frames alice's encoded"
    );
}
