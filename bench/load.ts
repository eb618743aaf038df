/** Drives load from a separate process (autocannon), so the server under test has the event loop to itself. */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export interface LoadResult {
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

const AUTOCANNON = path.join(__dirname, '../node_modules/.bin/autocannon');

export async function load(opts: {
  url: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
}): Promise<LoadResult> {
  const args = ['--json', '-c', String(opts.connections), '-d', String(opts.seconds)];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}=${v}`);
  args.push(opts.url);
  const { stdout } = await promisify(execFile)(AUTOCANNON, args, { maxBuffer: 16 * 1024 * 1024 });
  const r = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    timeouts: number;
  };
  return {
    requestsPerSec: r.requests.average,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

/** POST load with a unique body per request ("{n}" in `template`), from bench/post-load.mjs in its own process. */
export async function postLoad(opts: {
  url: string;
  connections: number;
  seconds: number;
  headers: Record<string, string>;
  template: string;
}): Promise<LoadResult> {
  const script = path.join(__dirname, 'post-load.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, [
    script,
    opts.url,
    String(opts.connections),
    String(opts.seconds),
    JSON.stringify(opts.headers),
    opts.template,
  ]);
  return JSON.parse(stdout) as LoadResult;
}

export async function report(name: string, data: Record<string, unknown>): Promise<void> {
  const dir = path.join(__dirname, 'results');
  await mkdir(dir, { recursive: true });
  const body = { name, at: new Date().toISOString(), node: process.version, ...data };
  await writeFile(path.join(dir, `${name}.json`), JSON.stringify(body, null, 2));
  process.stdout.write(`\n[bench] ${name}\n${JSON.stringify(data, null, 2)}\n`);
}

export interface Comparison {
  api: LoadResult;
  baseline: LoadResult;
  /** the API's requests per second over the baseline's */
  throughput_ratio: number;
}

/**
 * GET load on `url`, then on `baselineUrl`, the same way: each warmed up for `warmupSeconds` first
 * (JIT, pools, PostgreSQL's plans) so neither is measured cold.
 */
export async function versusBaseline(opts: {
  url: string;
  baselineUrl: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  headers: Record<string, string>;
}): Promise<Comparison> {
  const { connections, seconds, warmupSeconds, headers } = opts;
  await load({ url: opts.url, connections, seconds: warmupSeconds, headers });
  const api = await load({ url: opts.url, connections, seconds, headers });
  await load({ url: opts.baselineUrl, connections, seconds: warmupSeconds });
  const baseline = await load({ url: opts.baselineUrl, connections, seconds });
  return {
    api,
    baseline,
    throughput_ratio: Math.round((api.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000,
  };
}
