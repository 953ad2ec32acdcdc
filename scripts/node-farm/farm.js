// farm.js: N EventSource clients (the `eventsource` npm package, the client Artillery's
// SSE engine wraps) in one Node process, against the reference server's session streams,
// shaped like `sseharness run hold`: open N streams evenly over the ramp, count events in
// the hold window (from ramp + 1 s, lasting the hold), measure RSS growth per stream at
// the end of that window, hold 2 s more, close everything and print one JSON object:
//
//   node farm.js --url http://127.0.0.1:8080 --streams 10000 --ramp-ms 10000 --hold-ms 30000
//
// Lag is the receive time minus the event's `sent_unix_ns`, in a log histogram with 1%
// buckets (bounded memory, like sseharness's own). `timeline` has the events received per
// second from `start_unix_ms`, so scripts/bench can take CPU and events over one window.
import { EventSource } from 'eventsource';
import { readFileSync } from 'node:fs';

function parseArgs(argv) {
  const o = { url: '', streams: 0, rampMs: 0, holdMs: 0, prefix: `farm-${process.pid}-` };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--url') o.url = v;
    else if (k === '--streams') o.streams = Number(v);
    else if (k === '--ramp-ms') o.rampMs = Number(v);
    else if (k === '--hold-ms') o.holdMs = Number(v);
    else if (k === '--prefix') o.prefix = v;
    else throw new Error(`unknown flag ${k}`);
  }
  const bad = [];
  if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(o.url)) bad.push('--url must be a loopback base URL');
  if (!Number.isInteger(o.streams) || o.streams < 1) bad.push('--streams must be an integer >= 1');
  if (!(o.rampMs >= 0)) bad.push('--ramp-ms must be >= 0');
  if (!(o.holdMs >= 1000)) bad.push('--hold-ms must be >= 1000');
  if (bad.length) throw new Error(bad.join('; '));
  return o;
}

const nowMs = () => performance.timeOrigin + performance.now();

// Lag histogram: bucket k holds lags in [1.01^k, 1.01^(k+1)) microseconds.
const LOG_STEP = Math.log(1.01);
const BUCKETS = 2400; // up to 1.01^2400 us, about 2.3e10 s
class Histogram {
  constructor() { this.counts = new Float64Array(BUCKETS); this.n = 0; this.max = 0; this.negative = 0; }
  add(ms) {
    if (ms < 0) { this.negative++; ms = 0; }
    const us = Math.max(ms * 1000, 1);
    this.counts[Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_STEP))]++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  quantile(q) {
    if (this.n === 0) return null;
    const rank = Math.ceil(q * this.n);
    let seen = 0;
    for (let k = 0; k < BUCKETS; k++) {
      seen += this.counts[k];
      if (seen >= rank) return Math.min(this.max, Math.exp((k + 0.5) * LOG_STEP) / 1000);
    }
    return this.max;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const version = JSON.parse(readFileSync(new URL('./node_modules/eventsource/package.json', import.meta.url))).version;
  const start = nowMs();
  const windowStart = start + o.rampMs + 1000;
  const windowEnd = windowStart + o.holdMs;
  const stopAt = windowEnd + 2000;
  const rssBase = process.memoryUsage.rss();
  const lag = new Histogram();
  const timeline = [];
  const perStreamWindow = new Uint32Array(o.streams);
  const sources = [];
  let events = 0, opened = 0, errors = 0, badData = 0;
  const onEvent = (i) => (ev) => {
    const t = nowMs();
    events++;
    const step = Math.floor((t - start) / 1000);
    while (timeline.length <= step) timeline.push(0);
    timeline[step]++;
    if (t >= windowStart && t < windowEnd) perStreamWindow[i]++;
    try {
      const sent = JSON.parse(ev.data).sent_unix_ns;
      if (typeof sent === 'number') lag.add(t - sent / 1e6);
      else badData++;
    } catch {
      badData++;
    }
  };
  const open = (i) => {
    const es = new EventSource(`${o.url}/sessions/${o.prefix}${i}/events`);
    const h = onEvent(i);
    for (const type of ['message', 'connected', 'tick', 'progress', 'done']) es.addEventListener(type, h);
    es.addEventListener('open', () => { opened++; });
    es.addEventListener('error', () => { errors++; });
    sources.push(es);
  };
  // Open the streams evenly over the ramp, in 10 ms steps.
  await new Promise((resolve) => {
    let next = 0;
    const tick = () => {
      const due = o.rampMs === 0 ? o.streams : Math.min(o.streams, Math.floor(((nowMs() - start) / o.rampMs) * o.streams) + 1);
      while (next < due) open(next++);
      if (next < o.streams) setTimeout(tick, 10);
      else resolve();
    };
    tick();
  });
  const rampDoneMs = nowMs() - start;
  await new Promise((r) => setTimeout(r, Math.max(0, windowEnd - nowMs())));
  const rssPeak = process.memoryUsage.rss();
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - nowMs())));
  for (const es of sources) es.close();
  const counts = Array.from(perStreamWindow).sort((a, b) => a - b);
  const out = {
    tool: 'eventsource',
    version,
    node: process.version,
    url: o.url,
    streams: o.streams,
    ramp_ms: o.rampMs,
    hold_ms: o.holdMs,
    ramp_done_ms: rampDoneMs,
    opened,
    errors,
    events,
    bad_data: badData,
    negative_lags: lag.negative,
    lag_p50_ms: lag.quantile(0.5),
    lag_p99_ms: lag.quantile(0.99),
    lag_max_ms: lag.n ? lag.max : null,
    window_events_min: counts[0],
    window_events_median: counts[Math.floor(counts.length / 2)],
    rss_base_bytes: rssBase,
    rss_peak_bytes: rssPeak,
    rss_per_stream_kb: (rssPeak - rssBase) / o.streams / 1024,
    timeline: { start_unix_ms: start, step_ms: 1000, points: timeline.map((e) => ({ events: e })) },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`farm.js: ${err.message}\n`);
  process.exit(2);
});
