/**
 * Input checks at the edge. `parse` is zod parsing that answers 400 problem+json listing every
 * offending field; `refuseHostileInput` guards every request before any route sees it (the one
 * place the control-character rule is applied, so routes do not walk their input twice).
 *
 * Control characters: every string that reaches us — body values and keys at any depth, query
 * parameters, path segments — is refused when it holds a C0 or C1 control character (U+0000–U+001F,
 * U+007F–U+009F), TAB, CR and LF included. PostgreSQL cannot store NUL at all, and no field we take
 * today is multi-line; names, slugs, ids and patterns must stay on one line (CR LF in a name ends up
 * in headers, CSV exports and terminals). A future free-text field that needs line breaks gets an
 * explicit exemption here, by field path, rather than a weaker rule for everything.
 */
import type { RequestHandler } from 'express';
import type { z } from 'zod';
import { AppError, type FieldIssue } from '../../domain/errors';

/** Unicode general category Cc is exactly C0, DEL and C1. */
const CONTROL_CHARACTER = /\p{Cc}/u;
const CONTROL_CHARACTERS = /\p{Cc}/gu;
const CONTROL_MESSAGE = 'must not contain control characters';
/** enough to fix a request; a body of ten thousand bad strings does not get ten thousand lines back */
const MAX_ISSUES = 20;

type Where = 'body' | 'query' | 'params';

/** A field name safe to echo back: control characters in keys are shown as `\uXXXX`. */
function printable(key: string): string {
  return key.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Every string (and object key) in `value` that holds a control character, as field issues named
 * like zod names them (`owner.email`, `records.3.note`). The one place this rule lives.
 */
export function controlCharacterIssues(value: unknown, where: Where): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const seen = new Set<object>();
  const visit = (v: unknown, path: string[]) => {
    if (issues.length >= MAX_ISSUES) return;
    if (typeof v === 'string') {
      if (CONTROL_CHARACTER.test(v)) {
        issues.push({ field: path.length > 0 ? path.join('.') : where, message: CONTROL_MESSAGE });
      }
      return;
    }
    if (typeof v !== 'object' || v === null || seen.has(v) || Buffer.isBuffer(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, [...path, String(i)]));
      return;
    }
    for (const [key, item] of Object.entries(v)) {
      const field = [...path, printable(key)];
      if (CONTROL_CHARACTER.test(key)) {
        if (issues.length < MAX_ISSUES) issues.push({ field: field.join('.'), message: CONTROL_MESSAGE });
        continue;
      }
      visit(item, field);
    }
  };
  visit(value, []);
  return issues;
}

function refuse(where: Where, errors: FieldIssue[]): AppError {
  return new AppError('validation_failed', `the request ${where} is invalid`, { errors });
}

/** Parses request input that `refuseHostileInput` has already cleared of control characters. */
export function parse<S extends z.ZodType>(schema: S, data: unknown, where: Where = 'body'): z.infer<S> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map((p) => printable(String(p))).join('.') : where,
    message: issue.message,
  }));
  throw refuse(where, errors);
}

/** A mounted route as Express spells it, e.g. `/api/v1/customers/:id`. */
export interface RouteShape {
  path: string;
}

/**
 * The name of the route parameter at segment `index` of `segments` (decoded), when a mounted route
 * has the same shape; routes are matched literally, as our routes only use plain `:name` segments.
 */
function parameterAt(
  routes: readonly RouteShape[],
  segments: readonly string[],
  index: number,
): string | undefined {
  for (const route of routes) {
    const parts = route.path.split('/');
    if (parts.length !== segments.length) continue;
    const name = parts[index]?.startsWith(':') ? parts[index]?.slice(1) : undefined;
    if (name === undefined) continue;
    const same = parts.every(
      (part, i) => i === index || part.startsWith(':') || part.toLowerCase() === segments[i]?.toLowerCase(),
    );
    if (same) return name;
  }
  return undefined;
}

/**
 * Runs before every route: a path that is not valid percent-encoding is 400 malformed, and a
 * control character in a path segment or a query parameter is 400 naming the field (a JSON body
 * is checked by `refuseHostileBody` once its route has parsed it). Routes that read `req.query` or `req.params` without `parse` are covered too.
 * `routes` lists the mounted routes so a bad path segment is named after its parameter.
 */
export function refuseHostileInput(routes: () => readonly RouteShape[]): RequestHandler {
  return (req, _res, next) => {
    const raw = req.path.replace(/\/+$/, '').split('/');
    const segments: string[] = [];
    for (const segment of raw) {
      try {
        segments.push(decodeURIComponent(segment));
      } catch {
        throw new AppError('malformed_request', 'the path is not valid percent-encoding (RFC 3986)');
      }
    }
    const pathIssues: FieldIssue[] = [];
    segments.forEach((segment, i) => {
      if (CONTROL_CHARACTER.test(segment)) {
        pathIssues.push({ field: parameterAt(routes(), segments, i) ?? 'path', message: CONTROL_MESSAGE });
      }
    });
    if (pathIssues.length > 0) throw refuse('params', pathIssues);
    const queryIssues = controlCharacterIssues(req.query, 'query');
    if (queryIssues.length > 0) throw refuse('query', queryIssues);
    next();
  };
}

/** The same rule for a JSON body, once the route that takes it has parsed it. */
export const refuseHostileBody: RequestHandler = (req, _res, next) => {
  const bodyIssues = controlCharacterIssues(req.body, 'body');
  if (bodyIssues.length > 0) throw refuse('body', bodyIssues);
  next();
};
