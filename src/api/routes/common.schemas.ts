/** Schemas shared by list routes. */
import { isId, type IdKind } from '../../domain/ids';
import { z } from '../zod';

export const PaginationQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(200).optional(),
});

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** Control characters (NUL among them, which PostgreSQL refuses to store) never belong in a name. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * The rule for every human-given name (customers, products, tenants, API tokens): one line,
 * trimmed, not blank, at most `maxLength` characters (the column's length).
 */
export function displayName(maxLength: number) {
  return z
    .string()
    .trim()
    .min(1)
    .max(maxLength)
    .refine((name) => !CONTROL_CHARACTER.test(name), 'must not contain control characters');
}

export const DisplayName = displayName(200);

/** `include_deleted=true|false`; anything else is a 400 rather than a silent truthy string. */
export const IncludeDeleted = z
  .enum(['true', 'false'])
  .default('false')
  .transform((value) => value === 'true')
  .openapi({ description: 'also return soft-deleted rows' });

/**
 * A list cursor decoded to the last id of the previous page. Anything that does not decode to an id
 * of `kind` is refused here, so arbitrary bytes never reach a query.
 */
export function idCursor(kind: IdKind) {
  return z
    .string()
    .max(200)
    .transform((cursor) => decodeCursor(cursor) ?? '')
    .refine((id) => isId(kind, id), 'is not a cursor returned by this list')
    .optional()
    .openapi({ description: 'next_cursor of the previous page' });
}
