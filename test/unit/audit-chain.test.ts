/** The audit chain's canonical text and its verifier, without a database. */
import {
  canonicalText,
  ChainVerifier,
  eventHash,
  GENESIS_HASH,
  type ChainBreak,
  type ChainedEvent,
} from '../../src/domain/audit';

/** A valid chain of `n` events, each hashed over the one before. */
function chain(n: number): ChainedEvent[] {
  const events: ChainedEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq += 1) {
    const event = {
      chain: 'ten_x',
      seq,
      occurredAt: new Date(Date.UTC(2026, 10, 24, 0, 0, seq, 5)),
      actorType: 'user',
      actorId: 'usr_1',
      requestId: `req-${seq}`,
      workflowId: null,
      operation: 'createCustomer',
      action: 'INSERT',
      entityType: 'customers',
      entityId: `cus_${seq}`,
      beforeText: null,
      afterText: `{"name": "Zoë ${seq}"}`,
      prevHash,
    };
    const hash = eventHash(event);
    events.push({ ...event, hash });
    prevHash = hash;
  }
  return events;
}

function verify(events: ChainedEvent[], head?: { seq: number; hash: string } | null): ChainBreak | null {
  const verifier = new ChainVerifier('ten_x');
  for (const e of events) if (!verifier.add(e)) break;
  const last = events.at(-1);
  return verifier.finish(head === undefined ? (last ? { seq: last.seq, hash: last.hash } : null) : head);
}

describe('canonicalText', () => {
  it('writes each field as its UTF-8 byte length and text, null as -, behind a version tag', () => {
    const [e] = chain(1);
    expect(canonicalText(e!)).toBe(
      [
        'v1',
        '5:ten_x',
        '1:1',
        '24:2026-11-24T00:00:01.005Z',
        '4:user',
        '5:usr_1',
        '5:req-1',
        '-',
        '14:createCustomer',
        '6:INSERT',
        '9:customers',
        '5:cus_1',
        '-',
        '18:{"name": "Zoë 1"}',
        `64:${GENESIS_HASH}`,
      ].join('|'),
    );
  });

  it('tells a null from the text "-" and a shifted separator from the original', () => {
    const [e] = chain(1);
    expect(eventHash({ ...e!, workflowId: '-' })).not.toBe(e!.hash);
    expect(eventHash({ ...e!, actorId: 'usr_1|5:x', requestId: null })).not.toBe(
      eventHash({ ...e!, actorId: 'usr_1', requestId: '5:x' }),
    );
  });
});

describe('ChainVerifier', () => {
  const events = chain(5);
  const cases: [
    string,
    () => [ChainedEvent[], ({ seq: number; hash: string } | null)?],
    Partial<ChainBreak> | null,
  ][] = [
    ['an intact chain', () => [events], null],
    ['an empty chain without a head', () => [[], null], null],
    ['a deleted row', () => [events.filter((e) => e.seq !== 3)], { seq: 3, reason: 'gap' }],
    ['a deleted first row', () => [events.slice(1)], { seq: 1, reason: 'gap' }],
    [
      'an altered field',
      () => [events.map((e) => (e.seq === 2 ? { ...e, afterText: '{"name": "Mallory"}' } : e))],
      { seq: 2, reason: 'hash' },
    ],
    [
      'an altered field with its hash recomputed',
      () => [
        events.map((e) => {
          if (e.seq !== 2) return e;
          const forged = { ...e, actorId: 'usr_2' };
          return { ...forged, hash: eventHash(forged) };
        }),
      ],
      { seq: 3, reason: 'prev_hash' },
    ],
    ['a cut tail', () => [events.slice(0, 4), { seq: 5, hash: events[4]!.hash }], { seq: 5, reason: 'gap' }],
    [
      'a head behind the events',
      () => [events, { seq: 4, hash: events[3]!.hash }],
      { seq: 5, reason: 'head' },
    ],
    ['a head with another hash', () => [events, { seq: 5, hash: GENESIS_HASH }], { seq: 5, reason: 'head' }],
    ['events without a head', () => [events, null], { seq: 5, reason: 'head' }],
  ];

  it.each(cases)('%s', (_name, input, expected) => {
    const [list, head] = input();
    const broken = verify(list, head);
    if (expected === null) expect(broken).toBeNull();
    else expect(broken).toMatchObject({ chain: 'ten_x', ...expected });
  });
});
