// Times veil-web's seal and open (SFrame AES-256-GCM behind the mkSeqNum, the replay window on
// open) in this browser's wasm, as examples/speed.rs does natively: the median over rounds of
// bursts, in ns per packet. Reports one line per size and operation to its own server
// (GET /result?...), which tools/web/js/browser-speed reads.
import init, { SpeedTest } from './pkg/veil_web_js.js';

const BURST = 2000;
const ROUNDS = 31;

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(f) {
  const t = performance.now();
  f();
  return ((performance.now() - t) * 1e6) / BURST;
}

async function main() {
  await init();
  const lines = [];
  for (const size of [200, 1200]) {
    const test = new SpeedTest(size);
    test.seal(BURST); // warm
    const seal = median(Array.from({ length: ROUNDS }, () => time(() => test.seal(BURST))));
    const open = median(Array.from({ length: ROUNDS }, () => {
      test.prepareOpen(BURST);
      return time(() => test.open());
    }));
    lines.push(`seal ${size} ${seal.toFixed(0)}`, `open ${size} ${open.toFixed(0)}`);
  }
  const text = lines.join(';');
  document.getElementById('result').textContent = text;
  await fetch(`/result?${encodeURIComponent(text)}`).catch(() => {});
}

main().catch((e) => fetch(`/result?${encodeURIComponent('FAIL ' + e)}`));
