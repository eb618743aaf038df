// Load generator for POST benchmarks, run as its own process: `connections` loops post for
// `seconds`, each body made unique by replacing "{n}" with a request counter. Prints JSON.
const [url, connections, seconds, headersJson, template] = process.argv.slice(2);
const headers = JSON.parse(headersJson);
const deadline = Date.now() + Number(seconds) * 1000;
const latencies = [];
let n = 0;
let non2xx = 0;
let errors = 0;
async function loop() {
  while (Date.now() < deadline) {
    const body = template.replaceAll('{n}', `${process.pid}-${n++}`);
    const t0 = performance.now();
    try {
      const res = await fetch(url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      if (res.status < 200 || res.status >= 300) non2xx++;
      latencies.push(performance.now() - t0);
    } catch {
      errors++;
    }
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: Number(connections) }, loop));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : 0;
process.stdout.write(
  JSON.stringify({
    requestsPerSec: Math.round((latencies.length / elapsed) * 10) / 10,
    latencyP50Ms: Math.round(pct(0.5) * 10) / 10,
    latencyP99Ms: Math.round(pct(0.99) * 10) / 10,
    requests: latencies.length,
    non2xx,
    errors,
    timeouts: 0,
  }),
);
