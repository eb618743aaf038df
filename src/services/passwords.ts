/**
 * argon2id hashing of users' passwords (the rules are pure, in domain/passwords.ts). Hashing runs
 * on libuv's thread pool, so a login never blocks the event loop; it is kept out of database
 * transactions.
 */
import { randomBytes } from 'node:crypto';
import { argon2id, hash, verify } from 'argon2';
import type { Config } from '../config';
import { normalizePassword, type HashParams } from '../domain/passwords';

export function hashParamsOf(config: Config): HashParams {
  return {
    memoryKib: config.PASSWORD_HASH_MEMORY_KIB,
    timeCost: config.PASSWORD_HASH_TIME_COST,
    parallelism: config.PASSWORD_HASH_PARALLELISM,
  };
}

export function hashPassword(password: string, params: HashParams): Promise<string> {
  return hash(normalizePassword(password), {
    type: argon2id,
    memoryCost: params.memoryKib,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  });
}

/** False for a wrong password and for a stored value that is no argon2 hash at all. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, normalizePassword(password));
  } catch {
    return false;
  }
}

/** One hash per parameter set that no password matches (its input is random and thrown away). */
const dummyHashes = new Map<string, Promise<string>>();

function dummyHash(params: HashParams): Promise<string> {
  const key = `${params.memoryKib}:${params.timeCost}:${params.parallelism}`;
  let dummy = dummyHashes.get(key);
  if (!dummy) {
    dummy = hashPassword(randomBytes(32).toString('base64url'), params);
    // awaited by every login of an unknown email; this branch only keeps an early failure from going unhandled
    dummy.catch(() => undefined);
    dummyHashes.set(key, dummy);
  }
  return dummy;
}

/** Makes the dummy hash ahead of the first login, so that login costs no more than any other. */
export function prepareDummyHash(params: HashParams): void {
  void dummyHash(params);
}

/**
 * Spends on an unknown email the time a wrong password costs a known one: the answer and its
 * timing are the same, so a login cannot tell which emails have accounts.
 */
export async function verifyAgainstNobody(password: string, params: HashParams): Promise<void> {
  await verifyPassword(await dummyHash(params), password);
}
