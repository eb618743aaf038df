/**
 * What every row of ours carries: a prefixed, time-ordered id and when it was created and last
 * changed. Both timestamps default to `now()` in the table too, so plain SQL inserts (the hot
 * paths, the quota upsert) need not name them.
 */
import { PrimaryKey, Property, type Opt } from '@mikro-orm/core';
import { newId, type IdKind } from '../../domain/ids';

export abstract class Row {
  /** The prefix of this entity's ids (`ten_…`); each entity names its own. */
  static readonly idKind: IdKind;

  @PrimaryKey({ type: 'string', length: 40 })
  id: string = newId(idKindOf(this));

  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date & Opt = new Date();

  /** Moved by every ORM flush that changes the row; plain SQL updates set it themselves. */
  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()', onUpdate: () => new Date() })
  updatedAt: Date & Opt = new Date();
}

function idKindOf(row: Row): IdKind {
  const kind = (row.constructor as typeof Row).idKind;
  if (kind === undefined) throw new Error(`${row.constructor.name} extends Row without naming its idKind`);
  return kind;
}
