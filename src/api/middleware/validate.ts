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
 *
 * Text is Unicode, exactly: a body that is not UTF-8 (stray bytes, overlong forms, encoded
 * surrogates) is 400 rather than decoded to U+FFFD, and a string holding an unpaired surrogate (JSON
 * allows `"\ud800"`) is 400 rather than stored as U+FFFD — either way what we would keep is not what
 * was sent. A body nested deeper than `MAX_BODY_DEPTH` is 400 before anything walks it.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { z } from 'zod';
import { AppError, type FieldIssue } from '../../domain/errors';

/** Unicode general category Cc is exactly C0, DEL and C1. */
const CONTROL_CHARACTER = /\p{Cc}/u;
const CONTROL_CHARACTERS = /\p{Cc}/gu;
const CONTROL_MESSAGE = 'must not contain control characters';
/** In a `u` regex a surrogate pair is one code point, so category Cs matches unpaired surrogates only. */
const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;
const SURROGATE_MESSAGE = 'must be well-formed Unicode (an unpaired surrogate is not a character)';
/** enough to fix a request; a body of ten thousand bad strings does not get ten thousand lines back */
const MAX_ISSUES = 20;
/** Deeper than any body a route takes (the deepest is 3); a 10 000-level body is refused unwalked. */
export const MAX_BODY_DEPTH = 32;
const DEPTH_MESSAGE = `is nested more than ${MAX_BODY_DEPTH} levels deep`;

type Where = 'body' | 'query' | 'params';

/** A field name safe to echo back: control characters and lone surrogates in keys are shown as `\uXXXX`. */
function printable(key: string): string {
  const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return key.replace(CONTROL_CHARACTERS, escape).replace(LONE_SURROGATES, escape);
}

/** What is wrong with one string (a value or a key), if anything. */
function stringIssue(s: string): string | undefined {
  if (CONTROL_CHARACTER.test(s)) return CONTROL_MESSAGE;
  if (LONE_SURROGATE.test(s)) return SURROGATE_MESSAGE;
  return undefined;
}

/**
 * Every string (and object key) in `value` that holds a control character or an unpaired
 * surrogate, and every container nested deeper than `MAX_BODY_DEPTH`, as field issues named like
 * zod names them (`owner.email`, `records.3.note`). The one place these rules live. Walked with
 * an explicit stack: no input nests deep enough to overflow the call stack.
 */
export function hostileStringIssues(value: unknown, where: Where): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const seen = new Set<object>();
  const name = (path: readonly string[]) => (path.length > 0 ? path.join('.') : where);
  /** what is left to look at: a value, or a key already found wrong */
  const pending: ({ value: unknown; path: string[] } | { keyIssue: string; path: string[] })[] = [
    { value, path: [] },
  ];
  while (pending.length > 0 && issues.length < MAX_ISSUES) {
    const next = pending.pop() as (typeof pending)[number];
    if ('keyIssue' in next) {
      issues.push({ field: name(next.path), message: next.keyIssue });
      continue;
    }
    const { value: v, path } = next;
    if (typeof v === 'string') {
      const message = stringIssue(v);
      if (message) issues.push({ field: name(path), message });
      continue;
    }
    if (typeof v !== 'object' || v === null || seen.has(v) || Buffer.isBuffer(v)) continue;
    seen.add(v);
    if (path.length >= MAX_BODY_DEPTH) {
      issues.push({ field: name(path), message: DEPTH_MESSAGE });
      continue;
    }
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((item: unknown, i) => [String(i), item])
      : Object.entries(v);
    // pushed last to first, so issues come out in document order
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i] as [string, unknown];
      const field = [...path, printable(key)];
      const keyIssue = Array.isArray(v) ? undefined : stringIssue(key);
      pending.push(keyIssue ? { keyIssue, path: field } : { value: item, path: field });
    }
  }
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
    const queryIssues = hostileStringIssues(req.query, 'query');
    if (queryIssues.length > 0) throw refuse('query', queryIssues);
    next();
  };
}

/** The same rule for a JSON body, once the route that takes it has parsed it. */
export const refuseHostileBody: RequestHandler = (req, _res, next) => {
  const bodyIssues = hostileStringIssues(req.body, 'body');
  if (bodyIssues.length > 0) throw refuse('body', bodyIssues);
  next();
};

/**
 * The JSON parser's `verify`: a body declared (or defaulted to) UTF-8 that is not UTF-8 is 400,
 * instead of being decoded with U+FFFD in place of the bytes that were sent.
 */
export function refuseMalformedUtf8(
  _req: IncomingMessage,
  _res: ServerResponse,
  body: Buffer,
  encoding: string,
): void {
  if (/^utf-?8$/i.test(encoding) && !isUtf8(body)) {
    throw new AppError('malformed_request', 'the body is not valid UTF-8');
  }
}
