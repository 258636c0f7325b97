/**
 * The change log's record format, shared by writers (Lua, through `op`) and readers (the
 * materialized view, the distribution service). One record per mutation; it carries the full
 * new and old value of every resource the mutation touched (`null` for absent), so a reader
 * never needs to look anything up to apply it, and can compute what changed for whom.
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
  /** Controller clock (ms) when the mutation was made. */
  at: number;
  ops: ChangeOp[];
}

/** Turns one XRANGE/XREAD entry (`[id, [field, value, ...]]`) into a record. */
export function parseStreamEntry(entry: [string, string[]]): ChangeRecord {
  const [id, fields] = entry;
  const record: ChangeRecord = { revision: Number(id.slice(0, id.indexOf('-'))), at: 0, ops: [] };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'ops') {
      record.ops = JSON.parse(fields[i + 1]) as ChangeOp[];
    } else if (fields[i] === 'at') {
      record.at = Number(fields[i + 1]);
    }
  }
  return record;
}
