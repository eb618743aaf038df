/** zod parsing that answers 400 problem+json listing every offending field. */
import type { z } from 'zod';
import { AppError } from '../../domain/errors';

export function parse<S extends z.ZodType>(
  schema: S,
  data: unknown,
  where: 'body' | 'query' | 'params' = 'body',
): z.infer<S> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : where,
    message: issue.message,
  }));
  throw new AppError('validation_failed', `the request ${where} is invalid`, { errors });
}
