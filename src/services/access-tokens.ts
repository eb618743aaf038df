/**
 * Users' access tokens: short-lived JWTs signed with HS256 (`jose`). Verification accepts only
 * HS256 (an `alg: none` or RS256 header is refused before any key is used), only our `iss`, `aud`
 * and `typ`, and only a token that has not expired and is no older than the access TTL. A valid
 * signature is not enough: the middleware also checks the session the token names (`sid`), so a
 * signed-out session stops its tokens at once.
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config';
import { isId } from '../domain/ids';

/** RFC 9068's media type for JWT access tokens: a token of another kind signed with the same key is refused. */
const ACCESS_TOKEN_TYPE = 'at+jwt';
const ALGORITHM = 'HS256';
/** the `mfa` claim of a token whose user must set up MFA before anything else */
const MFA_SETUP_REQUIRED = 'setup_required';

export interface AccessTokenSettings {
  key: Uint8Array;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export function accessTokenSettings(config: Config): AccessTokenSettings {
  return {
    key: new TextEncoder().encode(config.JWT_SECRET),
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    ttlSeconds: config.JWT_ACCESS_TTL_S,
  };
}

/** What an access token says: who (`sub`), through which session (`sid`), in which tenant (`tid`). */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** null: a platform administrator acting for the platform */
  tenantId: string | null;
  /** the tenant requires MFA and the user has not enabled it (`mfa: "setup_required"`): only `account:self` */
  mfaSetupRequired?: boolean;
}

export async function signAccessToken(
  settings: AccessTokenSettings,
  claims: AccessClaims,
  now: Date = new Date(),
): Promise<{ token: string; expiresIn: number }> {
  const issuedAt = Math.floor(now.getTime() / 1000);
  const token = await new SignJWT({
    sid: claims.sessionId,
    ...(claims.tenantId ? { tid: claims.tenantId } : {}),
    ...(claims.mfaSetupRequired ? { mfa: MFA_SETUP_REQUIRED } : {}),
  })
    .setProtectedHeader({ alg: ALGORITHM, typ: ACCESS_TOKEN_TYPE })
    .setSubject(claims.userId)
    // unique per token: two tokens of one session issued in the same second are still two credentials
    .setJti(randomUUID())
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + settings.ttlSeconds)
    .sign(settings.key);
  return { token, expiresIn: settings.ttlSeconds };
}

/** The token's claims, or null when it is not one of our valid access tokens (for any reason). */
export async function verifyAccessToken(
  settings: AccessTokenSettings,
  token: string,
): Promise<AccessClaims | null> {
  try {
    const { payload } = await jwtVerify(token, settings.key, {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      typ: ACCESS_TOKEN_TYPE,
      maxTokenAge: settings.ttlSeconds,
      requiredClaims: ['sub', 'sid', 'iat', 'exp'],
    });
    const { sub, sid, tid, mfa } = payload;
    if (typeof sub !== 'string' || !isId('user', sub)) return null;
    if (typeof sid !== 'string' || !isId('session', sid)) return null;
    if (tid !== undefined && (typeof tid !== 'string' || !isId('tenant', tid))) return null;
    if (mfa !== undefined && mfa !== MFA_SETUP_REQUIRED) return null;
    return {
      userId: sub,
      sessionId: sid,
      tenantId: tid ?? null,
      ...(mfa === MFA_SETUP_REQUIRED ? { mfaSetupRequired: true } : {}),
    };
  } catch (err) {
    // Anything jose refuses is just an invalid token; anything else is a fault of ours.
    if (err instanceof errors.JOSEError) return null;
    throw err;
  }
}
