/**
 * Money: an integer count of minor units plus an ISO 4217 currency code. No floats.
 *
 * Public amounts are safe-integer `number`s (`MinorUnits`): they travel through Temporal payloads
 * and JSON bodies, which cannot carry `bigint`, and ±2^53 minor units (about 90 trillion euros)
 * is far beyond any invoice. Every product or quotient is computed in `bigint` and converted back
 * with a range check (`toMinorUnits`), so arithmetic stays exact; a value that would leave the
 * safe range is refused, never rounded.
 */
import { isCurrency } from '../tenants';
import { billingError } from './errors';

/** An amount in the minor unit of its currency (cents, yen, fils): always a safe integer. */
export type MinorUnits = number;

/**
 * ISO 4217 minor-unit exponents that differ from the default of 2. The table follows ISO 4217,
 * not display conventions (CLDR shows HUF or IDR without decimals, but their minor unit is 1/100).
 */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
});

export const DEFAULT_CURRENCY_EXPONENT = 2;

/** ISO codes with no minor unit at all (metals, fund units, testing codes): they cannot be billed. */
const WITHOUT_MINOR_UNIT: ReadonlySet<string> = new Set([
  'XAG',
  'XAU',
  'XBA',
  'XBB',
  'XBC',
  'XBD',
  'XDR',
  'XPD',
  'XPT',
  'XSU',
  'XTS',
  'XUA',
  'XXX',
]);

/**
 * A currency we can bill in: three upper-case letters that the runtime knows as a circulating ISO
 * 4217 currency (the same list tenants are validated against) and that has a minor unit.
 */
export function isSupportedCurrency(code: string): boolean {
  return isCurrency(code) && !WITHOUT_MINOR_UNIT.has(code);
}

/** Number of decimals of the currency's minor unit: JPY 0, EUR 2, BHD 3. */
export function currencyExponent(currency: string): number {
  if (!isSupportedCurrency(currency)) {
    throw billingError(
      'validation_failed',
      'unsupported_currency',
      `${currency} is not a supported currency`,
    );
  }
  return CURRENCY_EXPONENTS[currency] ?? DEFAULT_CURRENCY_EXPONENT;
}

/** True for a value usable as an amount: a safe integer (negative amounts are credits). */
export function isMinorUnits(value: unknown): value is MinorUnits {
  return Number.isSafeInteger(value);
}

/** Refuses anything but a safe integer; `what` names the value in the error. */
export function assertMinorUnits(value: number, what = 'amount'): MinorUnits {
  if (!isMinorUnits(value)) {
    throw billingError(
      'validation_failed',
      'amount_out_of_range',
      `${what} must be a safe integer of minor units`,
    );
  }
  return value;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Converts an exact `bigint` result back to the public type, refusing values beyond ±2^53. */
export function toMinorUnits(value: bigint, what = 'amount'): MinorUnits {
  if (value > MAX_SAFE || value < -MAX_SAFE) {
    throw billingError('validation_failed', 'amount_out_of_range', `${what} exceeds the safe integer range`);
  }
  return Number(value);
}

/**
 * `numerator / denominator` rounded to the nearest integer, ties to the even neighbour
 * (banker's rounding): 0.5 → 0, 1.5 → 2, 2.5 → 2, -2.5 → -2. Half-even is symmetric around zero
 * and unbiased over many roundings, so a credit and the matching charge round identically.
 */
export function divRoundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) {
    throw billingError('internal', 'division_by_zero', 'division by zero in a money calculation');
  }
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  let quotient = n / d;
  const twiceRemainder = (n % d) * 2n;
  if (twiceRemainder > d || (twiceRemainder === d && quotient % 2n === 1n)) quotient += 1n;
  return negative ? -quotient : quotient;
}

/**
 * `amount × numerator / denominator`, rounded half-even once. The product is formed in `bigint`,
 * so no precision is lost before the single rounding.
 */
export function mulDivRoundHalfEven(amount: MinorUnits, numerator: number, denominator: number): MinorUnits {
  assertMinorUnits(amount);
  if (!Number.isSafeInteger(numerator) || !Number.isSafeInteger(denominator)) {
    throw billingError('internal', 'amount_out_of_range', 'scaling factors must be safe integers');
  }
  return toMinorUnits(divRoundHalfEven(BigInt(amount) * BigInt(numerator), BigInt(denominator)));
}

/** Exact sum of amounts; refuses a result outside the safe range instead of losing precision. */
export function sumMinorUnits(amounts: readonly MinorUnits[]): MinorUnits {
  let total = 0n;
  for (const amount of amounts) total += BigInt(assertMinorUnits(amount));
  return toMinorUnits(total, 'sum');
}

/** The decimal form of an amount in its currency, without the code: `1234` EUR → `12.34`. */
export function formatAmount(amount: MinorUnits | bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const value = typeof amount === 'bigint' ? amount : BigInt(assertMinorUnits(amount));
  const sign = value < 0n ? '-' : '';
  const digits = (value < 0n ? -value : value).toString().padStart(exponent + 1, '0');
  if (exponent === 0) return `${sign}${digits}`;
  return `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/**
 * Display form: the decimal amount and the ISO code, `12.34 EUR`, `1234 JPY`, `-1.500 BHD`.
 * Locale-free on purpose: invoices, logs and emails must read the same for every tenant.
 */
export function formatMoney(amount: MinorUnits | bigint, currency: string): string {
  return `${formatAmount(amount, currency)} ${currency}`;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?(?: ([A-Z]{3}))?$/;

/**
 * Parses a decimal string (`12.34`, `-0.5`, `12.34 EUR`) into minor units of `currency`.
 * Fewer decimals than the currency has are padded (`12.3` EUR → 1230); more are refused, even
 * trailing zeros, because extra precision in an amount usually means the wrong unit or currency.
 * A trailing code must equal `currency`. No grouping separators, no exponent notation.
 */
export function parseMoney(text: string, currency: string): MinorUnits {
  const exponent = currencyExponent(currency);
  const match = DECIMAL.exec(text);
  if (!match) {
    throw billingError('validation_failed', 'malformed_amount', `"${text}" is not a decimal amount`);
  }
  const [, sign = '', whole = '', fraction = '', code] = match;
  if (code !== undefined && code !== currency) {
    throw billingError('validation_failed', 'currency_mismatch', `"${text}" is not an amount in ${currency}`);
  }
  if (fraction.length > exponent) {
    throw billingError(
      'validation_failed',
      'too_many_decimals',
      `${currency} amounts have at most ${exponent} decimal${exponent === 1 ? '' : 's'}`,
    );
  }
  const units = BigInt(whole + fraction.padEnd(exponent, '0'));
  return toMinorUnits(sign === '-' ? -units : units);
}
