/**
 * In-process check of a Compose file, so `npm test` needs no `docker compose` binary: parse the
 * YAML, interpolate `${VAR}` as Compose does, validate against the Compose Specification JSON
 * schema (vendored, see test/fixtures/compose-spec/SOURCE.md), then check what the schema cannot
 * express — references between services, volumes, networks, secrets and files on disk.
 * `.ci/run` still runs the real `docker-compose config -q` on top of this.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import draft07MetaSchema from 'ajv/dist/refs/json-schema-draft-07.json';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

export type ComposeProblemCode =
  | 'yaml'
  | 'yaml-ambiguous'
  | 'schema'
  | 'invalid-interpolation'
  | 'no-default'
  | 'missing-variable'
  | 'unknown-service'
  | 'undeclared-volume'
  | 'undeclared-network'
  | 'undeclared-secret'
  | 'undeclared-config'
  | 'missing-path';

export interface ComposeProblem {
  code: ComposeProblemCode;
  /** dotted path in the Compose document, `''` for the whole file */
  path: string;
  detail: string;
}

export interface ComposeCheckOptions {
  /** The variables Compose would interpolate from (the shell environment); never process.env implicitly. */
  env: Readonly<Record<string, string | undefined>>;
  /** Directory of the compose file: relative bind mounts, `env_file` and build contexts must exist under it. */
  projectDir?: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SCHEMA_PATH = path.join(__dirname, '../fixtures/compose-spec/compose-spec.json');

let validator: ReturnType<Ajv['compile']> | undefined;

function schemaValidator(): ReturnType<Ajv['compile']> {
  if (!validator) {
    // The Compose Specification schema is draft-07: Ajv's default class. It names its meta-schema
    // `https://json-schema.org/draft-07/schema` where Ajv registers `http://…/schema#`, so the
    // bundled draft-07 meta-schema is added under that name too (the schema itself is still
    // validated against it). Strict mode stays on but for `strictTypes`, schema-authoring lints the
    // upstream file trips without changing results (union `type`s, `additionalProperties` on a
    // `oneOf` branch that does not repeat `type: object`); unknown keywords still throw.
    const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
    ajv.addMetaSchema({ ...draft07MetaSchema, $id: 'https://json-schema.org/draft-07/schema' });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);
  }
  return validator;
}

const isObject = (v: Json | undefined): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const join = (base: string, key: string | number) => (base === '' ? String(key) : `${base}.${key}`);

// ---------------------------------------------------------------------------------------------
// Interpolation

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPERATORS = [':-', ':?', ':+', '-', '?', '+'] as const;
type Operator = (typeof OPERATORS)[number];

export interface Interpolated {
  value: string;
  problems: { code: ComposeProblemCode; detail: string }[];
}

/**
 * Compose's `${…}` interpolation of one string: `$$` is a literal `$`; `$VAR` and `${VAR}`;
 * `${VAR:-default}` / `${VAR-default}` (unset or empty / unset); `${VAR:?message}` / `${VAR?message}`
 * (required); `${VAR:+alt}` / `${VAR+alt}` (alternative when set). A default or alternative is
 * interpolated itself (Compose v2 nests); a `?` message is not (it is shown as written).
 *
 * Policy on top of Compose: a reference with no operator at all (`$VAR`, `${VAR}`) is reported as
 * `no-default`. Compose would substitute an empty string with only a warning, and the file must
 * work on a fresh clone, which has no `.env` (it is git-ignored) and no documented variables
 * beyond the ones the file itself defaults. So every variable either has a default, is required
 * with a message saying what to set (`JWT_SECRET`), or is an explicit `+` alternative.
 */
export function interpolate(input: string, env: ComposeCheckOptions['env']): Interpolated {
  const problems: Interpolated['problems'] = [];
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i];
    if (ch !== '$') {
      out += ch;
      i += 1;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== '{') {
      const name = NAME.exec(input.slice(i + 1))?.[0];
      if (!name) {
        problems.push({ code: 'invalid-interpolation', detail: `a lone "$" at offset ${i} (write "$$")` });
        out += '$';
        i += 1;
        continue;
      }
      problems.push({ code: 'no-default', detail: `$${name} has no default` });
      out += env[name] ?? '';
      i += 1 + name.length;
      continue;
    }
    // ${…}: find the matching brace, allowing nested ${…} in a default.
    let depth = 1;
    let end = i + 2;
    for (; end < input.length && depth > 0; end += 1) {
      if (input[end] === '$' && input[end + 1] === '{') {
        depth += 1;
        end += 1;
      } else if (input[end] === '}') depth -= 1;
    }
    if (depth > 0) {
      problems.push({ code: 'invalid-interpolation', detail: `unterminated "\${" at offset ${i}` });
      out += input.slice(i);
      break;
    }
    const body = input.slice(i + 2, end - 1);
    i = end;
    const name = NAME.exec(body)?.[0];
    if (!name) {
      problems.push({
        code: 'invalid-interpolation',
        detail: `"\${${body}}" does not start with a variable name`,
      });
      continue;
    }
    const rest = body.slice(name.length);
    if (rest === '') {
      problems.push({ code: 'no-default', detail: `\${${name}} has no default` });
      out += env[name] ?? '';
      continue;
    }
    const op: Operator | undefined = OPERATORS.find((o) => rest.startsWith(o));
    if (!op) {
      problems.push({ code: 'invalid-interpolation', detail: `"\${${body}}" has an unknown operator` });
      continue;
    }
    const arg = rest.slice(op.length);
    const value = env[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    const nested = (text: string) => {
      const r = interpolate(text, env);
      problems.push(...r.problems);
      return r.value;
    };
    switch (op) {
      case ':-':
        out += nonEmpty ? value : nested(arg);
        break;
      case '-':
        out += set ? value : nested(arg);
        break;
      case ':?':
      case '?':
        if (op === ':?' ? nonEmpty : set) out += value;
        else problems.push({ code: 'missing-variable', detail: `${name}: ${arg || 'required'}` });
        break;
      case ':+':
        out += nonEmpty ? nested(arg) : '';
        break;
      case '+':
        out += set ? nested(arg) : '';
        break;
    }
  }
  return { value: out, problems };
}

/** Interpolates every string value (not keys), as Compose does before validating; other scalars keep their type. */
function interpolateTree(
  node: Json,
  at: string,
  env: ComposeCheckOptions['env'],
  problems: ComposeProblem[],
): Json {
  if (typeof node === 'string') {
    const r = interpolate(node, env);
    for (const p of r.problems) problems.push({ ...p, path: at });
    return r.value;
  }
  if (Array.isArray(node))
    return node.map((item, idx) => interpolateTree(item, join(at, idx), env, problems));
  if (isObject(node)) {
    const copy: JsonObject = {};
    for (const [key, value] of Object.entries(node))
      copy[key] = interpolateTree(value, join(at, key), env, problems);
    return copy;
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// References the schema cannot check

function namesOf(value: Json | undefined): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((v) =>
      typeof v === 'string' ? [v] : isObject(v) && typeof v.source === 'string' ? [v.source] : [],
    );
  }
  return isObject(value) ? Object.keys(value) : [];
}

function isPathLike(source: string): boolean {
  return source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
}

function checkReferences(doc: JsonObject, projectDir: string | undefined, problems: ComposeProblem[]): void {
  const services = isObject(doc.services) ? doc.services : {};
  const declared = (key: string) => new Set(isObject(doc[key]) ? Object.keys(doc[key]) : []);
  const volumes = declared('volumes');
  const networks = declared('networks');
  const secrets = declared('secrets');
  const configs = declared('configs');
  const mustExist = (at: string, relative: string, what: string) => {
    if (projectDir === undefined || relative.startsWith('~') || path.isAbsolute(relative)) return;
    if (!existsSync(path.resolve(projectDir, relative))) {
      problems.push({ code: 'missing-path', path: at, detail: `${what} ${relative} does not exist` });
    }
  };

  for (const [name, raw] of Object.entries(services)) {
    if (!isObject(raw)) continue;
    const at = join('services', name);

    for (const dep of namesOf(raw.depends_on)) {
      if (!(dep in services)) {
        problems.push({
          code: 'unknown-service',
          path: join(at, 'depends_on'),
          detail: `"${dep}" is not a service`,
        });
      }
    }

    const mounts = Array.isArray(raw.volumes) ? raw.volumes : [];
    mounts.forEach((mount, idx) => {
      let type: string;
      let source: string | undefined;
      if (typeof mount === 'string') {
        // short syntax SOURCE:TARGET[:MODE]; a single part is an anonymous volume
        const parts = mount.split(':');
        source = parts.length > 1 ? parts[0] : undefined;
        type = source !== undefined && isPathLike(source) ? 'bind' : 'volume';
      } else if (isObject(mount)) {
        type = typeof mount.type === 'string' ? mount.type : 'volume';
        source = typeof mount.source === 'string' ? mount.source : undefined;
      } else return;
      if (source === undefined || source === '') return;
      if (type === 'volume' && !volumes.has(source)) {
        problems.push({
          code: 'undeclared-volume',
          path: join(join(at, 'volumes'), idx),
          detail: `named volume "${source}" is not declared under top-level volumes`,
        });
      }
      // The engine silently creates a missing bind source as an empty directory; catch the typo here.
      if (type === 'bind') mustExist(join(join(at, 'volumes'), idx), source, 'bind mount source');
    });

    for (const network of namesOf(raw.networks)) {
      if (network !== 'default' && !networks.has(network)) {
        problems.push({
          code: 'undeclared-network',
          path: join(at, 'networks'),
          detail: `"${network}" is not declared`,
        });
      }
    }
    for (const secret of namesOf(raw.secrets)) {
      if (!secrets.has(secret)) {
        problems.push({
          code: 'undeclared-secret',
          path: join(at, 'secrets'),
          detail: `"${secret}" is not declared`,
        });
      }
    }
    for (const config of namesOf(raw.configs)) {
      if (!configs.has(config)) {
        problems.push({
          code: 'undeclared-config',
          path: join(at, 'configs'),
          detail: `"${config}" is not declared`,
        });
      }
    }

    const envFiles =
      raw.env_file === undefined ? [] : Array.isArray(raw.env_file) ? raw.env_file : [raw.env_file];
    for (const file of envFiles) {
      if (typeof file === 'string') mustExist(join(at, 'env_file'), file, 'env_file');
      else if (isObject(file) && typeof file.path === 'string' && file.required !== false) {
        mustExist(join(at, 'env_file'), file.path, 'env_file');
      }
    }

    const build = raw.build;
    if (typeof build === 'string' || isObject(build)) {
      const context =
        typeof build === 'string' ? build : typeof build.context === 'string' ? build.context : '.';
      const dockerfile =
        isObject(build) && typeof build.dockerfile === 'string' ? build.dockerfile : 'Dockerfile';
      if (!/^[a-z]+:\/\//i.test(context))
        mustExist(join(at, 'build'), path.join(context, dockerfile), 'Dockerfile');
    }
  }
}

// ---------------------------------------------------------------------------------------------

function schemaProblem(err: ErrorObject): ComposeProblem {
  const at = err.instancePath.split('/').slice(1).join('.');
  const extra =
    err.keyword === 'additionalProperties'
      ? ` "${String((err.params as { additionalProperty?: string }).additionalProperty)}"`
      : '';
  return { code: 'schema', path: at, detail: `${err.message ?? err.keyword}${extra}` };
}

// Plain scalars YAML 1.1 (docker-compose 1.29's PyYAML) reads differently from YAML 1.2 (Compose v2's
// go-yaml): `no`/`yes`/`on`/`off` are booleans there (`restart: no` then fails), `22:22` is a base-60
// number (the classic port-mapping trap) and `0755` octal. The file must mean the same to both.
const YAML11_BOOL = /^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$/;
const YAML11_SEXAGESIMAL = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
const YAML11_OCTAL = /^[-+]?0[0-7_]+$/;

function ambiguousScalars(node: unknown, at: string, problems: ComposeProblem[]): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      ambiguousScalars(pair.value, join(at, key), problems);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, idx) => ambiguousScalars(item, join(at, idx), problems));
  } else if (isScalar(node) && node.type === 'PLAIN' && typeof node.source === 'string') {
    const src = node.source;
    if (YAML11_BOOL.test(src) || YAML11_SEXAGESIMAL.test(src) || YAML11_OCTAL.test(src)) {
      problems.push({
        code: 'yaml-ambiguous',
        path: at,
        detail: `unquoted ${src} means something else in YAML 1.1; quote it`,
      });
    }
  }
}

/** Every problem found in a Compose file's text; `[]` means it is valid. */
export function checkCompose(text: string, opts: ComposeCheckOptions): ComposeProblem[] {
  // YAML 1.2 core schema as Compose v2 reads it, with `<<` merge keys (the file shares environment
  // blocks that way); duplicate keys are errors.
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: false });
  const yamlProblems = [...doc.errors, ...doc.warnings].map<ComposeProblem>((e) => ({
    code: 'yaml',
    path: '',
    detail: `${e.code}: ${e.message}`,
  }));
  if (yamlProblems.length > 0) return yamlProblems;
  const raw = doc.toJS({ maxAliasCount: 100 }) as Json;
  if (!isObject(raw)) return [{ code: 'yaml', path: '', detail: 'the file is not a mapping' }];

  const problems: ComposeProblem[] = [];
  ambiguousScalars(doc.contents, '', problems);
  const interpolated = interpolateTree(raw, '', opts.env, problems);
  const validate = schemaValidator();
  if (!validate(interpolated)) problems.push(...(validate.errors ?? []).map(schemaProblem));
  if (isObject(interpolated)) checkReferences(interpolated, opts.projectDir, problems);
  return problems;
}
