// The page's media: the camera through WebCodecs' VP8 encoder, RTP (RFC 7741) from the wasm
// packetizer, sealed in wasm, out as WebTransport datagrams to the relay; and back: datagrams
// opened in wasm, frames reassembled in wasm, decoded by WebCodecs and drawn. The page owns the
// devices and the sockets; every byte that leaves is sealed by the core (RTP mode: the RTP
// header clear, the VP8 payload SFrame-protected behind the mkSeqNum).
import { RtpDepacketizer, RtpPacketizer } from './pkg/veil_web_js.js';

export const PAYLOAD_TYPE = 96;
// Room for the relay's QUIC datagram framing on a 1,200-byte path: RTP plus Veil's overhead
// (at most 30 bytes) stays under what a fresh WebTransport session takes.
const MAX_RTP = 1000;
const WIDTH = 320;
const HEIGHT = 240;
const FPS = 15;
const KEYFRAME_EVERY = 30;

// Hex of a byte array, for the frame checksums a test compares with ffmpeg's.
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

// Most frame hashes kept per direction: enough for a test's comparison, bounded for a long call.
const HASHES_KEPT = 1024;

// Appends the SHA-256 of `bytes` to `list`, in the order of the calls (each digest waits for
// the one before), keeping the last HASHES_KEPT.
function recordHash(stats, list, bytes) {
  const copy = bytes.slice();
  stats.hashChain = stats.hashChain.then(async () => {
    list.push(hex(new Uint8Array(await crypto.subtle.digest('SHA-256', copy))));
    if (list.length > HASHES_KEPT) list.splice(0, list.length - HASHES_KEPT);
  });
}

// Sends the camera through `writer` (the relay session's datagram writer): returns a function
// that stops it.
export async function sendCamera({ participant, writer, video, stats, log }) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: WIDTH, height: HEIGHT, frameRate: FPS },
    audio: false,
  });
  const [track] = stream.getVideoTracks();
  if (video) video.srcObject = stream;
  const ssrc = crypto.getRandomValues(new Uint32Array(1))[0];
  const packetizer = new RtpPacketizer(ssrc, PAYLOAD_TYPE);
  let encoded = 0;
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      // WebCodecs timestamps are microseconds; RTP video runs at 90 kHz (RFC 7741 4.1).
      const rtpTime = Math.round((chunk.timestamp * 9) / 100) >>> 0;
      try {
        packetizer.packetize(data, rtpTime, MAX_RTP);
        for (let p = packetizer.poll(); p !== undefined; p = packetizer.poll()) {
          writer.write(participant.seal(Date.now(), p)).catch(() => {});
        }
        stats.framesSent += 1;
        recordHash(stats, stats.sentHashes, data);
      } catch (err) {
        stats.sendErrors += 1;
        log(`send: ${err.message}`);
      }
    },
    error: (err) => log(`encoder: ${err.message}`),
  });
  encoder.configure({
    codec: 'vp8',
    width: WIDTH,
    height: HEIGHT,
    bitrate: 300_000,
    framerate: FPS,
    latencyMode: 'realtime',
  });
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  let running = true;
  (async () => {
    while (running) {
      const { value: frame, done } = await reader.read();
      if (done) break;
      if (encoder.encodeQueueSize < 4) {
        encoder.encode(frame, { keyFrame: encoded % KEYFRAME_EVERY === 0 });
        encoded += 1;
      }
      frame.close();
    }
  })().catch((err) => log(`camera: ${err.message}`));
  return () => {
    running = false;
    track.stop();
    encoder.close();
  };
}

// One sender's video: its depacketizer, its decoder and its canvas. A decoder that failed
// (WebCodecs closes it on an error) is replaced, and waits for a keyframe again.
function remoteVideo(slot, remotes, stats, log) {
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  canvas.title = `slot ${slot}`;
  remotes.append(canvas);
  const context = canvas.getContext('2d');
  const video = { depacketizer: new RtpDepacketizer(PAYLOAD_TYPE), keyed: false, decoder: null };
  video.newDecoder = () => {
    video.keyed = false;
    video.decoder = new VideoDecoder({
      output: (frame) => {
        context.drawImage(frame, 0, 0, canvas.width, canvas.height);
        frame.close();
        stats.framesDecoded += 1;
      },
      error: (err) => log(`decoder (slot ${slot}): ${err.message}`),
    });
    video.decoder.configure({ codec: 'vp8' });
  };
  video.newDecoder();
  return video;
}

// Receives: reads the relay's datagrams until the session closes. Media is opened by the core
// (`handleRelay`), reassembled per sender (the core says which roster slot sent it, once the
// packet authenticated), decoded and drawn on that sender's canvas in `remotes`; the relay's
// challenges are answered through `pollRelayTransmit`, which the caller flushes.
export async function receive({ participant, datagrams, remotes, stats, log, flush }) {
  const senders = new Map();
  const reader = datagrams.readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    let rtp;
    try {
      rtp = participant.handleRelay(Date.now(), value);
    } catch (err) {
      stats.openRefused += 1;
      continue;
    }
    flush();
    if (rtp === undefined) continue;
    const slot = participant.lastSender();
    // Bounded by the roster: a slot is the leader's to give, one per participant.
    if (!senders.has(slot)) senders.set(slot, remoteVideo(slot, remotes, stats, log));
    const video = senders.get(slot);
    let frame;
    try {
      frame = video.depacketizer.push(rtp);
    } catch (err) {
      // A gap: that frame is gone (the next one says it follows a loss).
      stats.rtpRefused += 1;
      continue;
    }
    if (frame === undefined) continue;
    const keyframe = video.depacketizer.keyframe();
    if (video.decoder.state === 'closed') video.newDecoder();
    // A decoder starts at a keyframe, and after a loss waits for the next one.
    if (video.depacketizer.followsLoss() && !keyframe) video.keyed = false;
    video.keyed = video.keyed || keyframe;
    if (!video.keyed) continue;
    stats.framesReceived += 1;
    recordHash(stats, stats.receivedHashes, frame);
    try {
      video.decoder.decode(new EncodedVideoChunk({
        type: keyframe ? 'key' : 'delta',
        timestamp: Math.round((video.depacketizer.timestamp() * 100) / 9),
        data: frame,
      }));
    } catch (err) {
      log(`decode (slot ${slot}): ${err.message}`);
      video.newDecoder();
    }
  }
}
