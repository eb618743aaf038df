/**
 * The audit trail's hash chain, recomputed outside the database: the canonical text of an event
 * (the same definition as `audit_hash` in Migration20261124005000 — a change to one is a change to
 * both, under a new version tag) and a verifier that walks one chain in seq order.
 */
import { createHash } from 'node:crypto';

/** The chain of changes made to rows that belong to no tenant (users, nodes, platform tokens). */
export const PLATFORM_CHAIN = 'platform';

/** `prev_hash` of a chain's first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** An event's fields as stored; `before`/`after` as PostgreSQL's text of the jsonb. */
export interface ChainedEvent {
  chain: string;
  seq: number;
  occurredAt: Date;
  actorType: string;
  actorId: string | null;
  requestId: string | null;
  workflowId: string | null;
  operation: string | null;
  action: string;
  entityType: string;
  entityId: string | null;
  beforeText: string | null;
  afterText: string | null;
  prevHash: string;
  hash: string;
}

function field(value: string | null): string {
  return value === null ? '-' : `${Buffer.byteLength(value, 'utf8')}:${value}`;
}

/** `v1|<field>|…`, every field as `<UTF-8 byte length>:<text>` or `-` for null. */
export function canonicalText(e: Omit<ChainedEvent, 'hash'>): string {
  return [
    'v1',
    field(e.chain),
    field(String(e.seq)),
    field(e.occurredAt.toISOString()),
    field(e.actorType),
    field(e.actorId),
    field(e.requestId),
    field(e.workflowId),
    field(e.operation),
    field(e.action),
    field(e.entityType),
    field(e.entityId),
    field(e.beforeText),
    field(e.afterText),
    field(e.prevHash),
  ].join('|');
}

export function eventHash(e: Omit<ChainedEvent, 'hash'>): string {
  return createHash('sha256').update(canonicalText(e), 'utf8').digest('hex');
}

export type ChainBreakReason = 'gap' | 'prev_hash' | 'hash' | 'head';

/** Where a chain stops being trustworthy: the first seq that does not check out. */
export interface ChainBreak {
  chain: string;
  seq: number;
  reason: ChainBreakReason;
  detail: string;
}

/**
 * Checks one chain fed in seq order: seqs from 1 without gaps (a gap is a deleted row), each
 * `prev_hash` the previous event's hash, each hash recomputed here; `finish` compares the last
 * event with the chain's head (a head ahead of the events is a deleted tail). Stops at the first break.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private broken: ChainBreak | null = null;
  events = 0;

  constructor(readonly chain: string) {}

  get firstBreak(): ChainBreak | null {
    return this.broken;
  }

  /** false once the chain is broken: nothing after the break is worth reading */
  add(e: ChainedEvent): boolean {
    if (this.broken) return false;
    this.events += 1;
    if (e.seq !== this.expectedSeq) {
      return this.fail(this.expectedSeq, 'gap', `seq ${this.expectedSeq} is missing (next found: ${e.seq})`);
    }
    if (e.prevHash !== this.prevHash) {
      return this.fail(e.seq, 'prev_hash', 'prev_hash is not the hash of the event before it');
    }
    if (eventHash(e) !== e.hash) {
      return this.fail(e.seq, 'hash', 'the event’s fields do not give its hash');
    }
    this.expectedSeq += 1;
    this.prevHash = e.hash;
    return true;
  }

  /** `head`: the chain's row in audit_heads, if any. */
  finish(head: { seq: number; hash: string } | null): ChainBreak | null {
    if (this.broken) return this.broken;
    const lastSeq = this.expectedSeq - 1;
    if (!head) {
      if (lastSeq > 0) this.fail(lastSeq, 'head', 'the chain has events but no head');
    } else if (head.seq !== lastSeq) {
      this.fail(
        Math.min(head.seq, lastSeq) + 1,
        head.seq > lastSeq ? 'gap' : 'head',
        head.seq > lastSeq
          ? `the head is at seq ${head.seq} but the events end at ${lastSeq}`
          : `the events go past the head (seq ${head.seq})`,
      );
    } else if (head.hash !== this.prevHash) {
      this.fail(lastSeq, 'head', 'the head’s hash is not the last event’s');
    }
    return this.broken;
  }

  private fail(seq: number, reason: ChainBreakReason, detail: string): false {
    this.broken = { chain: this.chain, seq, reason, detail };
    return false;
  }
}
