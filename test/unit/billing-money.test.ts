/** Money: ISO 4217 exponents, half-even division, exact sums, formatting and strict parsing. */
import fc from 'fast-check';
import {
  assertMinorUnits,
  currencyExponent,
  divRoundHalfEven,
  formatAmount,
  formatMoney,
  isMinorUnits,
  isSupportedCurrency,
  mulDivRoundHalfEven,
  parseMoney,
  sumMinorUnits,
  toMinorUnits,
} from '../../src/domain/billing';
import { reasonOf } from '../helpers/billing-core';

/** The billing reason `fn` throws with, or 'none' when it does not throw. */

const MAX = Number.MAX_SAFE_INTEGER;

describe('currencyExponent', () => {
  it.each([
    ['JPY', 0],
    ['KRW', 0],
    ['CLP', 0],
    ['VND', 0],
    ['ISK', 0],
    ['EUR', 2],
    ['USD', 2],
    ['GBP', 2],
    ['HUF', 2],
    ['CHF', 2],
    ['BHD', 3],
    ['KWD', 3],
    ['JOD', 3],
    ['OMR', 3],
    ['TND', 3],
    ['LYD', 3],
    ['IQD', 3],
  ])('%s has %i decimals', (currency, exponent) => {
    expect(currencyExponent(currency)).toBe(exponent);
  });

  it.each(['eur', 'EURO', 'EU', '', 'ABC', 'XAU', 'XDR', 'XTS', 'XXX'])('refuses %p', (code) => {
    expect(reasonOf(() => currencyExponent(code))).toBe('unsupported_currency');
  });
});

describe('isSupportedCurrency', () => {
  it.each([
    ['EUR', true],
    ['JPY', true],
    ['BHD', true],
    ['eur', false],
    ['E1R', false],
    ['ZZZ', false],
    ['XAU', false],
    ['XSU', false],
  ])('%s → %s', (code, expected) => expect(isSupportedCurrency(code)).toBe(expected));
});

describe('divRoundHalfEven', () => {
  it.each([
    [0n, 2n, 0n],
    [1n, 2n, 0n],
    [3n, 2n, 2n],
    [5n, 2n, 2n],
    [7n, 2n, 4n],
    [-1n, 2n, 0n],
    [-3n, 2n, -2n],
    [-5n, 2n, -2n],
    [-7n, 2n, -4n],
    [5n, -2n, -2n],
    [-5n, -2n, 2n],
    [1n, 3n, 0n],
    [2n, 3n, 1n],
    [-2n, 3n, -1n],
    [15n, 10n, 2n],
    [25n, 10n, 2n],
    [35n, 10n, 4n],
    [26n, 10n, 3n],
    [-26n, 10n, -3n],
    [24n, 10n, 2n],
    [10n, 5n, 2n],
    [123_456_789_012_345_678_901n, 1000n, 123_456_789_012_345_679n],
  ])('%p / %p → %p', (n, d, expected) => {
    expect(divRoundHalfEven(n, d)).toBe(expected);
  });

  it('refuses division by zero', () => {
    expect(reasonOf(() => divRoundHalfEven(1n, 0n))).toBe('division_by_zero');
  });

  const big = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n });
  const nonZero = fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).filter((d) => d !== 0n);

  it('is the nearest integer, ties to even (property)', () => {
    fc.assert(
      fc.property(big, nonZero, (n, d) => {
        const q = divRoundHalfEven(n, d);
        const abs = (x: bigint) => (x < 0n ? -x : x);
        const twiceError = abs(2n * (n - q * d));
        expect(twiceError <= abs(d)).toBe(true);
        if (twiceError === abs(d)) expect(q % 2n).toBe(0n);
      }),
    );
  });

  it('is symmetric around zero (property)', () => {
    fc.assert(
      fc.property(big, nonZero, (n, d) => {
        expect(divRoundHalfEven(-n, d)).toBe(-divRoundHalfEven(n, d));
        expect(divRoundHalfEven(n, -d)).toBe(-divRoundHalfEven(n, d));
      }),
    );
  });
});

describe('mulDivRoundHalfEven', () => {
  it.each([
    [1000, 1, 3, 333],
    [1000, 2, 3, 667],
    [5, 1, 2, 2],
    [15, 1, 10, 2],
    [-5, 1, 2, -2],
    [1000, 16, 31, 516],
    [MAX, 1, 1, MAX],
    [MAX, 2_592_000, 2_678_400, 8_716_644_440_071_927],
  ])('%i × %i / %i → %i', (amount, num, den, expected) => {
    expect(mulDivRoundHalfEven(amount, num, den)).toBe(expected);
  });

  it('keeps products beyond 2^53 exact (the float result would be off)', () => {
    const exact = divRoundHalfEven(BigInt(MAX) * 2_592_000n, 2_678_400n);
    expect(BigInt(mulDivRoundHalfEven(MAX, 2_592_000, 2_678_400))).toBe(exact);
  });

  it('refuses a result beyond the safe range', () => {
    expect(reasonOf(() => mulDivRoundHalfEven(MAX, 2, 1))).toBe('amount_out_of_range');
  });
});

describe('safe-integer edges', () => {
  it.each([0, 1, -1, MAX, -MAX])('%p is minor units', (value) => expect(isMinorUnits(value)).toBe(true));
  it.each([0.5, NaN, Infinity, MAX + 1, '12', 12n])('%p is not', (value) =>
    expect(isMinorUnits(value)).toBe(false),
  );
  it('assertMinorUnits refuses fractions', () => {
    expect(reasonOf(() => assertMinorUnits(12.5))).toBe('amount_out_of_range');
  });
  it('toMinorUnits converts in range and refuses beyond', () => {
    expect(toMinorUnits(-1234n)).toBe(-1234);
    expect(reasonOf(() => toMinorUnits(BigInt(MAX) + 1n))).toBe('amount_out_of_range');
  });
  it('sumMinorUnits is exact and refuses overflow', () => {
    expect(sumMinorUnits([])).toBe(0);
    expect(sumMinorUnits([MAX, -MAX, 7])).toBe(7);
    expect(reasonOf(() => sumMinorUnits([MAX, 1]))).toBe('amount_out_of_range');
  });
});

describe('formatMoney', () => {
  it.each<[number | bigint, string, string]>([
    [1234n, 'EUR', '12.34 EUR'],
    [1234, 'EUR', '12.34 EUR'],
    [5, 'EUR', '0.05 EUR'],
    [-5, 'EUR', '-0.05 EUR'],
    [0, 'EUR', '0.00 EUR'],
    [-123_456, 'USD', '-1234.56 USD'],
    [1234, 'JPY', '1234 JPY'],
    [0, 'JPY', '0 JPY'],
    [-50, 'KRW', '-50 KRW'],
    [1234, 'BHD', '1.234 BHD'],
    [1, 'BHD', '0.001 BHD'],
    [-1500, 'KWD', '-1.500 KWD'],
    [MAX, 'EUR', '90071992547409.91 EUR'],
    [123_456_789_012_345_678_901n, 'EUR', '1234567890123456789.01 EUR'],
  ])('%p %s → %s', (amount, currency, expected) => {
    expect(formatMoney(amount, currency)).toBe(expected);
  });

  it('formatAmount leaves the code out', () => {
    expect(formatAmount(1234, 'BHD')).toBe('1.234');
  });

  it('refuses unsupported currencies and fractional numbers', () => {
    expect(reasonOf(() => formatMoney(1, 'XAU'))).toBe('unsupported_currency');
    expect(reasonOf(() => formatMoney(1.5, 'EUR'))).toBe('amount_out_of_range');
  });
});

describe('parseMoney', () => {
  it.each([
    ['12.34', 'EUR', 1234],
    ['12.3', 'EUR', 1230],
    ['12', 'EUR', 1200],
    ['0.05', 'EUR', 5],
    ['-0.05', 'EUR', -5],
    ['007.50', 'EUR', 750],
    ['12.34 EUR', 'EUR', 1234],
    ['1234', 'JPY', 1234],
    ['-50 KRW', 'KRW', -50],
    ['1.234', 'BHD', 1234],
    ['0.001', 'BHD', 1],
    ['1.5', 'BHD', 1500],
    ['90071992547409.91', 'EUR', MAX],
  ])('%p in %s → %p', (text, currency, expected) => {
    expect(parseMoney(text, currency)).toBe(expected);
  });

  it('reads negative zero as zero', () => {
    expect(Object.is(parseMoney('-0.00', 'EUR'), 0)).toBe(true);
  });

  it.each([
    ['12.345', 'EUR', 'too_many_decimals'],
    ['12.340', 'EUR', 'too_many_decimals'],
    ['1.0', 'JPY', 'too_many_decimals'],
    ['1.2345', 'BHD', 'too_many_decimals'],
    ['', 'EUR', 'malformed_amount'],
    ['1,234.00', 'EUR', 'malformed_amount'],
    ['1e3', 'EUR', 'malformed_amount'],
    [' 12.34', 'EUR', 'malformed_amount'],
    ['.5', 'EUR', 'malformed_amount'],
    ['5.', 'EUR', 'malformed_amount'],
    ['+5', 'EUR', 'malformed_amount'],
    ['--5', 'EUR', 'malformed_amount'],
    ['12.34 eur', 'EUR', 'malformed_amount'],
    ['12.34 USD', 'EUR', 'currency_mismatch'],
    ['90071992547409.92', 'EUR', 'amount_out_of_range'],
    ['1', 'ABC', 'unsupported_currency'],
  ])('refuses %p in %s (%s)', (text, currency, reason) => {
    expect(reasonOf(() => parseMoney(text, currency))).toBe(reason);
  });

  const currency = fc.constantFrom('EUR', 'USD', 'JPY', 'KRW', 'BHD', 'KWD', 'TND', 'CLP');
  const amount = fc.integer({ min: -MAX, max: MAX });

  it('round-trips with formatMoney and formatAmount (property)', () => {
    fc.assert(
      fc.property(amount, currency, (value, code) => {
        expect(parseMoney(formatMoney(value, code), code)).toBe(value);
        expect(parseMoney(formatAmount(value, code), code)).toBe(value);
      }),
    );
  });
});
