/** Time-ordered, type-prefixed identifiers (`ten_01J…`): sortable by creation, readable in logs. */
import { monotonicFactory } from 'ulid';

export const ID_PREFIXES = {
  tenant: 'ten',
  token: 'tok',
  notification: 'ntf',
  settings: 'set',
  quota: 'quo',
  customer: 'cus',
  product: 'prd',
  pod: 'pod',
  job: 'job',
  node: 'nod',
  backup: 'bak',
  idempotency: 'idk',
  fault: 'flt',
  event: 'evt',
  simBackup: 'sbk',
  subscription: 'sub',
  invoice: 'inv',
  invoiceLine: 'inl',
  payment: 'pay',
  creditNote: 'cn',
  usage: 'use',
  planChange: 'pch',
  usageDaily: 'usd',
  testClock: 'clk',
  user: 'usr',
  membership: 'mem',
  session: 'ses',
  securityEvent: 'sev',
  shieldPolicy: 'shp',
  shieldRule: 'shr',
  shieldEvent: 'she',
  securityPolicy: 'tsp',
  invitation: 'ivt',
  passwordReset: 'pwr',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ulid = monotonicFactory();

export function newId(kind: IdKind, now: number = Date.now()): string {
  return `${ID_PREFIXES[kind]}_${ulid(now).toLowerCase()}`;
}

const ID_SHAPE = /^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` looks like an id of `kind`; routes use it to answer 404 before touching the database. */
export function isId(kind: IdKind, value: string): boolean {
  return ID_SHAPE.test(value) && value.startsWith(`${ID_PREFIXES[kind]}_`);
}
