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

/**
 * Turns one XRANGE/XREAD entry (`[id, [field, value, ...]]`) into a record. With `echoes`, the
 * ops of a record this process wrote are taken from them rather than parsed (RecordEchoes).
 */
export function parseStreamEntry(entry: [string, string[]], echoes?: RecordEchoes): ChangeRecord {
  const [id, fields] = entry;
  const dash = id.indexOf('-');
  const record: ChangeRecord = { revision: Number(id.slice(0, dash)), entryId: id, at: 0, ops: [] };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'ops') {
      record.ops = echoes?.take(id.slice(dash + 1), fields[i + 1]) ?? (JSON.parse(fields[i + 1]) as ChangeOp[]);
    } else if (fields[i] === 'at') {
      record.at = Number(fields[i + 1]);
    }
  }
  return record;
}

/**
 * The length of the JSON of an op without an old value, as the scripts write it (`opInto` in
 * lua-prelude.ts: `{"k":"<kind>","id":"<id>","v":<json>,"o":null}`, `null` for no value).
 */
export function opJsonLength(kind: ResourceKind, id: string, json: string | null): number {
  return OP_JSON_OVERHEAD + kind.length + id.length + (json ?? 'null').length;
}
const OP_JSON_OVERHEAD = '{"k":"","id":"","v":,"o":null}'.length;

/** The length of a record's `ops` field: a JSON array of `count` ops whose lengths add up to `opLengths`. */
export function opsJsonLength(opLengths: number, count: number): number {
  return opLengths + Math.max(count - 1, 0) + 2;
}

/** What a write of this process will make its record hold: its ops, and the length of their JSON. */
export interface RecordEcho {
  ops: ChangeOp[];
  opsLength: number;
}

/**
 * The records this process is writing, by their nonce: their ops as the writer already holds
 * them, so that the view's tail need not parse them back. A batch's record is 1,000 ports' JSON
 * that the tail parsed into objects the writer had just serialized: about 5 µs a port of the
 * controller's CPU, and objects alive through the span index's work on the record, which the young
 * generation's collections copied then promoted (docs/benchmarks.md).
 *
 * An echo is used only for the record with its nonce (unique to this process's write: see
 * RecordNonces) whose `ops` field has the echo's length, and once; otherwise the record is parsed
 * as any other. A write that failed drops its echo; one whose record the tail never reads (the view
 * reloaded) is dropped after ECHO_TTL_MS, and at most MAX_ECHOES are kept.
 */
export class RecordEchoes {
  private readonly pending = new Map<string, RecordEcho & { at: number }>();

  add(nonce: string, echo: RecordEcho, now = Date.now()): void {
    for (const [key, old] of this.pending) {
      if (now - old.at < ECHO_TTL_MS && this.pending.size < MAX_ECHOES) {
        break;
      }
      this.pending.delete(key);
    }
    this.pending.set(nonce, { ...echo, at: now });
  }

  drop(nonce: string): void {
    this.pending.delete(nonce);
  }

  /** The ops of the record with this nonce, if this process wrote it and `opsText` has their length; taken once. */
  take(nonce: string, opsText: string): ChangeOp[] | undefined {
    const echo = this.pending.get(nonce);
    if (echo === undefined) {
      return undefined;
    }
    this.pending.delete(nonce);
    return echo.opsLength === opsText.length ? echo.ops : undefined;
  }

  get size(): number {
    return this.pending.size;
  }
}
const ECHO_TTL_MS = 10_000;
const MAX_ECHOES = 256;

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
