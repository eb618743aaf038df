/** Simulator fault rules: the SIMULATOR_FAULTS grammar and the slug glob matcher. */
import {
  FAULT_OPERATIONS,
  MAX_FAULT_DELAY_MS,
  globToRegExp,
  parseFaultSpec,
  type FaultMode,
  type FaultOperation,
  type FaultRuleInput,
} from '../../src/domain/faults';

const rule = (
  operation: FaultOperation,
  slugPattern: string,
  times: number | null = null,
  mode: FaultMode = 'fail',
  delayMs: number | null = null,
): FaultRuleInput => ({ operation, slugPattern, times, mode, delayMs });

describe('parseFaultSpec', () => {
  it.each<[string, FaultRuleInput[]]>([
    ['', []],
    ['   ', []],
    [';;', []],
    ['createVm:fail-*', [rule('createVm', 'fail-*')]],
    ['createVm:fail-*:2', [rule('createVm', 'fail-*', 2)]],
    ['upsertA:*:1', [rule('upsertA', '*', 1)]],
    ['createVm:fail-*:2;upsertA:dns-*', [rule('createVm', 'fail-*', 2), rule('upsertA', 'dns-*')]],
    ['  startVm:web-?  ;  destroyVm:db-1:3 ; ', [rule('startVm', 'web-?'), rule('destroyVm', 'db-1', 3)]],
    ['restoreBackup:a;restoreBackup:b:10', [rule('restoreBackup', 'a'), rule('restoreBackup', 'b', 10)]],
    // modes: the count may be left empty (every time) when a mode follows
    ['createVm:fail-*:3:after', [rule('createVm', 'fail-*', 3, 'after')]],
    ['createVm:fail-*::after', [rule('createVm', 'fail-*', null, 'after')]],
    ['createVm:fail-*:1:fail', [rule('createVm', 'fail-*', 1, 'fail')]],
    ['upsertA:slow-*::delay=5000', [rule('upsertA', 'slow-*', null, 'delay', 5000)]],
    ['backupVm:slow-*:2:delay=1', [rule('backupVm', 'slow-*', 2, 'delay', 1)]],
    [
      'createVm:a-*:1:after; upsertA:b-*::delay=250 ;deleteBackup:*',
      [
        rule('createVm', 'a-*', 1, 'after'),
        rule('upsertA', 'b-*', null, 'delay', 250),
        rule('deleteBackup', '*'),
      ],
    ],
  ])('%j', (spec, rules) => {
    expect(parseFaultSpec(spec)).toEqual(rules);
  });

  it('lists every hypervisor and DNS operation, the backup ones instead of snapshots', () => {
    expect([...FAULT_OPERATIONS].sort()).toEqual(
      [
        'backupVm',
        'createVm',
        'deleteA',
        'deleteBackup',
        'destroyVm',
        'findBackup',
        'findVm',
        'resizeVm',
        'restoreBackup',
        'setSuspended',
        'startVm',
        'stopVm',
        'upsertA',
      ].sort(),
    );
  });

  it.each([...FAULT_OPERATIONS])('accepts the %s operation', (operation) => {
    expect(parseFaultSpec(`${operation}:x`)).toEqual([rule(operation, 'x')]);
  });

  it.each([
    ['unknown operation', 'launchVm:fail-*'],
    ['retired snapshot operation', 'snapshotVm:fail-*'],
    ['retired rollback operation', 'restoreSnapshot:fail-*'],
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
    ['empty count and empty mode', 'createVm:fail-*::'],
    ['unknown mode', 'createVm:fail-*:1:later'],
    ['mode in the wrong case', 'createVm:fail-*:1:After'],
    ['delay without its duration', 'upsertA:slow-*::delay'],
    ['delay with an empty duration', 'upsertA:slow-*::delay='],
    ['delay of zero', 'upsertA:slow-*::delay=0'],
    ['non-numeric delay', 'upsertA:slow-*::delay=soon'],
    ['fractional delay', 'upsertA:slow-*::delay=1.5'],
    ['delay over the limit', `upsertA:slow-*::delay=${MAX_FAULT_DELAY_MS + 1}`],
    ['duration on a fail rule', 'createVm:fail-*:1:fail=100'],
    ['duration on an after rule', 'createVm:fail-*:1:after=100'],
    ['a field after the mode', 'createVm:fail-*:1:after:extra'],
    ['an empty field after the mode', 'createVm:fail-*:1:after:'],
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
