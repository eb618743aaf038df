/**
 * Invitations: a tenant's OWNER or ADMIN invites an email with a role (only an OWNER invites an
 * OWNER), lists and revokes invitations (`/api/v1/members/invitations`); the invitee accepts with
 * the token from the mail (`POST /api/v1/auth/invitations/accept`, public: the token is the
 * credential) and is signed in. The token is never in an answer or a log line, only in the mail.
 */
import type { Config } from '../../config';
import type { Invitation } from '../../db/entities';
import { invitationStatus } from '../../domain/one-time-tokens';
import { accessTokenSettings } from '../../services/access-tokens';
import {
  acceptInvitation,
  createInvitation,
  listInvitations,
  revokeInvitation,
} from '../../services/invitations';
import { route, type Route } from '../http/route';
import { tenantOf } from '../middleware/auth';
import type { z } from '../zod';
import { authSettings, signedInView } from './auth';
import {
  AcceptInvitationBody,
  CreateInvitationBody,
  InvitationAccepted,
  InvitationIdParams,
  InvitationList,
  InvitationView,
} from './invitations.schemas';
import { memberActor } from './members';

const read = { caller: 'tenant', permission: 'members:read' } as const;
const write = { caller: 'tenant', permission: 'members:write' } as const;

const iso = (date: Date | null | undefined) => date?.toISOString() ?? null;

/** An invitation as the API shows it: never its token or the token's hash. */
export function invitationView(invitation: Invitation, now = new Date()): InvitationView {
  return {
    id: invitation.id,
    tenant_id: invitation.tenant.id,
    email: invitation.email,
    role: invitation.role,
    status: invitationStatus(invitation, now),
    invited_by: invitation.invitedBy?.id ?? null,
    created_at: invitation.createdAt.toISOString(),
    expires_at: invitation.expiresAt.toISOString(),
    accepted_at: iso(invitation.acceptedAt),
    revoked_at: iso(invitation.revokedAt),
  };
}

export function invitationRoutes(deps: { config: Config }): Route[] {
  const settings = authSettings(deps.config);
  const tokens = accessTokenSettings(deps.config);
  return [
    route({
      operationId: 'createInvitation',
      tag: 'Members',
      method: 'post',
      path: '/api/v1/members/invitations',
      summary: 'Invite an email to the tenant with a role; the token goes to the invitee by mail only',
      description:
        'A signed-in OWNER or ADMIN invites (API tokens cannot); only an OWNER invites an OWNER. The invitee gets a ' +
        'single-use token valid for 72 hours through the outbox; a newer invitation of the same email revokes the ' +
        'older one. An email that is a member already is 409.',
      access: write,
      body: CreateInvitationBody,
      problems: [409],
      responses: {
        201: { description: 'Invited', content: { 'application/json': { schema: InvitationView } } },
      },
      async handle({ req, principal, em, body, res, log }) {
        const invitation = await createInvitation(em, {
          tenantId: tenantOf(principal),
          email: body.email,
          role: body.role,
          actor: memberActor(principal, req),
        });
        log.info({ invitationId: invitation.id, role: invitation.role }, 'member invited');
        res
          .status(201)
          .location(`/api/v1/members/invitations/${invitation.id}`)
          .json(invitationView(invitation));
      },
    }),
    route({
      operationId: 'listInvitations',
      tag: 'Members',
      method: 'get',
      path: '/api/v1/members/invitations',
      summary: 'List the tenant’s invitations, newest first, with their status',
      access: read,
      responses: {
        200: { description: 'Invitations', content: { 'application/json': { schema: InvitationList } } },
      },
      async handle({ principal, em, res }) {
        const now = new Date();
        const invitations = await listInvitations(em, tenantOf(principal));
        res.json({ data: invitations.map((i) => invitationView(i, now)) });
      },
    }),
    route({
      operationId: 'revokeInvitation',
      tag: 'Members',
      method: 'delete',
      path: '/api/v1/members/invitations/:id',
      summary: 'Revoke a pending invitation: its token stops working',
      description:
        'A signed-in OWNER or ADMIN revokes (an OWNER’s invitation takes an OWNER). Revoking again changes nothing; ' +
        'an accepted invitation is 409.',
      access: write,
      params: InvitationIdParams,
      problems: [409],
      responses: {
        200: { description: 'Revoked', content: { 'application/json': { schema: InvitationView } } },
      },
      async handle({ req, principal, em, params, res, log }) {
        const { invitation, revokedNow } = await revokeInvitation(em, {
          tenantId: tenantOf(principal),
          invitationId: params.id,
          actor: memberActor(principal, req),
        });
        if (revokedNow) log.info({ invitationId: invitation.id }, 'invitation revoked');
        res.json(invitationView(invitation));
      },
    }),
    route({
      operationId: 'acceptInvitation',
      tag: 'Auth',
      method: 'post',
      path: '/api/v1/auth/invitations/accept',
      summary: 'Accept an invitation with the token from its mail: become a member and sign in',
      description:
        'For an email without an account, the password (12 to 128 characters) becomes the new account’s. For an ' +
        'existing account it must be that account’s current password (401 otherwise). A token that is unknown, ' +
        'expired, revoked or used is 400 and changes nothing. Answers with a sign-in to the tenant, as login does.',
      access: {
        public:
          'accepting an invitation is how an invitee gets an account; the token in the body is the credential',
      },
      body: AcceptInvitationBody,
      problems: [401, 403, 409],
      responses: {
        201: {
          description: 'Accepted: a member of the tenant, signed in',
          content: { 'application/json': { schema: InvitationAccepted } },
        },
      },
      async handle({ req, em, body, res, log }) {
        const accepted = await acceptInvitation(
          em,
          settings,
          { token: body.token, password: body.password },
          { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null },
        );
        log.info(
          { userId: accepted.userId, membershipId: accepted.membership.id, newUser: accepted.newUser },
          'invitation accepted',
        );
        const answer: z.infer<typeof InvitationAccepted> = {
          tenant_id: accepted.membership.tenant.id,
          user_id: accepted.userId,
          membership_id: accepted.membership.id,
          role: accepted.membership.role,
          new_user: accepted.newUser,
          session: accepted.signedIn ? await signedInView(tokens, accepted.signedIn) : null,
        };
        res.status(201).json(answer);
      },
    }),
  ];
}
