/** Request and response schemas for /api/v1/members: a tenant's members and their roles. */
import { MEMBERSHIP_ROLES } from '../../domain/permissions';
import { z } from '../zod';

export const MemberView = z
  .object({
    id: z.string().openapi({ description: 'the membership id', example: 'mem_01jd0000000000000000000000' }),
    user_id: z.string(),
    email: z.string(),
    role: z.enum(MEMBERSHIP_ROLES),
    created_at: z.string().openapi({ description: 'when the user became a member' }),
    last_login_at: z.string().nullable(),
  })
  .openapi('Member');

export type MemberView = z.infer<typeof MemberView>;

export const MemberList = z.object({ data: z.array(MemberView) });

export const MemberIdParams = z.object({ id: z.string() });

export const UpdateMemberBody = z
  .strictObject({
    role: z.enum(MEMBERSHIP_ROLES).openapi({ example: 'ADMIN' }),
  })
  .openapi('UpdateMember');
