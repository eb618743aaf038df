/** Secrets never reach a log line; JSON lines by default, readable lines on a developer's terminal. */
import { Writable } from 'node:stream';
import { createLogger, wantsPrettyLogs } from '../../src/logger';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info' }, sink) };
}

describe('logger redaction', () => {
  it('blanks authorization, cookies, passwords, tokens and secrets at any usual depth', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        req: {
          headers: { authorization: 'Bearer ppt_SECRET1', cookie: 'sid=SECRET2', accept: 'application/json' },
        },
        password: 'SECRET3',
        user: { password: 'SECRET4', token: 'SECRET5', email: 'a@b.test' },
        config: { jwtSecret: 'SECRET6', secret: 'SECRET7' },
        body: { card: { cvc: 'SECRET8' }, refreshToken: 'SECRET9' },
      },
      'hello',
    );
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/SECRET\d/);
    expect(text).toContain('a@b.test');
    expect(text).toContain('application/json');
    expect(lines[0]).toMatchObject({
      msg: 'hello',
      password: '[redacted]',
      user: { password: '[redacted]' },
    });
  });
});

describe('pretty logs', () => {
  it.each([
    [{}, true, true],
    [{ NODE_ENV: 'development' }, true, true],
    [{ NODE_ENV: 'test' }, true, true],
    [{ NODE_ENV: 'development' }, false, false],
    [{ NODE_ENV: 'production' }, true, false],
    [{ NODE_ENV: 'development', CI: 'true' }, true, false],
    [{ NODE_ENV: 'development', CI: '1' }, true, false],
    [{ NODE_ENV: 'development', CI: 'false' }, true, true],
    [{ NODE_ENV: 'production', LOG_PRETTY: 'true' }, false, true],
    [{ CI: 'true', LOG_PRETTY: '1' }, false, true],
    [{ NODE_ENV: 'development', LOG_PRETTY: 'false' }, true, false],
    [{ LOG_PRETTY: '0' }, true, false],
    [{ LOG_PRETTY: 'maybe' }, true, true],
  ])('with %j and a TTY %s: pretty %s', (env, tty, pretty) => {
    expect(wantsPrettyLogs(env, tty)).toBe(pretty);
  });

  function capturePretty() {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk.toString('utf8'));
        cb();
      },
    });
    // Writes reach the sink synchronously: no waiting needed.
    return { out, logger: createLogger({ level: 'info', name: 'podplane-api', pretty: true }, sink) };
  }

  it('writes a request as one readable line: its message, request id and tenant', () => {
    const { out, logger } = capturePretty();
    logger
      .child({ reqId: 'req-1' })
      .info(
        { method: 'GET', route: '/api/v1/tenants/:id', status: 200, durationMs: 3, tenantId: 'ten_1' },
        'GET /api/v1/tenants/:id 200 3ms',
      );
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(
      /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO \(podplane-api\): GET \/api\/v1\/tenants\/:id 200 3ms \{"reqId":"req-1","tenantId":"ten_1"\}\n$/,
    );
  });

  it('keeps other fields on the line, redacts secrets and puts error stacks below', () => {
    const { out, logger } = capturePretty();
    logger.info({ podId: 'pod_1', status: 'ACTIVE', token: 'SECRET1' }, 'pod ready');
    logger.error({ err: new Error('boom') }, 'step failed');
    const [info, error] = out as [string, string];
    expect(info).toMatch(
      /INFO \(podplane-api\): pod ready \{"podId":"pod_1","status":"ACTIVE","token":"\[redacted\]"\}\n$/,
    );
    expect(info.split('\n')).toHaveLength(2);
    expect(error).toMatch(/ERROR \(podplane-api\): step failed/);
    expect(error).toMatch(/\n\s+err: \{[\s\S]*"message": "boom"[\s\S]*at /);
    expect(out.join('')).not.toContain('SECRET1');
  });

  it('writes JSON lines into a given destination unless asked for pretty ones', () => {
    const { lines, logger } = capture();
    logger.info({ podId: 'pod_1' }, 'hello');
    expect(lines[0]).toMatchObject({ msg: 'hello', podId: 'pod_1', name: 'podplane' });
  });
});
