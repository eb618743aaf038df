/** Secrets never reach a log line. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';

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
