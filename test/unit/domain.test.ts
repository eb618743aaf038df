/** Pure domain rules: ids, tenant slugs, currencies, transitions, token format and scopes. */
import { TOKEN_SHAPE, hashToken, scopesWithin, visiblePrefix } from '../../src/domain/api-tokens';
import { isId, newId } from '../../src/domain/ids';
import {
  DEFAULT_DUNNING_POLICY,
  canTransition,
  isCurrency,
  slugProblem,
  type TenantStatus,
} from '../../src/domain/tenants';
import { generateTokenSecret } from '../../src/services/api-tokens';

describe('ids', () => {
  it('are prefixed, well-formed and sort by creation time', () => {
    const a = newId('tenant', 1_700_000_000_000);
    const b = newId('tenant', 1_700_000_000_001);
    const c = newId('tenant', 1_700_000_000_001);
    expect(a).toMatch(/^ten_[0-9a-z]{26}$/);
    expect([c, b, a].sort()).toEqual([a, b, c]);
    expect(isId('tenant', a)).toBe(true);
    expect(isId('token', a)).toBe(false);
    expect(isId('tenant', 'ten_../../etc')).toBe(false);
  });
});

describe('tenant slugs', () => {
  it.each([
    ['acme', undefined],
    ['acme-hosting-2', undefined],
    ['a1b', undefined],
    ['ab', 'must be'],
    ['Acme', 'must be'],
    ['-acme', 'must be'],
    ['acme-', 'must be'],
    ['ac--me', 'consecutive'],
    ['a'.repeat(41), 'must be'],
    ['a'.repeat(40), undefined],
    ['admin', 'reserved'],
    ['acme.test', 'must be'],
    ['acme hosting', 'must be'],
  ])('%s → %s', (slug, problem) => {
    const got = slugProblem(slug);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });
});

describe('currencies', () => {
  it.each([
    ['EUR', true],
    ['USD', true],
    ['JPY', true],
    ['eur', false],
    ['EURO', false],
    ['XYZ', false],
    ['', false],
  ])('%s → %s', (code, ok) => expect(isCurrency(code)).toBe(ok));
});

describe('tenant transitions', () => {
  const table: [TenantStatus, TenantStatus, boolean][] = [
    ['PENDING', 'ACTIVE', true],
    ['PENDING', 'PENDING', true],
    ['ACTIVE', 'ACTIVE', true],
    ['ACTIVE', 'SUSPENDED', true],
    ['SUSPENDED', 'ACTIVE', true],
    ['PENDING', 'SUSPENDED', false],
    ['CLOSED', 'ACTIVE', false],
    ['ACTIVE', 'PENDING', false],
  ];
  it.each(table)('%s → %s: %s', (from, to, ok) => expect(canTransition(from, to)).toBe(ok));
});

describe('default dunning policy', () => {
  it('retries on days 1, 3, 5, 7 and terminates at 30 days overdue', () => {
    expect(DEFAULT_DUNNING_POLICY).toEqual({
      retryOffsetsDays: [1, 3, 5, 7],
      suspendAfterLastRetry: true,
      terminateAfterDaysOverdue: 30,
      notifyOnEveryFailure: true,
    });
    expect(Object.isFrozen(DEFAULT_DUNNING_POLICY)).toBe(true);
  });
});

describe('API tokens', () => {
  it('are 256-bit random secrets with a visible prefix and a SHA-256 hash', () => {
    const secrets = new Set(Array.from({ length: 200 }, generateTokenSecret));
    expect(secrets.size).toBe(200);
    const [secret] = [...secrets] as [string];
    expect(secret).toMatch(TOKEN_SHAPE);
    expect(Buffer.from(secret.slice(4), 'base64url')).toHaveLength(32);
    expect(hashToken(secret)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(secret)).toBe(hashToken(secret));
    expect(visiblePrefix(secret)).toBe(secret.slice(0, 12));
  });

  it('may only mint scopes they hold', () => {
    expect(scopesWithin(['read'], ['read', 'write'])).toBe(true);
    expect(scopesWithin(['read', 'write'], ['read'])).toBe(false);
    expect(scopesWithin([], ['read'])).toBe(true);
  });
});
