/**
 * /api/v1/auth/mfa: a signed-in user's TOTP second factor (RFC 6238). Setup returns a secret and
 * an otpauth URI and leaves MFA pending; enabling it with a code from that secret turns it on and
 * hands out ten single-use recovery codes once; disabling it and regenerating the recovery codes
 * each need a TOTP or recovery code. Every route needs the user's own access token
 * (`account:self`), which a member who must still set up MFA holds too.
 */
import type { Request } from 'express';
import type { Config } from '../../config';
import { AppError } from '../../domain/errors';
import type { Principal } from '../../domain/principal';
import {
  disableTotp,
  enableTotp,
  mfaSettings,
  regenerateRecoveryCodes,
  setupTotp,
  type MfaActor,
} from '../../services/mfa';
import { route, type Route } from '../http/route';
import { EnableTotpBody, RecoveryCodesView, SecondFactorBody, TotpSetupView } from './mfa.schemas';

const self = { caller: 'any', permission: 'account:self' } as const;

function userOf(principal: Principal): string {
  if (principal.actorType !== 'user')
    throw new AppError('forbidden', 'this route needs a user’s access token');
  return principal.actorId;
}

function actorOf(req: Request, principal: Principal): MfaActor {
  return { tenantId: principal.tenantId, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

export function mfaRoutes(deps: { config: Config }): Route[] {
  const settings = mfaSettings(deps.config);
  return [
    route({
      operationId: 'setupTotp',
      // no code is checked here: the caller's own budget, not the sign-in one
      rateLimit: 'caller',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/mfa/totp/setup',
      summary: 'Start TOTP setup: a new secret and its otpauth URI, pending until enabled',
      description:
        'Setting up again before enabling replaces the pending secret. While MFA is enabled this is 409: disable it first.',
      access: self,
      problems: [409],
      responses: {
        200: { description: 'Pending setup', content: { 'application/json': { schema: TotpSetupView } } },
      },
      async handle({ principal, em, res, log }) {
        const { secret, uri } = await setupTotp(em, settings, userOf(principal));
        log.info('TOTP setup started');
        res.json({ secret, otpauth_uri: uri, algorithm: 'SHA1', digits: 6, period: 30, status: 'pending' });
      },
    }),
    route({
      operationId: 'enableTotp',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/mfa/totp/enable',
      summary: 'Turn MFA on with a code from the pending secret; returns ten recovery codes, once',
      description:
        'A wrong code is 403 and changes nothing; 409 when MFA is already on or was never set up. From now on every sign-in needs a TOTP or recovery code. ' +
        'If your tenant requires MFA, refresh your session (or sign in again) to get your role’s permissions back.',
      access: self,
      body: EnableTotpBody,
      problems: [409],
      responses: {
        200: { description: 'Enabled', content: { 'application/json': { schema: RecoveryCodesView } } },
      },
      async handle({ req, principal, em, body, res, log }) {
        const { recoveryCodes } = await enableTotp(
          em,
          settings,
          userOf(principal),
          body.code,
          actorOf(req, principal),
        );
        log.info('MFA enabled');
        res.json({ recovery_codes: recoveryCodes });
      },
    }),
    route({
      operationId: 'disableTotp',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/mfa/totp/disable',
      summary: 'Turn MFA off with a TOTP code or a recovery code',
      description:
        'The secret and the recovery codes are erased. A wrong code is 403; 409 when MFA is not on. ' +
        'A member of a tenant requiring MFA keeps only their own account from their next refresh or sign-in.',
      access: self,
      body: SecondFactorBody,
      problems: [409],
      responses: { 204: { description: 'Disabled' } },
      async handle({ req, principal, em, body, res, log }) {
        await disableTotp(
          em,
          settings,
          userOf(principal),
          { totpCode: body.code, recoveryCode: body.recovery_code },
          actorOf(req, principal),
        );
        log.info('MFA disabled');
        res.status(204).end();
      },
    }),
    route({
      operationId: 'regenerateRecoveryCodes',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/mfa/recovery-codes',
      summary: 'Replace your recovery codes with ten new ones (the old ones stop working)',
      description:
        'Needs a TOTP code (or one of the current recovery codes). A wrong code is 403; 409 when MFA is not on.',
      access: self,
      body: SecondFactorBody,
      problems: [409],
      responses: {
        200: { description: 'New codes', content: { 'application/json': { schema: RecoveryCodesView } } },
      },
      async handle({ req, principal, em, body, res, log }) {
        const { recoveryCodes } = await regenerateRecoveryCodes(
          em,
          settings,
          userOf(principal),
          { totpCode: body.code, recoveryCode: body.recovery_code },
          actorOf(req, principal),
        );
        log.info('MFA recovery codes regenerated');
        res.json({ recovery_codes: recoveryCodes });
      },
    }),
  ];
}
