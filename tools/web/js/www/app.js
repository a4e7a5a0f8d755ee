// The browser participant's page: pumps veil-web's core (wasm) over a WebSocket to the board.
// With `&selftest=2` in the fragment it runs two participants in this page, waits for both to
// hold one key, seals a packet with one and opens it with the other, and writes the outcome to
// #result (what tools/web/js/browser-test reads).
import init, { Participant } from './pkg/veil_web_js.js';

// A test harness reads the outcome from the page's own server log: the page reports it with a
// GET to its origin (the only place its CSP lets it connect to besides the board).
const report = (kind, text) => fetch(`/${kind}?${encodeURIComponent(text)}`).catch(() => {});
const log = (line) => {
  document.getElementById('log').textContent += line + '\n';
  if (/[&#]report=1/.test(location.hash)) report('log', line);
};
const result = (text) => {
  document.getElementById('result').textContent = text;
  report('result', text);
};

function pump(name, p, ws, state) {
  const now = () => Date.now();
  const flush = () => {
    // Only once open: a send while connecting throws, and the message would be lost.
    while (ws.readyState === WebSocket.OPEN) {
      const m = p.pollTransmit();
      if (m === undefined) break;
      ws.send(m);
    }
    for (let e = p.pollEvent(); e !== undefined; e = p.pollEvent()) {
      log(`${name}: ${e}`);
      if (e.startsWith('keyed ')) state.keyed = Number(e.slice(6));
      if (e.startsWith('left') || e.startsWith('ended')) state.ended = e;
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
  const names = selftest ? ['web-a', 'web-b'] : ['web'];
  const people = names.map((name) => {
    const p = new Participant(link, name);
    const ws = new WebSocket(p.boardUrl());
    const state = { keyed: 0, ended: null };
    pump(name, p, ws, state);
    return { name, p, state };
  });
  if (!selftest) return;
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
    try {
      const opened = new TextDecoder().decode(b.p.open(Date.now(), sealed));
      const code = a.p.securityCode();
      const same = code !== undefined && code === b.p.securityCode();
      result(`PASS keyed ${a.state.keyed} code ${same ? 'same' : 'DIFFERENT'} opened "${opened}"`);
    } catch (err) {
      result(`FAIL open: ${err.message}`);
    }
  }, 50);
}

main().catch((err) => result(`FAIL ${err.message}`));
