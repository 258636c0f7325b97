import { Injectable } from '@nestjs/common';
import { RedisStore } from '../store/redis-store';

/** What a host's agent last said of one of its mirror taps. */
export interface MirrorTapCounters {
  packets: number;
  bytes: number;
  /** Why the tap is not programmed there; '' when it is. */
  error: string;
  /** When it was reported (controller clock, ms). */
  at: number;
}

/**
 * The mirror counters agents report (SyncRequest.mirror_counters), one hash per host, replaced
 * whole by each report: a tap the agent no longer reports is gone from it. Bookkeeping, not
 * desired state: no revision, no change record.
 */
@Injectable()
export class MirrorCountersRepository {
  constructor(private readonly store: RedisStore) {}

  /** Replaces the host's counters with `entries` (by mirror tap id). */
  async write(hostId: string, entries: ReadonlyMap<string, MirrorTapCounters>): Promise<void> {
    const key = this.store.keys.hostMirrorCounters(hostId);
    const fields = [...entries].flatMap(([id, counters]) => [id, JSON.stringify(counters)]);
    const tx = this.store.redis.multi().del(key);
    if (fields.length) {
      tx.hset(key, ...fields);
    }
    await tx.exec();
  }

  /** The host's counters for these mirror tap ids (those it never reported are absent). */
  async read(hostId: string, ids: readonly string[]): Promise<Map<string, MirrorTapCounters>> {
    const out = new Map<string, MirrorTapCounters>();
    if (ids.length === 0) {
      return out;
    }
    const values = await this.store.redis.hmget(this.store.keys.hostMirrorCounters(hostId), ...ids);
    ids.forEach((id, i) => {
      const raw = values[i];
      if (raw) {
        try {
          out.set(id, JSON.parse(raw) as MirrorTapCounters);
        } catch {
          // written only by write() above; an unreadable value reads as never reported
        }
      }
    });
    return out;
  }

  /** Forgets a deleted host's counters. */
  async forget(hostId: string): Promise<void> {
    await this.store.redis.del(this.store.keys.hostMirrorCounters(hostId));
  }
}
