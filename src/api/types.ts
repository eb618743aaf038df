/** What the auth middleware attaches to every authenticated request. */
import type { EntityManager } from '../db/orm';
import type { Principal } from '../domain/principal';
import type { Logger } from '../logger';

declare module 'express-serve-static-core' {
  interface Request {
    /** request id, also on every log line of the request and in error bodies */
    id: string;
    /** the request's logger: every line carries the request id and, once authenticated, the caller */
    log: Logger;
    principal?: Principal;
    /** request-scoped EntityManager: tenant-filtered for tenant principals */
    em?: EntityManager;
  }
}
