/**
 * The compose file is valid and agrees with the code about search attributes. Checked in-process
 * (YAML, interpolation, the Compose Specification schema, references), so `npm test` needs no
 * `docker compose`; `.ci/run` runs `docker-compose config -q` as an extra step.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/workflows/shared';
import { checkCompose, interpolate, type ComposeProblem } from '../helpers/compose';

const root = path.join(__dirname, '../..');
const composeText = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
// Only what README tells the operator to set; never this process's environment.
const env = { JWT_SECRET: 'compose-config-check-secret-0123456789abcdef' };

const check = (text: string, withEnv: Record<string, string | undefined> = env) =>
  checkCompose(text, { env: withEnv, projectDir: root });

/** docker-compose.yml with one edit, made on the YAML document so anchors and comments survive. */
function mutated(edit: (doc: ReturnType<typeof parseDocument>) => void): string {
  const doc = parseDocument(composeText, { merge: true });
  edit(doc);
  return doc.toString();
}

const codesAt = (problems: ComposeProblem[]) => problems.map((p) => ({ code: p.code, path: p.path }));

describe('docker-compose.yml', () => {
  it('parses, interpolates, matches the Compose Specification schema and references only what it defines', () => {
    expect(check(composeText)).toEqual([]);
  });

  it('refuses to start without a JWT secret', () => {
    expect(codesAt(check(composeText, {}))).toEqual(
      expect.arrayContaining([
        { code: 'missing-variable', path: 'services.api.environment.JWT_SECRET' },
        { code: 'missing-variable', path: 'services.worker.environment.JWT_SECRET' },
        { code: 'missing-variable', path: 'services.migrate.environment.JWT_SECRET' },
      ]),
    );
  });

  it('registers exactly the search attributes the workflows use', () => {
    const script = readFileSync(path.join(root, 'temporal/docker/setup-namespace.sh'), 'utf8');
    const listed = /SEARCH_ATTRIBUTES="([^"]+)"/.exec(script)?.[1]?.split(/\s+/) ?? [];
    expect([...listed].sort()).toEqual([...SEARCH_ATTRIBUTE_NAMES].sort());
  });
});

describe('the compose check rejects a broken file', () => {
  const cases: [string, () => string, { code: ComposeProblem['code']; path: string }][] = [
    [
      'depends_on naming no service',
      () =>
        mutated((d) => d.setIn(['services', 'api', 'depends_on', 'ghost', 'condition'], 'service_started')),
      { code: 'unknown-service', path: 'services.api.depends_on' },
    ],
    [
      'a named volume not declared at the top level (short syntax)',
      () =>
        mutated((d) => d.setIn(['services', 'worker', 'volumes'], d.createNode(['scratch:/var/scratch']))),
      { code: 'undeclared-volume', path: 'services.worker.volumes.0' },
    ],
    [
      'a named volume not declared at the top level (long syntax)',
      () =>
        mutated((d) =>
          d.setIn(
            ['services', 'worker', 'volumes'],
            d.createNode([{ type: 'volume', source: 'cache', target: '/c' }]),
          ),
        ),
      { code: 'undeclared-volume', path: 'services.worker.volumes.0' },
    ],
    [
      'the top-level volumes section removed',
      () => mutated((d) => d.delete('volumes')),
      { code: 'undeclared-volume', path: 'services.postgres.volumes.0' },
    ],
    [
      'a misspelt service key (schema: additional property)',
      () => mutated((d) => d.setIn(['services', 'api', 'enviroment'], d.createNode({ A: 'b' }))),
      { code: 'schema', path: 'services.api' },
    ],
    [
      'a wrongly typed value (schema)',
      () => mutated((d) => d.setIn(['services', 'api', 'ports'], 3000)),
      { code: 'schema', path: 'services.api.ports' },
    ],
    [
      'an unquoted `no`, a boolean to docker-compose 1.29 (YAML 1.1)',
      () => composeText.replace("restart: 'no'", 'restart: no'),
      { code: 'yaml-ambiguous', path: 'services.temporal-schema.restart' },
    ],
    [
      'an unquoted port mapping, a base-60 number in YAML 1.1',
      () => composeText.replace("- '7233:7233'", "- '7233:7233'\n      - 22:22"),
      { code: 'yaml-ambiguous', path: 'services.temporal.ports.1' },
    ],
    [
      'an unknown top-level section (schema)',
      () => mutated((d) => d.set('service', d.createNode({ x: { image: 'busybox' } }))),
      { code: 'schema', path: '' },
    ],
    [
      'a variable without a default',
      () =>
        mutated((d) =>
          d.setIn(['services', 'temporal-ui', 'environment', 'TEMPORAL_CSRF_COOKIE_INSECURE'], '${CSRF}'),
        ),
      { code: 'no-default', path: 'services.temporal-ui.environment.TEMPORAL_CSRF_COOKIE_INSECURE' },
    ],
    [
      'a lone `$` (must be written `$$`)',
      () => composeText.replace('pg_isready -U "$${POSTGRES_USER}"', 'pg_isready -U "${POSTGRES_USER}" $'),
      { code: 'invalid-interpolation', path: 'services.postgres.healthcheck.test.1' },
    ],
    [
      'a bind mount whose source is missing',
      () => composeText.replace('./temporal/docker:/setup:ro', './temporal/no-such-dir:/setup:ro'),
      { code: 'missing-path', path: 'services.temporal-schema.volumes.0' },
    ],
    [
      'a duplicate key (YAML)',
      () =>
        composeText.replace(
          '  postgres:\n    image: postgres:16\n',
          '  postgres:\n    image: postgres:16\n    image: postgres:17\n',
        ),
      { code: 'yaml', path: '' },
    ],
  ];

  it.each(cases)('%s', (_name, broken, expected) => {
    const text = broken();
    expect(text).not.toEqual(composeText);
    expect(codesAt(check(text))).toContainEqual(expected);
  });
});

describe('compose interpolation', () => {
  const table: [string, Record<string, string>, string, string[]][] = [
    ['plain text', {}, 'plain text', []],
    ['$$ escape', {}, '$ escape', []],
    ['${A:-d}', {}, 'd', []],
    ['${A:-d}', { A: '' }, 'd', []],
    ['${A-d}', { A: '' }, '', []],
    ['${A:-d}', { A: 'v' }, 'v', []],
    ['${A:-${B:-inner}}', {}, 'inner', []],
    ['${A:+alt}', { A: 'v' }, 'alt', []],
    ['${A:+alt}', {}, '', []],
    ['${A:?say why $(openssl rand -hex 32)}', { A: 'v' }, 'v', []],
    ['${A:?say why}', { A: '' }, '', ['missing-variable']],
    ['${A?say why}', { A: '' }, '', []],
    ['${A}', { A: 'v' }, 'v', ['no-default']],
    ['$A/x', { A: 'v' }, 'v/x', ['no-default']],
    ['$ 5', {}, '$ 5', ['invalid-interpolation']],
    ['${A', {}, '${A', ['invalid-interpolation']],
    ['${1A:-x}', {}, '', ['invalid-interpolation']],
  ];
  it.each(table)('%s with %j', (input, vars, value, codes) => {
    const r = interpolate(input, vars);
    expect(r.value).toBe(value);
    expect(r.problems.map((p) => p.code)).toEqual(codes);
  });
});
