/** Which answers an Idempotency-Key keeps: definitive ones are replayed, transient ones free the key. */
import { IDEMPOTENCY_LEASE_MS, IDEMPOTENCY_TTL_MS, keepsAnswer } from '../../src/api/middleware/idempotency';

describe('keepsAnswer', () => {
  it.each<[number, boolean]>([
    [200, true],
    [201, true],
    [202, true],
    [400, true],
    [403, true],
    [404, true],
    [422, true],
    [409, false],
    [429, false],
    [500, false],
    [502, false],
    [503, false],
    [504, false],
  ])('status %i → kept: %s', (status, kept) => {
    expect(keepsAnswer(status)).toBe(kept);
  });
});

describe('lease', () => {
  it('is short next to the 24 h a stored answer is kept', () => {
    expect(IDEMPOTENCY_TTL_MS).toBe(24 * 3600 * 1000);
    expect(IDEMPOTENCY_LEASE_MS).toBeGreaterThanOrEqual(10_000);
    expect(IDEMPOTENCY_LEASE_MS).toBeLessThanOrEqual(5 * 60_000);
  });
});
