import { randomInt } from 'node:crypto';

/**
 * The change log's record format, shared by writers (Lua, through `op`) and readers (the
 * materialized view, the distribution service). One record per mutation; it carries the full
 * new and old value of every resource the mutation touched (`null` for absent), so a reader
 * never needs to look anything up to apply it, and can compute what changed for whom.
 *
 * A record's stream entry id is `<revision>-<nonce>`: the nonce (recordNonces) is unique to the
 * write, so two records of one revision number (one a failover lost, the other the new master
 * made again) have different ids, and a reader that applied one can tell it is not the other.
 * Records written before nonces were have `<revision>-0`.
 */
export type ResourceKind = 'tenant' | 'segment' | 'host' | 'port' | 'securityGroup' | 'mirrorSession';

export interface ChangeOp {
  k: ResourceKind;
  id: string;
  /** The resource's new record, or null when it was deleted. */
  v: unknown;
  /** Its record before this change, or null when it was created. With both, a reader can rewind as well as replay. */
  o: unknown;
}

export interface ChangeRecord {
  revision: number;
  /** The stream entry id, `<revision>-<nonce>`: which record of that revision this is. */
  entryId: string;
  /** Controller clock (ms) when the mutation was made. */
  at: number;
  ops: ChangeOp[];
}

/** Turns one XRANGE/XREAD entry (`[id, [field, value, ...]]`) into a record. */
export function parseStreamEntry(entry: [string, string[]]): ChangeRecord {
  const [id, fields] = entry;
  const record: ChangeRecord = { revision: Number(id.slice(0, id.indexOf('-'))), entryId: id, at: 0, ops: [] };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'ops') {
      record.ops = JSON.parse(fields[i + 1]) as ChangeOp[];
    } else if (fields[i] === 'at') {
      record.at = Number(fields[i + 1]);
    }
  }
  return record;
}

/** The largest sequence part of a stream entry id: `<revision>-MAX_SEQ` sorts after every record of that revision. */
export const MAX_SEQ = '18446744073709551615';

/**
 * Makes the nonces of this process's records (the sequence part of their entry ids): a random
 * prefix drawn per process (and again every 2^32 records) and a counter, so no two writes of any
 * two processes share one but by a 2^-31 chance. Between 2^32 and 2^63 (never 0: `<revision>-0`
 * is an old record's id). Decimal text, as XADD takes it; Lua never turns it into a number.
 */
export class RecordNonces {
  private prefix = 0n;
  private counter = 2 ** 32;

  next(): string {
    if (this.counter >= 2 ** 32) {
      this.prefix = BigInt(1 + randomInt(2 ** 31 - 1)) << 32n;
      this.counter = 0;
    }
    return (this.prefix + BigInt(this.counter++)).toString();
  }
}
