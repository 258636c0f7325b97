import { Injectable } from '@nestjs/common';
import { MAX_SEQ, parseStreamEntry, type ChangeRecord } from './change-log';
import { RedisStore } from './redis-store';

/**
 * Reads ranges of the change log (`{prefix}:log`, entry ids `<revision>-<nonce>`) for the readers that
 * need records the materialized view has already applied: a resume delta (distribution/hello.ts)
 * and the hosts an old revision changed (distribution/realization.service.ts). Holds no state;
 * every read is idempotent.
 */
@Injectable()
export class ChangeLogReader {
  constructor(private readonly store: RedisStore) {}

  /** Records (from, to], or undefined when the log no longer holds all of them (trimmed). */
  async read(from: number, to: number): Promise<ChangeRecord[] | undefined> {
    if (to <= from) {
      return [];
    }
    const entries = (await this.store.read((r) => r.xrange(this.store.keys.changeLog(), `${from + 1}-0`, `${to}-${MAX_SEQ}`))) as [string, string[]][];
    const records = entries.map((entry) => parseStreamEntry(entry));
    if (records.length !== to - from || records[0].revision !== from + 1) {
      return undefined;
    }
    return records;
  }

  /**
   * Whether the log holds no record of `entryId`'s revision other than that one
   * (`<revision>-<nonce>`): false when the store lost it and made its revision again from another
   * write. Two ranges that answer nothing when it does: the record itself is never read (a
   * resume storm after a batch would read its megabytes once per agent).
   */
  async noOtherRecord(entryId: string): Promise<boolean> {
    const revision = entryId.slice(0, entryId.indexOf('-'));
    const log = this.store.keys.changeLog();
    const [before, after] = await this.store.read((r) =>
      Promise.all([r.xrange(log, `${revision}-0`, `(${entryId}`, 'COUNT', 1), r.xrange(log, `(${entryId}`, `${revision}-${MAX_SEQ}`, 'COUNT', 1)]),
    );
    return before.length === 0 && after.length === 0;
  }

  /**
   * Records (from, head()], where `head` (the view's revision) may move on while the log is read:
   * the rest is read until nothing is missing. Undefined when the log no longer holds them all.
   */
  async readThrough(from: number, head: () => number): Promise<ChangeRecord[] | undefined> {
    let records = await this.read(from, head());
    while (records && head() > from + records.length) {
      const more = await this.read(from + records.length, head());
      records = more ? records.concat(more) : undefined;
    }
    return records;
  }
}
