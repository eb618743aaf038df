/**
 * stripe-mock for the suite: global-setup starts one (built once into the tool cache like the
 * Temporal CLI) and exports its URL; a test puts a `StripeRecorder` in front of it to see what the
 * Stripe client sends and to stage answers stripe-mock never gives (declines, outages).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { STRIPE_MOCK, resolveTool, type ToolLog } from '../../temporal/tools';
import { stopChild } from '../../temporal/child-process';

export interface StripeMockHandle {
  /** `http://127.0.0.1:<port>` */
  url: string;
  source: string;
  stop(): Promise<void>;
}

const LISTENING = /Listening for HTTP at address: (\S+)/;

/** Resolves (building it if needed) and starts stripe-mock on free loopback ports; fails loudly if it cannot. */
export async function startStripeMock(opts: {
  log: ToolLog;
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}): Promise<StripeMockHandle> {
  const found = await resolveTool(STRIPE_MOCK, opts.log, opts.env ?? process.env);
  if (found.path === undefined) {
    throw new Error(
      `stripe-mock ${STRIPE_MOCK.version} is required by the test suite and is unavailable: ${found.why}. ` +
        `Install Go (npm test builds it once into the tool cache), run npm run tools:install, ` +
        `or set ${STRIPE_MOCK.pathVariable} to a stripe-mock binary.`,
    );
  }
  // Port 0 lets the kernel choose, so parallel runs never collide; HTTPS is bound to loopback
  // too, because stripe-mock otherwise opens it on every interface at 12112.
  const child = spawn(found.path, ['-http-addr', '127.0.0.1:0', '-https-addr', '127.0.0.1:0'], {
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = () => stopChild(child, 5000);
  try {
    const address = await listeningAddress(child, opts.startTimeoutMs ?? 30_000);
    return { url: `http://${address}`, source: found.source, stop };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

function listeningAddress(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`stripe-mock did not start within ${timeoutMs} ms: ${output.trim()}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      const match = LISTENING.exec(output);
      if (!match?.[1]) return;
      clearTimeout(timer);
      resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`stripe-mock exited early (code ${code}, signal ${signal}): ${output.trim()}`));
    });
  });
}

/** The suite's stripe-mock, started by global-setup. */
export function stripeMockUrl(): string {
  const url = process.env.PODPLANE_TEST_STRIPE_MOCK_URL;
  if (!url)
    throw new Error(
      'PODPLANE_TEST_STRIPE_MOCK_URL is not set: run the tests through jest (global-setup starts stripe-mock)',
    );
  return url;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** the form-encoded body Stripe's v1 API takes */
  form: URLSearchParams;
}

interface StagedAnswer {
  status: number;
  body: unknown;
}

/** An HTTP proxy in front of stripe-mock that records every request and can answer in its place. */
export class StripeRecorder {
  readonly requests: RecordedRequest[] = [];
  private readonly staged: StagedAnswer[] = [];
  private server: http.Server | undefined;
  private port = 0;

  constructor(private readonly target: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next request is answered with this status and JSON body instead of reaching stripe-mock. */
  answerNext(status: number, body: unknown): void {
    this.staged.push({ status, body });
  }

  /** The idempotency keys of the requests to `path`, in order. */
  keysSentTo(path: string): (string | undefined)[] {
    return this.requests
      .filter((r) => r.path === path)
      .map((r) => {
        const key = r.headers['idempotency-key'];
        return Array.isArray(key) ? key[0] : key;
      });
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.handle(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    this.requests.push({
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0] ?? '',
      headers: req.headers,
      form: new URLSearchParams(body.toString('utf8')),
    });
    const staged = this.staged.shift();
    if (staged) {
      res.writeHead(staged.status, { 'content-type': 'application/json', 'request-id': 'req_staged' });
      res.end(JSON.stringify(staged.body));
      return;
    }
    const upstream = http.request(
      new URL(req.url ?? '/', this.target),
      { method: req.method, headers: { ...req.headers, host: new URL(this.target).host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(err.message);
    });
    upstream.end(body);
  }
}
