/**
 * serve(): a port another process listens on is an error naming the port and PORT — never an API
 * reported as listening while its requests reach the other program (Express 5's `app.listen`
 * calls its callback on `error` too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import express from 'express';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { serve } from '../../src/cli/serve';
import { freePort } from '../../temporal/dev-server';
import { waitFor } from '../helpers/wait';

const logger = createLogger({ level: 'silent', name: 'serve-test' });
let other: ChildProcess | undefined;

afterEach(() => {
  other?.kill('SIGKILL');
  other = undefined;
});

/** Another program listening on `port`, in its own process. */
async function occupy(port: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      "require('net').createServer((c)=>{c.on('error',()=>{});c.end('other')})" +
        ".listen(Number(process.argv[1]),'127.0.0.1',()=>process.stdout.write('listening\\n'))",
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  other = child;
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  await waitFor(() => Promise.resolve(out.includes('listening')), {
    what: `another process listening on ${port}`,
    timeoutMs: 10_000,
    intervalMs: 10,
  });
}

describe('serve', () => {
  it('rejects with the port and PORT when another process listens there', async () => {
    const port = await freePort();
    await occupy(port);
    const app = express();
    app.get('/', (_req, res) => res.send('ours'));
    const config = parseConfig({ PORT: String(port), HOST: '127.0.0.1' });
    await expect(serve(app, config, logger)).rejects.toThrow(`port ${port} (PORT) is already in use`);
  });

  it('listens on a free port, answers, and drains', async () => {
    const port = await freePort();
    const app = express();
    app.get('/', (_req, res) => res.send('ours'));
    const api = await serve(app, parseConfig({ PORT: String(port), HOST: '127.0.0.1' }), logger);
    try {
      expect(api.url).toBe(`http://127.0.0.1:${port}`);
      expect(await (await fetch(api.url)).text()).toBe('ours');
    } finally {
      await api.drain(1000);
    }
    expect(api.server.listening).toBe(false);
  });
});
