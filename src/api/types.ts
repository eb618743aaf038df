/** What the auth middleware attaches to every authenticated request. */
import type { EntityManager } from '../db/orm';
import type { TokenScope } from '../domain/api-tokens';

export type Principal =
  | { kind: 'platform-admin'; tokenId: string; scopes: TokenScope[] }
  | { kind: 'tenant'; tokenId: string; tenantId: string; scopes: TokenScope[] };

declare module 'express-serve-static-core' {
  interface Request {
    /** request id, also on every log line of the request and in error bodies */
    id: string;
    principal?: Principal;
    /** request-scoped EntityManager: tenant-filtered for tenant principals */
    em?: EntityManager;
  }
}
