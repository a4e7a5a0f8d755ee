//! ffmpeg as a native participant's media engine: VP8 over RTP (RFC 7741) out of its test
//! pattern, and VP8 over RTP back into IVF, so a test can compare the frames that arrived with
//! the frames that were encoded, byte for byte (`-c copy`: ffmpeg's own depacketizer, no
//! decode).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The RTP payload type the tests use for VP8.
pub const PAYLOAD_TYPE: u8 = 96;

/// Set (by .ci/run, which installs them) when a test must not skip for want of ffmpeg,
/// chromium, chromedriver or wasm-bindgen: without it such a test says what is missing and
/// passes without checking anything.
pub const REQUIRE: &str = "VEIL_REQUIRE_MEDIA_TOOLS";

/// Whether ffmpeg with libvpx is here (the tests that need it say so and stop otherwise);
/// panics if it is not and [`REQUIRE`] is set.
pub fn available() -> bool {
    let here = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libvpx"));
    assert!(
        here || std::env::var_os(REQUIRE).is_none(),
        "${REQUIRE} is set, and ffmpeg with libvpx is not installed"
    );
    here
}

/// A free UDP port whose next port is free too (ffmpeg's RTP receiver binds port + 1 for RTCP).
pub fn rtp_port() -> u16 {
    loop {
        let port = super::free_udp().port();
        if port.is_multiple_of(2)
            && port < u16::MAX
            && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

fn ffmpeg() -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .stdout(Stdio::null());
    cmd
}

/// Encodes `frames` frames of ffmpeg's test pattern (320x240, 30 fps, in real time) with
/// libvpx and sends them as RTP packets of at most `pkt_size` bytes to `to`, from the local
/// port `from_port` (so a sidecar's `--local-client` can name it); the frames as encoded are
/// written to `ivf`. Returns when ffmpeg has sent everything.
pub fn send_vp8(to: SocketAddr, from_port: u16, frames: u32, pkt_size: usize, ivf: &Path) {
    let status = ffmpeg()
        .args(["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"])
        .args(["-frames:v", &frames.to_string(), "-map", "0:v"])
        .args([
            "-c:v",
            "libvpx",
            "-b:v",
            "400k",
            "-g",
            "30",
            "-deadline",
            "realtime",
        ])
        .args(["-threads", "1", "-payload_type", &PAYLOAD_TYPE.to_string()])
        .args(["-f", "tee"])
        .arg(format!(
            "[f=rtp:pkt_size={pkt_size}]rtp://{to}?localport={from_port}|[f=ivf]{}",
            ivf.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg sending VP8");
}

/// ffmpeg receiving VP8 over RTP on `port` into an IVF file, until `frames` frames arrived
/// (or [`Receiver::finish`] gives up).
pub struct Receiver {
    child: Child,
    pub ivf: PathBuf,
}

impl Receiver {
    /// Listens on 127.0.0.1:`port` (an SDP in `dir` describes the stream) for `frames` frames.
    pub fn start(dir: &Path, port: u16, frames: u32) -> Self {
        let sdp = dir.join(format!("receive-{port}.sdp"));
        std::fs::write(
            &sdp,
            format!(
                "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=veil\nc=IN IP4 127.0.0.1\nt=0 0\n\
                 m=video {port} RTP/AVP {PAYLOAD_TYPE}\na=rtpmap:{PAYLOAD_TYPE} VP8/90000\n"
            ),
        )
        .unwrap();
        let ivf = dir.join(format!("received-{port}.ivf"));
        let child = ffmpeg()
            .args(["-protocol_whitelist", "file,udp,rtp", "-i"])
            .arg(&sdp)
            .args([
                "-map",
                "0:v",
                "-c",
                "copy",
                "-frames:v",
                &frames.to_string(),
            ])
            .args(["-f", "ivf"])
            .arg(&ivf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // ffmpeg opens its sockets (the port, and the next for RTCP) after reading the SDP: wait
        // until they are taken, or the first packets (a keyframe) would go nowhere.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "ffmpeg did not open port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, ivf }
    }

    /// Waits up to `limit` for ffmpeg to have its frames, then stops it; the frames it wrote.
    pub fn finish(mut self, limit: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SIGINT: ffmpeg finishes the file with what it has.
        if self.child.try_wait().unwrap().is_none() {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
        ivf_frames(&self.ivf)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many frames ffmpeg's VP8 decoder decodes from an IVF file (it skips, with an error,
/// frames before the first keyframe: a receiver that started mid-stream).
pub fn decoded_frames(ivf: &Path) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "quiet", "-nostdin", "-i"])
        .arg(ivf)
        .args(["-f", "framemd5", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

/// The frames of an IVF file (a 32-byte file header, then per frame a 12-byte header: u32 LE
/// size, u64 LE timestamp).
pub fn ivf_frames(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_default();
    let mut frames = Vec::new();
    let Some(header) = data.get(6..8) else {
        return frames;
    };
    let mut pos = usize::from(u16::from_le_bytes([header[0], header[1]]));
    while let Some(size) = data.get(pos..pos + 4) {
        let size = u32::from_le_bytes(size.try_into().unwrap()) as usize;
        let Some(frame) = data.get(pos + 12..pos + 12 + size) else {
            break;
        };
        frames.push(frame.to_vec());
        pos += 12 + size;
    }
    frames
}
