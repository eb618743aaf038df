/**
 * /api/v1/security/policy: a tenant's security policy — required MFA, session lifetime, IP
 * allowlist and lockout. Its OWNER and ADMIN members and its write tokens read (`security:read`)
 * and replace it (`security:write`); a tenant without one has the defaults.
 */
import type { Config } from '../../config';
import { sessionLifetimeS } from '../../domain/security-policy';
import { tenantOf } from '../middleware/auth';
import { forgetShieldPolicy } from '../middleware/shield';
import { policyOf, replacePolicy, type StoredPolicy } from '../../services/security-policy';
import { route, type Route } from '../http/route';
import type { z } from '../zod';
import { SecurityPolicyBody, SecurityPolicyView } from './security-policy.schemas';

function policyView(policy: StoredPolicy, config: Config): z.infer<typeof SecurityPolicyView> {
  return {
    tenant_id: policy.tenantId,
    require_mfa: policy.requireMfa,
    session_lifetime_s: policy.sessionLifetimeS,
    effective_session_lifetime_s: sessionLifetimeS(policy, config.SESSION_TTL_S),
    ip_allowlist: policy.ipAllowlist,
    lockout_threshold: policy.lockoutThreshold,
    lockout_duration_s: policy.lockoutDurationS,
    updated_at: policy.updatedAt?.toISOString() ?? null,
  };
}

export function securityPolicyRoutes(deps: { config: Config }): Route[] {
  return [
    route({
      operationId: 'getSecurityPolicy',
      tag: 'Security',
      method: 'get',
      path: '/api/v1/security/policy',
      summary: 'Your tenant’s security policy (the defaults when it never set one)',
      access: { caller: 'tenant', permission: 'security:read' },
      responses: {
        200: { description: 'The policy', content: { 'application/json': { schema: SecurityPolicyView } } },
      },
      async handle({ principal, em, res }) {
        res.json(policyView(await policyOf(em, tenantOf(principal)), deps.config));
      },
    }),
    route({
      operationId: 'putSecurityPolicy',
      tag: 'Security',
      method: 'put',
      path: '/api/v1/security/policy',
      summary: 'Replace your tenant’s security policy',
      description:
        'Fields left out take their defaults (MFA optional, the platform’s lifetime and lockout, any address). ' +
        'An allowlist that would not admit the address this request comes from is 422: you would lock yourself out. ' +
        'A shorter session lifetime ends open sessions older than it at once; requiring MFA restricts members without it from their next refresh or sign-in. ' +
        'Recorded as a SECURITY_POLICY_CHANGED security event.',
      access: { caller: 'tenant', permission: 'security:write' },
      body: SecurityPolicyBody,
      problems: [422],
      responses: {
        200: {
          description: 'The new policy',
          content: { 'application/json': { schema: SecurityPolicyView } },
        },
      },
      async handle({ req, principal, em, body, res, log }) {
        const policy = await replacePolicy(
          em,
          tenantOf(principal),
          {
            requireMfa: body.require_mfa,
            sessionLifetimeS: body.session_lifetime_s,
            ipAllowlist: body.ip_allowlist,
            lockoutThreshold: body.lockout_threshold,
            lockoutDurationS: body.lockout_duration_s,
          },
          {
            userId: principal.actorType === 'user' ? principal.actorId : null,
            tokenId: principal.tokenId,
            ip: req.ip ?? null,
            userAgent: req.get('user-agent') ?? null,
          },
        );
        // the allowlist is enforced per request from a cached copy (middleware/shield.ts)
        forgetShieldPolicy(policy.tenantId);
        log.info(
          { requireMfa: policy.requireMfa, allowlist: policy.ipAllowlist.length },
          'security policy replaced',
        );
        res.json(policyView(policy, deps.config));
      },
    }),
  ];
}
