/**
 * Password rules and argon2id parameters, pure. The rules follow NIST SP 800-63B and OWASP ASVS:
 * length only (12 to 128 characters), no composition rules, every printable character allowed.
 * Passwords are compared after NFKC normalization, so the same password typed with composed or
 * decomposed characters (or full-width digits) is the same password.
 */

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

/** Unicode general category Cc: C0, DEL and C1. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** The form a password is hashed and verified in. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Length in characters as people count them: code points of the normalized form, not UTF-16 units. */
export function passwordLength(password: string): number {
  return [...normalizePassword(password)].length;
}

/** Why `password` cannot be set, or null when it can. */
export function passwordProblem(password: string): string | null {
  if (CONTROL_CHARACTER.test(password)) return 'must not contain control characters';
  const length = passwordLength(password);
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters long`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters long`;
  return null;
}

/** argon2id cost: memory in KiB, iterations, lanes. */
export interface HashParams {
  memoryKib: number;
  timeCost: number;
  parallelism: number;
}

/**
 * The floor, from the OWASP Password Storage Cheat Sheet (ASVS refers to it): m = 19 MiB, t = 2,
 * p = 1. Configuration may raise each value, never lower it.
 */
export const MIN_HASH_PARAMS: HashParams = { memoryKib: 19_456, timeCost: 2, parallelism: 1 };

/** The argon2 version every hash of ours is made with (1.3). */
const ARGON2_VERSION = 19;

/** What a stored PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) says about how it was made. */
export interface StoredHashInfo {
  algorithm: string;
  version: number;
  params: HashParams;
}

/** Reads a PHC string's algorithm, version and parameters; null when it is not one. */
export function parseStoredHash(stored: string): StoredHashInfo | null {
  const match = /^\$(argon2(?:id|i|d))\$v=(\d+)\$([^$]+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(stored);
  if (!match) return null;
  const [, algorithm, version, list] = match;
  const values = new Map<string, number>();
  for (const pair of (list ?? '').split(',')) {
    const [key, value] = pair.split('=');
    if (key === undefined || value === undefined || !/^\d+$/.test(value)) return null;
    values.set(key, Number(value));
  }
  const memoryKib = values.get('m');
  const timeCost = values.get('t');
  const parallelism = values.get('p');
  if (memoryKib === undefined || timeCost === undefined || parallelism === undefined) return null;
  return {
    algorithm: algorithm ?? '',
    version: Number(version),
    params: { memoryKib, timeCost, parallelism },
  };
}

/**
 * True when a stored hash is weaker than `current` and is to be replaced on the next successful
 * login: another algorithm or version, less memory or fewer iterations. A hash made stronger than
 * the current parameters (they were lowered since) is kept. Parallelism is not a strength: more
 * lanes with the same memory and time make an attack no harder, so it never triggers a rehash.
 */
export function needsRehash(stored: string, current: HashParams): boolean {
  const info = parseStoredHash(stored);
  if (!info || info.algorithm !== 'argon2id' || info.version !== ARGON2_VERSION) return true;
  return info.params.memoryKib < current.memoryKib || info.params.timeCost < current.timeCost;
}
