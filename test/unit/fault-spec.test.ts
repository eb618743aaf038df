/** Simulator fault rules: the SIMULATOR_FAULTS grammar and the slug glob matcher. */
import { globToRegExp, parseFaultSpec, type FaultRuleInput } from '../../src/domain/faults';

describe('parseFaultSpec', () => {
  it.each<[string, FaultRuleInput[]]>([
    ['', []],
    ['   ', []],
    [';;', []],
    ['createVm:fail-*', [{ operation: 'createVm', slugPattern: 'fail-*', times: null }]],
    ['createVm:fail-*:2', [{ operation: 'createVm', slugPattern: 'fail-*', times: 2 }]],
    ['upsertA:*:1', [{ operation: 'upsertA', slugPattern: '*', times: 1 }]],
    [
      'createVm:fail-*:2;upsertA:dns-*',
      [
        { operation: 'createVm', slugPattern: 'fail-*', times: 2 },
        { operation: 'upsertA', slugPattern: 'dns-*', times: null },
      ],
    ],
    [
      '  startVm:web-?  ;  destroyVm:db-1:3 ; ',
      [
        { operation: 'startVm', slugPattern: 'web-?', times: null },
        { operation: 'destroyVm', slugPattern: 'db-1', times: 3 },
      ],
    ],
    [
      'restoreSnapshot:a;restoreSnapshot:b:10',
      [
        { operation: 'restoreSnapshot', slugPattern: 'a', times: null },
        { operation: 'restoreSnapshot', slugPattern: 'b', times: 10 },
      ],
    ],
  ])('%j', (spec, rules) => {
    expect(parseFaultSpec(spec)).toEqual(rules);
  });

  it.each(['createVm', 'resizeVm', 'snapshotVm', 'setLocked', 'findVm', 'stopVm', 'deleteA'])(
    'accepts the %s operation',
    (operation) => {
      expect(parseFaultSpec(`${operation}:x`)).toEqual([{ operation, slugPattern: 'x', times: null }]);
    },
  );

  it.each([
    ['unknown operation', 'launchVm:fail-*'],
    ['operation in the wrong case', 'createvm:fail-*'],
    ['missing pattern', 'createVm'],
    ['empty pattern', 'createVm:'],
    ['empty pattern with a count', 'createVm::2'],
    ['missing operation', ':fail-*'],
    ['count of zero', 'createVm:fail-*:0'],
    ['negative count', 'createVm:fail-*:-1'],
    ['fractional count', 'createVm:fail-*:1.5'],
    ['non-numeric count', 'createVm:fail-*:twice'],
    ['empty count', 'createVm:fail-*:'],
    ['one bad rule among good ones', 'createVm:fail-*:2;nope:x;upsertA:dns-*'],
  ])('rejects a %s', (_name, spec) => {
    expect(() => parseFaultSpec(spec)).toThrow(Error);
  });
});

describe('globToRegExp', () => {
  it.each<[string, string, boolean]>([
    ['fail-*', 'fail-', true],
    ['fail-*', 'fail-web-1', true],
    ['fail-*', 'web-fail-1', false],
    ['*-db', 'acme-db', true],
    ['*-db', 'acme-db-2', false],
    ['*', '', true],
    ['*', 'anything.at-all', true],
    ['web-?', 'web-1', true],
    ['web-?', 'web-', false],
    ['web-?', 'web-12', false],
    ['??', 'ab', true],
    ['??', 'a', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    ['exact', 'inexact', false],
    // Regex metacharacters in a slug are literal, not operators.
    ['a.b', 'a.b', true],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['a+b', 'aab', false],
    ['(x|y)', '(x|y)', true],
    ['(x|y)', 'x', false],
    ['[ab]', '[ab]', true],
    ['[ab]', 'a', false],
    ['^start$', '^start$', true],
    ['^start$', 'start', false],
    ['a{2}', 'a{2}', true],
    ['a{2}', 'aa', false],
    ['back\\slash', 'back\\slash', true],
    ['back\\slash', 'backslash', false],
    ['$*', '$money', true],
    ['v1.?', 'v1.x', true],
    ['v1.?', 'v1x', false],
  ])('%s matches %j: %s', (glob, slug, matches) => {
    expect(globToRegExp(glob).test(slug)).toBe(matches);
  });
});
