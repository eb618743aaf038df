/**
 * /api/v1/auth/password-reset: asking for a reset by email (always 202, the same answer whether
 * an account exists or not) and setting a new password with the mailed token. Both are public:
 * the email is no credential, and the token is one.
 */
import type { Config } from '../../config';
import { confirmPasswordReset, requestPasswordReset } from '../../services/password-reset';
import { route, type Route } from '../http/route';
import { forgetSessions } from '../middleware/auth';
import type { z } from '../zod';
import { authSettings } from './auth';
import {
  PasswordResetAccepted,
  PasswordResetBody,
  PasswordResetConfirmBody,
  PasswordResetDone,
} from './password-reset.schemas';

/** The one answer to every reset request. */
const ACCEPTED: z.infer<typeof PasswordResetAccepted> = {
  status: 'accepted',
  detail: 'If an account with this email exists, a reset token valid for 30 minutes is on its way to it.',
};

export function passwordResetRoutes(deps: { config: Config }): Route[] {
  const settings = authSettings(deps.config);
  return [
    route({
      operationId: 'requestPasswordReset',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/password-reset',
      summary: 'Ask for a password reset: a single-use token is mailed to the account, if there is one',
      description:
        'Always 202 with the same body after the same work, whether the email has an account or not. The token is ' +
        'valid for 30 minutes; at most 3 resets of one account are open at once (asking again mails nothing more). ' +
        'Limited to RATE_LIMIT_PASSWORD_RESET_PER_HOUR requests per address an hour.',
      access: {
        public:
          'someone who forgot their password has no credential; the answer never tells whether the email has an account',
      },
      body: PasswordResetBody,
      responses: {
        202: {
          description: 'Accepted, whether or not the email has an account',
          content: { 'application/json': { schema: PasswordResetAccepted } },
        },
      },
      async handle({ req, em, body, res, log }) {
        await requestPasswordReset(
          em,
          { email: body.email },
          { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null },
        );
        log.info('password reset requested');
        res.status(202).json(ACCEPTED);
      },
    }),
    route({
      operationId: 'confirmPasswordReset',
      // the token is 256 random bits: the sign-in budget is enough, and a retry after a refused
      // password must not use up the reset budget
      rateLimit: 'auth',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/password-reset/confirm',
      summary: 'Set a new password with the token from the reset mail; every session of yours ends',
      description:
        'A token that is unknown, expired or used is 400. A password that breaks the rules (12 to 128 characters) is ' +
        '400 and leaves the token usable. A lockout is cleared.',
      access: { public: 'the reset token in the body is the credential, checked against its stored hash' },
      body: PasswordResetConfirmBody,
      responses: {
        200: { description: 'Password set', content: { 'application/json': { schema: PasswordResetDone } } },
      },
      async handle({ req, em, body, res, log }) {
        const { userId, revokedSessions } = await confirmPasswordReset(
          em,
          settings,
          { token: body.token, password: body.password },
          { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null },
        );
        forgetSessions({ userId });
        log.info({ userId, revokedSessions }, 'password reset');
        res.json({ revoked_sessions: revokedSessions });
      },
    }),
  ];
}
