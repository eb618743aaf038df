/** canonicalJson: the request fingerprint behind Idempotency-Key must ignore key order and nothing else. */
import { canonicalJson } from '../../src/api/middleware/idempotency';

describe('canonicalJson', () => {
  it.each<[string, unknown, string]>([
    ['flat object with sorted keys', { a: 1, b: 'x' }, '{"a":1,"b":"x"}'],
    ['flat object with unsorted keys', { b: 'x', a: 1 }, '{"a":1,"b":"x"}'],
    [
      'nested objects are sorted at every level',
      { z: { y: 1, x: [{ b: 2, a: 1 }] } },
      '{"z":{"x":[{"a":1,"b":2}],"y":1}}',
    ],
    ['array order is kept', [3, 1, 2], '[3,1,2]'],
    ['empty object', {}, '{}'],
    ['empty array', [], '[]'],
    ['undefined members are dropped', { a: 1, b: undefined }, '{"a":1}'],
    ['undefined array items become null (as JSON.stringify does)', [1, undefined], '[1,null]'],
    ['null members are kept', { a: null }, '{"a":null}'],
    ['null body', null, 'null'],
    ['undefined body is null', undefined, 'null'],
    ['string', 'hello', '"hello"'],
    ['number', 42, '42'],
    ['zero', 0, '0'],
    ['false', false, 'false'],
    ['empty string', '', '""'],
    ['keys needing escapes', { 'a"b': 1 }, '{"a\\"b":1}'],
  ])('%s', (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it('is independent of key order at every depth', () => {
    const a = {
      product_id: 'p',
      customer_id: 'c',
      options: { region: 'eu', backups: true },
      tags: ['x', 'y'],
    };
    const b = {
      tags: ['x', 'y'],
      options: { backups: true, region: 'eu' },
      customer_id: 'c',
      product_id: 'p',
    };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
  });

  it('treats an omitted member and an undefined member as the same payload', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it('produces valid JSON that round-trips to an equal value', () => {
    const value = { b: [1, { d: null, c: 'é' }], a: { nested: { deeper: true } } };
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });

  it.each<[string, unknown, unknown]>([
    ['different values', { a: 1 }, { a: 2 }],
    ['number vs string', { a: 1 }, { a: '1' }],
    ['null vs missing', { a: null }, {}],
    ['false vs missing', { a: false }, {}],
    ['array order', { a: [1, 2] }, { a: [2, 1] }],
    ['extra member', { a: 1 }, { a: 1, b: 2 }],
    ['nested value', { a: { b: 1 } }, { a: { b: 2 } }],
    ['object vs array', {}, []],
    ['empty string vs null', '', null],
    ['renamed key', { a: 1 }, { A: 1 }],
  ])('tells apart %s', (_name, x, y) => {
    expect(canonicalJson(x)).not.toBe(canonicalJson(y));
  });
});
