// The browser participant's page: pumps veil-web's core (wasm) over a WebSocket to the board,
// and shows the leader's security code, the signed participant list and the alerts.
// `window.veilStatus(i = 0)` returns participant i's status as JSON text (the page's own is 0).
// With `&selftest=2` in the fragment it runs two participants in this page, waits for both to
// hold one key, seals a packet with one and opens it with the other, compares the two
// veilStatus() answers, and writes the outcome to #result (what tools/web/js/browser-test
// reads).
import init, { Participant } from './pkg/veil_web_js.js';
import { receive, sendCamera } from './media.js';

// A test harness reads the outcome from the page's own server log: the page reports it with a
// GET to its origin (the only place its CSP lets it connect to besides the board).
const report = (kind, text) => fetch(`/${kind}?${encodeURIComponent(text)}`).catch(() => {});
// The page's log keeps its last LOG_LINES lines.
const LOG_LINES = 200;
const logLines = [];
const log = (line) => {
  logLines.push(line);
  if (logLines.length > LOG_LINES) logLines.shift();
  document.getElementById('log').textContent = logLines.join('\n');
  if (/[&#]report=1/.test(location.hash)) report('log', line);
};
const result = (text) => {
  document.getElementById('result').textContent = text;
  report('result', text);
};

// The participants of this page: the page's own first.
const people = [];

// Participant i's status as JSON text, or null before it exists: `securityCode` (the 39
// digits), `participants` (`slot`, `name`, `state` from the leader's signed list), `mkSeqNum`,
// `packetsSealed`, `packetsOpened`, `packetsRefused`, `boardRefused`, `alerts`, `ended`, all
// from the wasm core, plus `name` and `framesDecoded`.
// Beyond those the issue names, the page adds what its test compares with ffmpeg: `relay`
// (the WebTransport session's state), `framesSent`, `framesReceived`, and the SHA-256 of every
// frame sent and received (`sentFrameHashes`, `receivedFrameHashes`), in order.
window.veilStatus = (i = 0) => {
  const person = people[i];
  if (!person) return null;
  const status = JSON.parse(person.p.statusJson());
  status.name = person.p.name();
  status.relay = person.relay;
  status.framesDecoded = person.stats.framesDecoded;
  status.framesSent = person.stats.framesSent;
  status.framesReceived = person.stats.framesReceived;
  status.sentFrameHashes = person.stats.sentHashes;
  status.receivedFrameHashes = person.stats.receivedHashes;
  return JSON.stringify(status);
};

const newStats = () => ({
  framesSent: 0, framesDecoded: 0, framesReceived: 0, sentHashes: [], receivedHashes: [],
  sendErrors: 0, openRefused: 0, rtpRefused: 0, hashChain: Promise.resolve(),
});

// Media through the relay, once the board welcomed us (the core then holds its relay ticket
// and has queued its registration): a WebTransport session pinned to the relay's certificate
// hash, the registration and its refreshes from `pollRelayTransmit`, what arrives into
// `handleRelay`; and, in an RTP meeting, the camera out and the others' video on the canvas.
async function connectRelay(person) {
  const { p } = person;
  const url = p.relayUrl();
  if (url === undefined) return;
  person.relay = 'connecting';
  // A relay with a certificate browsers trust needs no pin; a self-signed one is pinned.
  const hash = p.relayCertificateHash();
  const wt = new WebTransport(url, hash === undefined
    ? {}
    : { serverCertificateHashes: [{ algorithm: 'sha-256', value: hash }] });
  await wt.ready;
  person.wt = wt;
  person.relay = 'connected';
  wt.closed.then(() => { person.relay = 'closed'; }, () => { person.relay = 'failed'; });
  const writer = wt.datagrams.writable.getWriter();
  person.flushRelay = () => {
    for (let d = p.pollRelayTransmit(); d !== undefined; d = p.pollRelayTransmit()) {
      writer.write(d).catch(() => {});
    }
  };
  person.flushRelay();
  const { stats } = person;
  receive({
    participant: p, datagrams: wt.datagrams, remotes: document.getElementById('remotes'), stats, log,
    flush: person.flushRelay,
  }).catch((err) => log(`relay: ${err.message}`));
  if (p.rtpMedia()) {
    person.stopCamera = await sendCamera({
      participant: p, writer, video: document.getElementById('local'), stats, log,
    });
  }
  // Ended while the camera was starting: stop now.
  if (person.state.ended) {
    person.stopCamera?.();
    wt.close();
  }
}

const item = (text, className) => {
  const li = document.createElement('li');
  li.textContent = text; // never markup: names are whatever their owners signed
  if (className) li.className = className;
  return li;
};

function render() {
  const text = window.veilStatus(0);
  if (text === null) return;
  const s = JSON.parse(text);
  document.getElementById('code').textContent = s.securityCode ?? 'none yet';
  document.getElementById('participants').replaceChildren(...s.participants.map((m) =>
    item(`${m.name} (slot ${m.slot})${m.state === 'present' ? '' : `: ${m.state}`}`, m.state)));
  document.getElementById('alerts').replaceChildren(...s.alerts.map((a) => item(a)));
  document.getElementById('state').textContent = s.ended !== null
    ? `out of the meeting (${s.ended}); every key is erased`
    : s.mkSeqNum === null
      ? `joining as ${s.name}`
      : `in the meeting as ${s.name}, key ${s.mkSeqNum}; sealed ${s.packetsSealed}, opened ${s.packetsOpened}`;
}

function pump(name, p, ws, state, person) {
  const now = () => Date.now();
  const flush = () => {
    person?.flushRelay?.();
    // Only once open: a send while connecting throws, and the message would be lost.
    while (ws.readyState === WebSocket.OPEN) {
      const m = p.pollTransmit();
      if (m === undefined) break;
      ws.send(m);
    }
    for (let e = p.pollEvent(); e !== undefined; e = p.pollEvent()) {
      log(`${name}: ${e}`);
      if (e.startsWith('keyed ')) state.keyed = Number(e.slice(6));
      if (e === 'joined' && person && !person.relay) {
        connectRelay(person).catch((err) => { person.relay = `failed: ${err.message}`; log(`relay: ${err.message}`); });
      }
      if (e.startsWith('left') || e.startsWith('ended')) {
        state.ended = e;
        // Out of the meeting: the keys are gone; so go the camera and the relay session.
        if (person) {
          person.flushRelay?.();
          person.stopCamera?.();
          person.wt?.close();
        }
      }
    }
  };
  ws.binaryType = 'arraybuffer';
  ws.onopen = flush;
  ws.onmessage = (ev) => {
    try { p.handleBoard(new Uint8Array(ev.data), now()); } catch (err) { log(`${name} refused: ${err.message}`); }
    flush();
  };
  ws.onclose = () => log(`${name}: board closed`);
  setInterval(() => {
    const due = p.pollTimeout();
    if (due !== undefined && due <= now()) {
      try { p.handleTimeout(now()); } catch (err) { log(`${name} timer: ${err.message}`); }
    }
    flush();
  }, 20);
}

async function main() {
  await init();
  const fragment = location.hash;
  const selftest = /[&#]selftest=2/.test(fragment);
  const link = fragment.replace(/&selftest=2/, '').replace(/&report=1/, '');
  // The page's own participant joins as the link's user (its invite's), or as a guest.
  const names = selftest ? ['web-a', 'web-b'] : [''];
  for (const name of names) {
    const p = new Participant(link, name);
    const ws = new WebSocket(p.boardUrl());
    const state = { keyed: 0, ended: null };
    // Only the page's own participant uses the relay (the self-test's pair stays off it).
    const person = { name: p.name(), p, state, ws, stats: newStats(), relay: null };
    pump(p.name(), p, ws, state, selftest ? null : person);
    people.push(person);
  }
  // Page unload: leave (the signed Leave and the relay's leave go out if they can), then free
  // the core, which erases every key; nothing was ever written to storage.
  window.addEventListener('pagehide', () => {
    for (const person of people) {
      try { person.p.leave(Date.now()); } catch (err) { /* not joined, or gone already */ }
      while (person.ws.readyState === WebSocket.OPEN) {
        const m = person.p.pollTransmit();
        if (m === undefined) break;
        person.ws.send(m);
      }
      person.flushRelay?.();
      person.stopCamera?.();
      person.wt?.close();
      person.p.free();
    }
  });
  render();
  setInterval(render, 250);
  if (!selftest) return;
  document.getElementById('result').textContent = 'running';
  const deadline = Date.now() + 20000;
  const timer = setInterval(() => {
    const [a, b] = people;
    if (a.state.ended || b.state.ended) {
      clearInterval(timer);
      result(`FAIL ended: ${a.state.ended || b.state.ended}`);
      return;
    }
    if (Date.now() > deadline) {
      clearInterval(timer);
      result(`FAIL timeout: keyed ${a.state.keyed} ${b.state.keyed}`);
      return;
    }
    if (!a.state.keyed || a.state.keyed !== b.state.keyed) return;
    let sealed;
    try { sealed = a.p.seal(Date.now(), new TextEncoder().encode('hello from the browser')); }
    catch (err) { return; } // not active yet (about 2 s after the key arrived)
    // Until the shared key activates (about 2 s after it arrived), the first participant still
    // sends under the key from before the second joined, which the second never held.
    const mk = new DataView(sealed.buffer, sealed.byteOffset).getUint32(0);
    if (mk !== b.state.keyed) return;
    clearInterval(timer);
    let opened;
    try {
      opened = new TextDecoder().decode(b.p.open(Date.now(), sealed));
    } catch (err) {
      result(`FAIL open: ${err.message}`);
      return;
    }
    // What window.veilStatus() tells of each must agree: one 39-digit code, one key, the
    // same signed list, the packet each sealed and opened.
    const [sa, sb] = [0, 1].map((i) => window.veilStatus(i));
    log(`status ${sa}`);
    log(`status ${sb}`);
    const [ja, jb] = [JSON.parse(sa), JSON.parse(sb)];
    const names = (s) => s.participants.map((m) => `${m.name}:${m.state}`).join(',');
    const problems = [];
    if (!/^[0-9]{39}$/.test(ja.securityCode ?? '')) problems.push('code not 39 digits');
    if (ja.securityCode !== jb.securityCode) problems.push('codes differ');
    if (ja.mkSeqNum !== a.state.keyed || jb.mkSeqNum !== a.state.keyed) problems.push('mkSeqNum');
    if (names(ja) !== names(jb) || ja.participants.length !== 2) problems.push('lists differ');
    if (ja.packetsSealed < 1 || jb.packetsOpened !== 1) problems.push('packet counters');
    if (ja.ended !== null || jb.ended !== null || ja.framesDecoded !== 0) problems.push('ended');
    if (problems.length) {
      result(`FAIL status: ${problems.join(', ')}`);
      return;
    }
    // Give the status log lines a moment to reach the server before the result.
    setTimeout(() => result(
      `PASS keyed ${a.state.keyed} code same status agrees opened "${opened}"`), 300);
  }, 50);
}

main().catch((err) => result(`FAIL ${err.message}`));
