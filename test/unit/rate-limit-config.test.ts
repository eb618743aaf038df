/** The rate-limit settings: DESIGN.md §8 defaults, TRUST_PROXY as Express takes it, malformed values named. */
import { ConfigError, parseConfig } from '../../src/config';

function variableOf(env: Record<string, string>): string {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.variable;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('rate-limit configuration', () => {
  it('defaults to the limits of DESIGN.md §8, in memory, with no proxy trusted', () => {
    expect(parseConfig({})).toMatchObject({
      RATE_LIMIT_ENABLED: true,
      RATE_LIMIT_AUTH_PER_15_MIN: 5,
      RATE_LIMIT_PASSWORD_RESET_PER_HOUR: 3,
      RATE_LIMIT_API_PER_MIN: 100,
      RATE_LIMIT_ADMIN_PER_MIN: 60,
      RATE_LIMIT_WEBHOOK_PER_MIN: 500,
      RATE_LIMIT_PREFIX: 'podplane:rl:',
      TRUST_PROXY: false,
    });
    expect(parseConfig({}).REDIS_URL).toBeUndefined();
  });

  it.each([
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
    ['loopback', ['loopback']],
    [' 10.0.0.1 , 10.1.0.0/16,loopback ', ['10.0.0.1', '10.1.0.0/16', 'loopback']],
    ['fd00::/8,uniquelocal,linklocal', ['fd00::/8', 'uniquelocal', 'linklocal']],
  ])('reads TRUST_PROXY=%j as %j', (value, expected) => {
    expect(parseConfig({ TRUST_PROXY: value }).TRUST_PROXY).toEqual(expected);
  });

  it.each<Record<string, string>>([
    { TRUST_PROXY: 'yes' },
    { TRUST_PROXY: '10.0.0.0/33' },
    { TRUST_PROXY: 'fd00::/129' },
    { TRUST_PROXY: '10.0.0.1,proxy.internal' },
    { TRUST_PROXY: ',' },
    { REDIS_URL: 'http://127.0.0.1:6379' },
    { REDIS_URL: '127.0.0.1:6379' },
    { RATE_LIMIT_PREFIX: 'has space:' },
    { RATE_LIMIT_ENABLED: 'sometimes' },
    { RATE_LIMIT_AUTH_PER_15_MIN: '0' },
    { RATE_LIMIT_API_PER_MIN: '1.5' },
    { RATE_LIMIT_WEBHOOK_PER_MIN: 'many' },
  ])('names the malformed variable in %j', (env) => {
    expect(variableOf(env)).toBe(Object.keys(env)[0]);
  });

  it('takes limits up to a billion a window (bench/api.bench.ts runs unthrottled with them)', () => {
    expect(parseConfig({ RATE_LIMIT_API_PER_MIN: '1000000000' }).RATE_LIMIT_API_PER_MIN).toBe(1_000_000_000);
    expect(variableOf({ RATE_LIMIT_API_PER_MIN: '1000000001' })).toBe('RATE_LIMIT_API_PER_MIN');
  });

  it('takes a Redis URL with credentials and TLS', () => {
    expect(parseConfig({ REDIS_URL: 'rediss://user:pass@redis.internal:6380/2' }).REDIS_URL).toBe(
      'rediss://user:pass@redis.internal:6380/2',
    );
  });
});
