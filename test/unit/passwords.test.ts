/** Password rules, argon2id parameters and the rehash decision (pure), and hashing itself (argon2). */
import {
  MIN_HASH_PARAMS,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  needsRehash,
  normalizePassword,
  parseStoredHash,
  passwordLength,
  passwordProblem,
} from '../../src/domain/passwords';
import { hashPassword, verifyPassword } from '../../src/services/passwords';

describe('password rules: length only, counted in characters after NFKC', () => {
  it.each([
    ['11 letters', 'a'.repeat(11), false],
    ['12 letters', 'a'.repeat(12), true],
    ['128 letters', 'a'.repeat(128), true],
    ['129 letters', 'a'.repeat(129), false],
    ['a passphrase of lower-case words and spaces', 'correct horse battery staple', true],
    ['twelve spaces', ' '.repeat(12), true],
    ['digits only', '123456789012', true],
    ['12 emoji (24 UTF-16 units, 12 characters)', '😀'.repeat(12), true],
    ['11 emoji (22 UTF-16 units, 11 characters)', '😀'.repeat(11), false],
    ['128 emoji', '😀'.repeat(128), true],
    ['129 emoji', '😀'.repeat(129), false],
    ['6 decomposed é (12 code points, 6 after NFKC)', 'e\u0301'.repeat(6), false],
    ['12 composed é', '\u00e9'.repeat(12), true],
    ['4 ﬃ ligatures (12 characters after NFKC)', '\ufb03'.repeat(4), true],
    ['12 full-width digits', '１２３４５６７８９０１２', true],
    ['NUL inside', `${'a'.repeat(12)}\u0000`, false],
    ['line feed inside', `${'a'.repeat(6)}\n${'a'.repeat(6)}`, false],
    ['C1 control inside', `${'a'.repeat(12)}\u0085`, false],
    ['empty', '', false],
  ])('%s → acceptable: %s', (_label, password, acceptable) => {
    expect(passwordProblem(password) === null).toBe(acceptable);
  });

  it('counts what people count', () => {
    expect(passwordLength('😀'.repeat(3))).toBe(3);
    expect(passwordLength('e\u0301')).toBe(1);
    expect(passwordLength('\ufb03')).toBe(3);
    expect(PASSWORD_MIN_LENGTH).toBe(12);
    expect(PASSWORD_MAX_LENGTH).toBe(128);
  });

  it('normalizes composed and decomposed spellings to one password', () => {
    expect(normalizePassword('cafe\u0301 au lait!')).toBe(normalizePassword('caf\u00e9 au lait!'));
    expect(normalizePassword('１２３')).toBe('123');
  });
});

describe('stored argon2 hashes', () => {
  const salt = 'c29tZXNhbHRzb21lc2FsdA';
  const digest = 'SIWTcZfaIr5nAm+bcTX9Wn7xuXFZz0lC6lIdu1ER9Js';
  const phc = (alg: string, v: number, m: number, t: number, p: number) =>
    `$${alg}$v=${v}$m=${m},t=${t},p=${p}$${salt}$${digest}`;

  it('are read for their algorithm, version and parameters', () => {
    expect(parseStoredHash(phc('argon2id', 19, 19456, 2, 1))).toEqual({
      algorithm: 'argon2id',
      version: 19,
      params: { memoryKib: 19456, timeCost: 2, parallelism: 1 },
    });
    expect(parseStoredHash('$2b$12$abcdefghijklmnopqrstuuvwxyz0123456789ABCDEFGHIJKLMNOPQ')).toBeNull();
    expect(parseStoredHash('$argon2id$v=19$m=x,t=2,p=1$a$b')).toBeNull();
    expect(parseStoredHash('$argon2id$v=19$t=2,p=1$a$b')).toBeNull();
    expect(parseStoredHash('')).toBeNull();
  });

  const current = { memoryKib: 19456, timeCost: 2, parallelism: 1 };
  it.each([
    ['made with the current parameters', phc('argon2id', 19, 19456, 2, 1), current, false],
    ['less memory than now', phc('argon2id', 19, 19456, 2, 1), { ...current, memoryKib: 65536 }, true],
    ['fewer iterations than now', phc('argon2id', 19, 19456, 2, 1), { ...current, timeCost: 3 }, true],
    ['stronger than now (parameters lowered since): kept', phc('argon2id', 19, 65536, 3, 1), current, false],
    ['more lanes than now: not weaker', phc('argon2id', 19, 19456, 2, 4), current, false],
    [
      'fewer lanes than now: not weaker',
      phc('argon2id', 19, 19456, 2, 1),
      { ...current, parallelism: 4 },
      false,
    ],
    ['argon2i', phc('argon2i', 19, 19456, 2, 1), current, true],
    ['argon2d', phc('argon2d', 19, 65536, 3, 1), current, true],
    ['argon2 version 1.0', phc('argon2id', 16, 65536, 3, 1), current, true],
    ['not an argon2 hash', '$2b$12$abcdefghijklmnopqrstuu', current, true],
  ])('%s → rehash: %s', (_label, stored, params, rehash) => {
    expect(needsRehash(stored, params)).toBe(rehash);
  });

  it('never ask for less than the OWASP floor', () => {
    expect(MIN_HASH_PARAMS).toEqual({ memoryKib: 19456, timeCost: 2, parallelism: 1 });
  });
});

describe('hashing (argon2id)', () => {
  it('makes an argon2id hash with the given parameters that verifies the same password in any normal form', async () => {
    const stored = await hashPassword('cafe\u0301 au lait, twice', MIN_HASH_PARAMS);
    expect(parseStoredHash(stored)).toEqual({ algorithm: 'argon2id', version: 19, params: MIN_HASH_PARAMS });
    expect(needsRehash(stored, MIN_HASH_PARAMS)).toBe(false);
    expect(await verifyPassword(stored, 'caf\u00e9 au lait, twice')).toBe(true);
    expect(await verifyPassword(stored, 'cafe au lait, twice')).toBe(false);
    // a salt per hash: the same password never hashes the same twice
    expect(await hashPassword('cafe\u0301 au lait, twice', MIN_HASH_PARAMS)).not.toBe(stored);
  });

  it('treats a stored value that is no argon2 hash as a mismatch, not an error', async () => {
    expect(await verifyPassword('not a hash', 'whatever password')).toBe(false);
  });
});
